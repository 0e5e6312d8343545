package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"code.cloudfoundry.org/lager/v3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/proxy"
)

var _ = Describe("Server", func() {
	var (
		fake *upstream
		p    *proxy.Proxy
		reg  *prometheus.Registry
		addr string
		log  *strings.Builder
	)

	scrapeLine := "GET http://my-app.example.com/metrics?" + scrapeQuery(appGUID, "0") + " HTTP/1.1\r\n"

	BeforeEach(func() {
		fake = newUpstream()
		up := newPlainUpstream(fake)
		log = &strings.Builder{}
		p, reg = newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: up}, log)
		DeferCleanup(p.CloseIdleConnections)
		addr = startProxy(p)
	})

	exchange := func(raw string) (statuses []int, bodies []string, closed bool) {
		return exchangeWith(addr, raw)
	}

	DescribeTable("raw requests -> responses, and whether the connection is closed after",
		func(raw string, wantStatuses []int, wantBody string, wantClosed bool, forwarded int) {
			statuses, bodies, closed := exchange(raw)
			Expect(statuses).To(Equal(wantStatuses))
			Expect(bodies[len(bodies)-1]).To(ContainSubstring(wantBody))
			Expect(closed).To(Equal(wantClosed))
			Expect(fake.requests()).To(HaveLen(forwarded))
			Expect(logged(log)).NotTo(ContainSubstring(appGUID))
		},
		Entry("a scrape, the connection kept open",
			scrapeLine+"Host: my-app.example.com\r\n\r\n", []int{200}, "up 1", false, 1),
		Entry("three pipelined scrapes, answered in order",
			strings.Repeat(scrapeLine+"Host: my-app.example.com\r\n\r\n", 3), []int{200, 200, 200}, "up 1", false, 3),
		Entry("Connection: close",
			scrapeLine+"Host: my-app.example.com\r\nConnection: close\r\n\r\n", []int{200}, "up 1", true, 1),
		Entry("HTTP/1.0: closed after the answer",
			strings.Replace(scrapeLine, "HTTP/1.1", "HTTP/1.0", 1)+"\r\n", []int{200}, "up 1", true, 1),
		Entry("HTTP/1.0 with keep-alive",
			strings.Replace(scrapeLine, "HTTP/1.1", "HTTP/1.0", 1)+"Connection: keep-alive\r\n\r\n", []int{200}, "up 1", false, 1),
		Entry("a raw CR LF in the query (a client that skipped escaping)",
			"GET http://my-app.example.com/metrics?cf_app_guid="+appGUID+"\r\nX-Injected: 1&cf_app_instance_index=0 HTTP/1.1\r\nHost: my-app.example.com\r\n\r\n",
			[]int{400}, "", true, 0),
		Entry("a space in the target",
			"GET http://my-app.example.com/a b HTTP/1.1\r\nHost: my-app.example.com\r\n\r\n", []int{400}, "", true, 0),
		Entry("a body announced with Expect: 100-continue: not waited for",
			scrapeLine+"Host: my-app.example.com\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", []int{417}, "", true, 0),
		Entry("a body, then a request hidden in it: never read as one",
			scrapeLine+"Host: my-app.example.com\r\nContent-Length: 60\r\n\r\n"+scrapeLine+"Host: my-app.example.com\r\n\r\n", []int{400}, "no request body", true, 0),
		Entry("a body on a request for the proxy itself, hiding a scrape",
			"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 128\r\n\r\n"+scrapeLine+"Host: my-app.example.com\r\n\r\n", []int{400}, "no request body", true, 0),
		Entry("a chunked body on GET /metrics, hiding a scrape",
			"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+scrapeLine+"Host: my-app.example.com\r\n\r\n", []int{400}, "", true, 0),
		Entry("a body over 4 KiB",
			"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"+strings.Repeat("x", 5000), []int{400}, "no request body", true, 0),
		Entry("a malformed target with the token in its query: not logged",
			"GET http://my-app.example.com:x/metrics?cf_app_guid="+appGUID+" HTTP/1.1\r\nHost: my-app.example.com\r\n\r\n", []int{400}, "malformed request", true, 0),
		Entry("a header line without a colon holding the token: not logged",
			scrapeLine+"Host: my-app.example.com\r\nAuthorization Bearer "+appGUID+"\r\n\r\n", []int{400}, "", true, 0),
		Entry("a rejected scrape keeps the connection, the next one is forwarded",
			"GET http://evil.example.org/ HTTP/1.1\r\nHost: evil.example.org\r\n\r\n"+scrapeLine+"Host: my-app.example.com\r\n\r\n", []int{403, 200}, "up 1", false, 1),
		Entry("GET /health then GET /metrics on one connection",
			"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", []int{200, 200}, "cf_app_discovery_proxy_requests_total", false, 0),
	)

	It("frames each answer once: one Content-Length, no Transfer-Encoding of the upstream's", func() {
		fake.respond = func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Transfer-Encoding", "chunked")
			_, _ = io.WriteString(w, "up 1\n")
			w.(http.Flusher).Flush()
		}
		conn, err := net.Dial("tcp", addr)
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		_, err = io.WriteString(conn, scrapeLine+"Host: my-app.example.com\r\nConnection: close\r\n\r\n")
		Expect(err).NotTo(HaveOccurred())
		Expect(conn.SetReadDeadline(time.Now().Add(5 * time.Second))).To(Succeed())
		raw, err := io.ReadAll(conn)
		Expect(err).NotTo(HaveOccurred())
		head, body, _ := strings.Cut(string(raw), "\r\n\r\n")
		Expect(strings.Count(strings.ToLower(head), "content-length:")).To(Equal(1), head)
		Expect(strings.ToLower(head)).NotTo(ContainSubstring("transfer-encoding"))
		Expect(head).To(HavePrefix("HTTP/1.1 200 OK\r\n"))
		Expect(head).To(ContainSubstring("\r\nContent-Length: 5"))
		Expect(body).To(Equal("up 1\n"))
	})

	It("survives a panic while answering, closing that connection only", func() {
		logger := lager.NewLogger("paas-proxy")
		logger.RegisterSink(lager.NewWriterSink(&syncWriter{b: log}, lager.DEBUG))
		logger.RegisterSink(panicSink{action: "paas-proxy.not-found"})
		panicky, err := proxy.New(proxy.Options{AllowList: mustAllow("example.com"), Logger: logger})
		Expect(err).NotTo(HaveOccurred())
		panickyAddr := startProxy(panicky)

		statuses, _, closed := exchangeWith(panickyAddr, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
		Expect(statuses).To(Equal([]int{http.StatusInternalServerError}))
		Expect(closed).To(BeTrue(), "the connection closes")
		Expect(logged(log)).To(ContainSubstring("boom"))
		w := send(panickyAddr, httptest.NewRequest("GET", "/health", nil))
		Expect(w.Code).To(Equal(http.StatusOK))
	})

	It("refuses a request header over 16 KiB, counted and logged, and closes the connection", func() {
		conn, err := net.Dial("tcp", addr)
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		_, err = io.WriteString(conn, scrapeLine+"Host: my-app.example.com\r\nX-A: "+strings.Repeat("a", 17<<10)+"\r\n\r\n")
		Expect(err).NotTo(HaveOccurred())
		// The connection closes with the end of the header unread: the
		// client may see a reset rather than the 431 sent before it.
		Expect(conn.SetReadDeadline(time.Now().Add(5 * time.Second))).To(Succeed())
		_, err = io.ReadAll(conn)
		Expect(err == nil || errors.Is(err, syscall.ECONNRESET)).To(BeTrue(), "%v", err)
		Expect(requestsTotal(reg, proxy.OutcomeRejectedRequest, "4xx")).To(Equal(1.0))
		Expect(logged(log)).To(ContainSubstring("request header longer than 16384 bytes"))
		Expect(fake.requests()).To(BeEmpty())
	})

	It("sends each pipelined scrape upstream once, across hosts and closed upstream connections", func() {
		up := &recordingUpstream{}
		p, _ := newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: up.start()}, nil)
		DeferCleanup(p.CloseIdleConnections)
		get := func(host, path string) string {
			return "GET http://" + host + path + "?" + scrapeQuery(appGUID, "0") + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
		}
		statuses, _, _ := exchangeWith(startProxy(p), get("y.example.com", "/warm")+get("x.example.com", "/close")+get("y.example.com", "/second"))
		Expect(statuses).To(Equal([]int{200, 200, 200}))
		Expect(up.requests()).To(Equal([]string{"1/warm", "2/close", "1/second"}))
	})

	It("answers the requests in flight on shutdown, closes idle connections and stops accepting", func() {
		release := make(chan struct{})
		var once sync.Once
		free := func() { once.Do(func() { close(release) }) }
		DeferCleanup(free)
		fake.respond = func(w http.ResponseWriter, _ *http.Request) {
			<-release
			_, _ = io.WriteString(w, "late 1\n")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		server := p.Server()
		served := make(chan error, 1)
		go func() { served <- server.Serve(ln) }()

		idle, err := net.Dial("tcp", ln.Addr().String())
		Expect(err).NotTo(HaveOccurred())
		defer idle.Close()
		_, err = io.WriteString(idle, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
		Expect(err).NotTo(HaveOccurred())
		idleReader := bufio.NewReader(idle)
		resp, err := http.ReadResponse(idleReader, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(io.ReadAll(resp.Body)).To(Equal([]byte("ok\n")))
		busy, err := net.Dial("tcp", ln.Addr().String())
		Expect(err).NotTo(HaveOccurred())
		defer busy.Close()
		_, err = io.WriteString(busy, scrapeLine+"Host: my-app.example.com\r\n\r\n")
		Expect(err).NotTo(HaveOccurred())
		Eventually(fake.requests).Should(HaveLen(1))

		shutdown := make(chan error, 1)
		go func() { shutdown <- server.ShutdownWithContext(context.Background()) }()
		Eventually(served).Should(Receive(BeNil()))
		_, err = net.Dial("tcp", ln.Addr().String())
		Expect(err).To(HaveOccurred(), "still accepting")
		Expect(idle.SetReadDeadline(time.Now().Add(5 * time.Second))).To(Succeed())
		_, err = idleReader.ReadByte()
		Expect(err).To(MatchError(io.EOF), "the idle connection was not closed")
		Consistently(shutdown, 100*time.Millisecond).ShouldNot(Receive())

		free()
		resp, err = http.ReadResponse(bufio.NewReader(busy), nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Close).To(BeTrue(), "the last answer says the connection closes")
		body, _ := io.ReadAll(resp.Body)
		Expect(string(body)).To(Equal("late 1\n"))
		Eventually(shutdown).Should(Receive(BeNil()))
	})
})

// exchangeWith writes raw on a new connection to addr, then reads every
// response until the proxy closes the connection or goes quiet for 200 ms.
func exchangeWith(addr, raw string) (statuses []int, bodies []string, closed bool) {
	conn, err := net.Dial("tcp", addr)
	Expect(err).NotTo(HaveOccurred())
	defer conn.Close()
	_, err = io.WriteString(conn, raw)
	Expect(err).NotTo(HaveOccurred())
	br := bufio.NewReader(conn)
	for {
		Expect(conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))).To(Succeed())
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return statuses, bodies, false
			}
			Expect(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)).To(BeTrue(), "%v", err)
			return statuses, bodies, true
		}
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		statuses = append(statuses, resp.StatusCode)
		bodies = append(bodies, string(body))
	}
}

// panicSink is a lager sink that panics on a log line with the given
// action: a bug in the middle of answering a request.
type panicSink struct{ action string }

func (s panicSink) Log(l lager.LogFormat) {
	if l.Message == s.action {
		panic("boom")
	}
}

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
