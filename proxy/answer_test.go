package proxy_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/proxy"
)

// rawUpstream answers every request on every connection with the same raw
// bytes, then closes the connection when closeAfter is set.
func rawUpstream(answer string, closeAfter bool) string {
	return rawServer(func(int, *http.Request) (string, bool) { return answer, closeAfter })
}

// rawServer is an upstream that answers each request with the raw bytes
// answer returns for it (given the connection's number, from 1), then
// closes the connection when told to.
func rawServer(answer func(conn int, r *http.Request) (raw string, close bool)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(ln.Close)
	go func() {
		for n := 1; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					raw, closing := answer(n, r)
					if _, err := io.WriteString(conn, raw); err != nil || closing {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

var _ = Describe("Answering with the upstream's response", func() {
	DescribeTable("never answers a scrape with bytes an upstream sent after a complete response",
		func(overTLS, afterTheAnswer bool) {
			// The first answer is followed by a whole second response that
			// no request asked for, on the connection the proxy keeps for
			// the next scrape: right behind it, or once the client has
			// the first answer.
			answered, poisoned := make(chan struct{}), make(chan struct{})
			var first atomic.Bool
			first.Store(true)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			o := proxy.Options{UpstreamScheme: "http", UpstreamAddr: ln.Addr().String()}
			if overTLS {
				cert, roots := selfSignedCert("*.example.com")
				ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
				o.UpstreamScheme, o.TLSConfig = "https", &tls.Config{RootCAs: roots}
			}
			DeferCleanup(ln.Close)
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					go func() {
						defer conn.Close()
						br := bufio.NewReader(conn)
						for {
							r, err := http.ReadRequest(br)
							if err != nil {
								return
							}
							body := strings.TrimPrefix(r.URL.Path, "/")
							if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body); err != nil {
								return
							}
							if first.CompareAndSwap(true, false) {
								if afterTheAnswer {
									<-answered
								}
								_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nPOISON\n")
								close(poisoned)
							}
						}
					}()
				}
			}()
			p, _ := newProxy(o, nil)
			DeferCleanup(p.CloseIdleConnections)
			addr := startProxy(p)
			get := func(path string) string {
				w := send(addr, httptest.NewRequest("GET", "http://my-app.example.com"+path+"?"+scrapeQuery(appGUID, "0"), nil))
				Expect(w.Code).To(Equal(http.StatusOK), w.Body.String())
				return w.Body.String()
			}

			Expect(get("/first")).To(Equal("first"))
			close(answered)
			Eventually(poisoned).Should(BeClosed())
			Expect(get("/second")).To(Equal("second"))
			Expect(get("/third")).To(Equal("third"))
		},
		Entry("plain http, once the client has the answer", false, true),
		Entry("plain http, right behind the answer", false, false),
		Entry("TLS, once the client has the answer", true, true),
		Entry("TLS, right behind the answer", true, false),
	)

	It("never answers a scrape with the rest of an answer an upstream sent more than it framed", func() {
		// A 204 announcing a body, then a whole second response: the
		// second must never answer the next scrape.
		answer := "HTTP/1.1 204 No Content\r\nContent-Length: 50\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nPOISON\n"
		p, _ := newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: rawUpstream(answer, false)}, nil)
		DeferCleanup(p.CloseIdleConnections)
		addr := startProxy(p)
		for range 3 {
			w := send(addr, httptest.NewRequest("GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"), nil))
			Expect(w.Code).To(Equal(http.StatusNoContent))
			Expect(w.Body.String()).To(BeEmpty())
		}
	})

	It("answers a malformed answer with 502 without quoting it", func() {
		answer := "HTTP/1.1 OK\r\nX-Secret: " + strings.Repeat("s", 100) + "\r\n\r\n"
		p, _ := newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: rawUpstream(answer, true)}, nil)
		DeferCleanup(p.CloseIdleConnections)
		w := send(startProxy(p), httptest.NewRequest("GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"), nil))
		Expect(w.Code).To(Equal(http.StatusBadGateway))
		Expect(w.Body.String()).To(ContainSubstring("upstream my-app.example.com failed"))
		Expect(w.Body.String()).NotTo(ContainSubstring("X-Secret"))
	})

	big := strings.Repeat("x", 100<<10)

	DescribeTable("upstream's raw response -> what the client gets",
		func(answer string, closeAfter bool, clientProto string, wantStatus int, wantBody string, wantFraming string, wantClosed bool) {
			p, _ := newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: rawUpstream(answer, closeAfter)}, nil)
			DeferCleanup(p.CloseIdleConnections)
			conn, err := net.Dial("tcp", startProxy(p))
			Expect(err).NotTo(HaveOccurred())
			defer conn.Close()
			_, err = io.WriteString(conn, "GET http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0")+" "+clientProto+"\r\nHost: my-app.example.com\r\n\r\n")
			Expect(err).NotTo(HaveOccurred())
			Expect(conn.SetReadDeadline(time.Now().Add(5 * time.Second))).To(Succeed())
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			Expect(err).NotTo(HaveOccurred())
			body, err := io.ReadAll(resp.Body)
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.StatusCode).To(Equal(wantStatus))
			Expect(string(body)).To(ContainSubstring(wantBody))
			if wantFraming == "length" {
				Expect(resp.ContentLength).To(Equal(int64(len(body))))
			}
			Expect(conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))).To(Succeed())
			_, err = br.ReadByte()
			var ne net.Error
			closed := errors.Is(err, io.EOF)
			Expect(closed || errors.As(err, &ne) && ne.Timeout()).To(BeTrue(), "%v", err)
			Expect(closed).To(Equal(wantClosed))
		},
		Entry("Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 200, "up 1\n", "length", false),
		Entry("a header longer than 40 KiB", "HTTP/1.1 200 OK\r\nX-Big: "+big[:40<<10]+"\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 200, "up 1\n", "length", false),
		Entry("a header over 64 KiB: 502", "HTTP/1.1 200 OK\r\nX-Big: "+big[:65<<10]+"\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 502, "failed", "length", false),
		Entry("a large body with Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 102400\r\n\r\n"+big, false, "HTTP/1.1", 200, big, "length", false),
		Entry("chunked with a trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nup 1\n\r\n0\r\nX-T: 1\r\n\r\n", false, "HTTP/1.1", 200, "up 1\n", "length", false),
		Entry("a large chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n19000\r\n"+big+"\r\n0\r\n\r\n", false, "HTTP/1.1", 200, big, "length", false),
		Entry("to an HTTP/1.0 client", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nup 1\n\r\n0\r\n\r\n", false, "HTTP/1.0", 200, "up 1\n", "length", true),
		Entry("ended by the upstream closing", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nup 1\n", true, "HTTP/1.1", 200, "up 1\n", "length", false),
		Entry("an HTTP/1.0 upstream", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 200, "up 1\n", "length", false),
		Entry("103 Early Hints first", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 200, "up 1\n", "length", false),
		Entry("a status without a reason", "HTTP/1.1 299\r\nContent-Length: 5\r\n\r\nup 1\n", false, "HTTP/1.1", 299, "up 1\n", "length", false),
		Entry("204", "HTTP/1.1 204 No Content\r\n\r\n", false, "HTTP/1.1", 204, "", "", false),
		Entry("101 unasked: 502", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", false, "HTTP/1.1", 502, "switched protocols", "length", false),
		Entry("a body cut short: 502", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nup 1\n", true, "HTTP/1.1", 502, "failed", "length", false),
		Entry("a chunked body cut short: 502", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nup 1\n\r\n40\r\nup 2", true, "HTTP/1.1", 502, "failed", "length", false),
		Entry("a large body cut short: 502", "HTTP/1.1 200 OK\r\nContent-Length: 204800\r\n\r\n"+big, true, "HTTP/1.1", 502, "failed", "length", false),
		Entry("a malformed status line: 502", "HTTP/1.1 OK\r\n\r\n", true, "HTTP/1.1", 502, "failed", "length", false),
		Entry("conflicting lengths: 502", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nup 1\n", true, "HTTP/1.1", 502, "failed", "length", false),
	)
})

var _ = Describe("Reusing upstream connections", func() {
	It("reuses a connection that has been idle for longer than the last scrape's timeout", func() {
		// The client leaves the last response's read deadline on an idle
		// connection; checking the connection before the next scrape must
		// not trip over it.
		var conns atomic.Int32
		server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok")
		}))
		server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		}
		server.Start()
		DeferCleanup(server.Close)
		p, _ := newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: server.Listener.Addr().String()}, nil)
		DeferCleanup(p.CloseIdleConnections)
		addr := startProxy(p)
		scrape := func() {
			r := httptest.NewRequest("GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"), nil)
			r.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "0.05")
			w := send(addr, r)
			Expect(w.Code).To(Equal(http.StatusOK), w.Body.String())
		}

		scrape()
		time.Sleep(100 * time.Millisecond) // the first scrape's deadline passes; no race is arranged
		scrape()
		Expect(conns.Load()).To(Equal(int32(1)))
	})
})
