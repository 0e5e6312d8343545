package proxy_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/proxy"
)

var _ = Describe("A client slower than its answers", func() {
	It("gets every pipelined scrape answered whole and in order once it reads", func() {
		body := strings.Repeat("y", 60<<10)
		p, _ := newProxy(proxy.Options{
			UpstreamScheme: "http",
			UpstreamAddr:   rawUpstream("HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body, false),
		}, nil)
		DeferCleanup(p.CloseIdleConnections)
		conn, err := net.Dial("tcp", startProxy(p))
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		// A small receive window: 100 answers of 60 KiB (6 MB) cannot all
		// sit in socket buffers, so the proxy holds some back.
		Expect(conn.(*net.TCPConn).SetReadBuffer(16 << 10)).To(Succeed())
		const n = 100
		var reqs strings.Builder
		for i := range n {
			reqs.WriteString("GET http://my-app.example.com/metrics?" + scrapeQuery(appGUID, strconv.Itoa(i%3)) + " HTTP/1.1\r\nHost: my-app.example.com\r\n\r\n")
		}
		_, err = io.WriteString(conn, reqs.String())
		Expect(err).NotTo(HaveOccurred())
		time.Sleep(300 * time.Millisecond)

		Expect(conn.SetReadDeadline(time.Now().Add(20 * time.Second))).To(Succeed())
		br := bufio.NewReader(conn)
		for i := range n {
			resp, err := http.ReadResponse(br, nil)
			Expect(err).NotTo(HaveOccurred(), "answer %d", i)
			got, err := io.ReadAll(resp.Body)
			Expect(err).NotTo(HaveOccurred(), "answer %d", i)
			Expect(resp.StatusCode).To(Equal(http.StatusOK), "answer %d", i)
			Expect(len(got)).To(Equal(len(body)), "answer %d", i)
			Expect(string(got) == body).To(BeTrue(), "answer %d", i)
		}
	})
})

// recordingUpstream answers every request "ok" over plain http, closing
// the connection after paths that contain "close", and records each as
// "<connection number><path>".
type recordingUpstream struct {
	mu   sync.Mutex
	seen []string
}

func (u *recordingUpstream) start() string {
	return rawServer(func(conn int, r *http.Request) (string, bool) {
		u.mu.Lock()
		u.seen = append(u.seen, strconv.Itoa(conn)+r.URL.Path)
		u.mu.Unlock()
		if strings.Contains(r.URL.Path, "close") {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", true
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
}

func (u *recordingUpstream) requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

var _ = Describe("Exchanges on one client connection", func() {
	get := func(host, path string) string {
		return "GET http://" + host + path + "?" + scrapeQuery(appGUID, "0") + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	}

	It("sends each pipelined scrape upstream once, across hosts and closed upstream connections", func() {
		up := &recordingUpstream{}
		p, _ := newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: up.start()}, nil)
		DeferCleanup(p.CloseIdleConnections)
		conn, err := net.Dial("tcp", startProxy(p))
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		Expect(conn.SetDeadline(time.Now().Add(5 * time.Second))).To(Succeed())
		br := bufio.NewReader(conn)
		read := func() {
			resp, err := http.ReadResponse(br, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(io.ReadAll(resp.Body)).To(Equal([]byte("ok")))
		}

		_, err = io.WriteString(conn, get("y.example.com", "/warm"))
		Expect(err).NotTo(HaveOccurred())
		read() // y.example.com now has an idle upstream connection
		_, err = io.WriteString(conn, get("x.example.com", "/close")+get("y.example.com", "/second"))
		Expect(err).NotTo(HaveOccurred())
		read()
		read()
		Expect(up.requests()).To(Equal([]string{"1/warm", "2/close", "1/second"}))
	})

	It("counts the response-header timeout from the request's sending, not from the dial", func() {
		cert, roots := selfSignedCert("my-app.example.com")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		slow := tls.NewListener(ln, &tls.Config{
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				time.Sleep(300 * time.Millisecond) // a slow handshake
				return nil, nil
			},
			Certificates: []tls.Certificate{cert},
		})
		server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "up 1\n")
		})}
		go func() { _ = server.Serve(slow) }()
		DeferCleanup(server.Close)
		p, _ := newProxy(proxy.Options{
			UpstreamAddr: ln.Addr().String(), TLSConfig: &tls.Config{RootCAs: roots},
			Timeouts: proxy.Timeouts{ResponseHeader: 200 * time.Millisecond},
		}, nil)
		DeferCleanup(p.CloseIdleConnections)
		w := send(startProxy(p), httptest.NewRequest("GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"), nil))
		Expect(w.Code).To(Equal(http.StatusOK), w.Body.String())
	})

	It("abandons a scrape whose client hung up as it sent it", func() {
		var started atomic.Bool
		aborted := make(chan struct{})
		upstreamAddr := newPlainUpstream(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			started.Store(true)
			<-r.Context().Done() // the proxy closed the upstream connection
			close(aborted)
		}))
		p, reg := newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: upstreamAddr}, nil)
		DeferCleanup(p.CloseIdleConnections)
		conn, err := net.Dial("tcp", startProxy(p))
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		_, err = io.WriteString(conn, get("my-app.example.com", "/metrics"))
		Expect(err).NotTo(HaveOccurred())
		Expect(conn.(*net.TCPConn).CloseWrite()).To(Succeed())

		Eventually(func() float64 { return requestsTotal(reg, proxy.OutcomeClientGone, "4xx") }).Should(Equal(1.0))
		Expect(requestsTotal(reg, proxy.OutcomeUpstreamError, "5xx")).To(BeZero())
		// Abandoned before it was sent (the event loops see the hang-up
		// with the request), or sent and then aborted.
		if started.Load() {
			Eventually(aborted).Should(BeClosed())
		}
	})
})

var _ = Describe("A response that arrives a byte at a time", func() {
	DescribeTable("is read whole, its framing lines cut anywhere",
		func(answer, wantBody string) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(ln.Close)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
					return
				}
				for i := range len(answer) {
					if _, err := conn.Write([]byte{answer[i]}); err != nil {
						return
					}
					time.Sleep(time.Millisecond)
				}
				time.Sleep(time.Second) // keep the connection open
			}()
			p, _ := newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: ln.Addr().String()}, nil)
			DeferCleanup(p.CloseIdleConnections)
			w := send(startProxy(p), httptest.NewRequest("GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"), nil))
			Expect(w.Code).To(Equal(http.StatusOK), w.Body.String())
			Expect(w.Body.String()).To(Equal(wantBody))
		},
		Entry("Content-Length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nup 1\nup2 3\n", "up 1\nup2 3\n"),
		Entry("chunked, with an extension and a trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nup 1\n\r\n7\r\nup2 3\n\n\r\n0\r\nX-T: 1\r\n\r\n", "up 1\nup2 3\n\n"),
	)
})
