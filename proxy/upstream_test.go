package proxy_test

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/proxy"
)

var _ = Describe("Upstream", func() {
	var (
		fake     *upstream
		router   *httptest.Server
		newConns atomic.Int64
		roots    *x509.CertPool
		log      *strings.Builder
	)

	scrape := "http://my-app.example.com/metrics?" + scrapeQuery(appGUID, "0")

	// The fake router serves https for *.example.com on 127.0.0.1, as the
	// CF router's load balancer does for the platform's domains.
	BeforeEach(func() {
		fake = newUpstream()
		newConns.Store(0)
		log = &strings.Builder{}
		var cert tls.Certificate
		cert, roots = selfSignedCert("*.example.com", "example.com")
		router = httptest.NewUnstartedServer(fake)
		router.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		router.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				newConns.Add(1)
			}
		}
		router.StartTLS()
		DeferCleanup(router.Close)
	})

	trusted := func() *tls.Config { return &tls.Config{RootCAs: roots} }

	httpsProxy := func(tlsConfig *tls.Config, timeout time.Duration) (*proxy.Proxy, *prometheus.Registry) {
		p, reg := newProxy(proxy.Options{
			UpstreamAddr: router.Listener.Addr().String(),
			TLSConfig:    tlsConfig,
			Timeout:      timeout,
		}, log)
		DeferCleanup(p.CloseIdleConnections)
		return p, reg
	}

	serve := func(p *proxy.Proxy, r *http.Request) *httptest.ResponseRecorder {
		return send(startProxy(p), r)
	}

	It("speaks verified https to the scrape URL's host name, dialled to UPSTREAM_ADDR", func() {
		p, _ := httpsProxy(trusted(), 0)
		w := serve(p, httptest.NewRequest("GET", scrape, nil))
		Expect(w.Code).To(Equal(http.StatusOK), w.Body.String())
		seen := fake.requests()
		Expect(seen).To(HaveLen(1))
		Expect(seen[0].ServerName).To(Equal("my-app.example.com"), "SNI")
		Expect(seen[0].Host).To(Equal("my-app.example.com"))
		Expect(seen[0].Header.Get("X-Cf-App-Instance")).To(Equal(appGUID + ":0"))
	})

	It("answers 502 with the reason when the upstream's certificate is not trusted", func() {
		p, reg := httpsProxy(nil, 0) // system roots only
		w := serve(p, httptest.NewRequest("GET", scrape, nil))
		Expect(w.Code).To(Equal(http.StatusBadGateway))
		Expect(w.Body.String()).To(ContainSubstring("certificate"))
		Expect(fake.requests()).To(BeEmpty())
		Expect(requestsTotal(reg, proxy.OutcomeUpstreamError, "5xx")).To(Equal(1.0))
		Expect(logged(log)).To(ContainSubstring("upstream-failed"))
	})

	It("answers 502 when the certificate does not name the host", func() {
		p, _ := httpsProxy(trusted(), 0)
		w := serve(p, httptest.NewRequest("GET", "http://localhost/metrics", nil))
		Expect(w.Code).To(Equal(http.StatusBadGateway))
		Expect(w.Body.String()).To(ContainSubstring("not localhost"))
		Expect(fake.requests()).To(BeEmpty())
	})

	It("answers 502 with the reason when the upstream is down", func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		down := ln.Addr().String()
		Expect(ln.Close()).To(Succeed())
		p, reg := newProxy(proxy.Options{UpstreamAddr: down}, log)
		w := serve(p, httptest.NewRequest("GET", scrape, nil))
		Expect(w.Code).To(Equal(http.StatusBadGateway))
		Expect(w.Body.String()).To(And(ContainSubstring("upstream my-app.example.com failed"), ContainSubstring("connection refused")))
		Expect(requestsTotal(reg, proxy.OutcomeUpstreamError, "5xx")).To(Equal(1.0))
		Expect(upstreamObservations(reg)).To(Equal(uint64(1)))
		Expect(logged(log)).NotTo(ContainSubstring(appGUID), "the bearer token is never logged")
	})

	DescribeTable("gives up on the upstream when the scrape's own timeout has passed, within the configured ceiling",
		func(scrapeTimeout string, overall time.Duration, want string) {
			release := make(chan struct{})
			DeferCleanup(func() { close(release) })
			fake.respond = func(http.ResponseWriter, *http.Request) { <-release }
			p, reg := httpsProxy(trusted(), overall)
			r := httptest.NewRequest("GET", scrape, nil)
			if scrapeTimeout != "" {
				r.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", scrapeTimeout)
			}
			w := serve(p, r)
			Expect(w.Code).To(Equal(http.StatusBadGateway))
			Expect(w.Body.String()).To(ContainSubstring("no complete answer within " + want))
			Expect(requestsTotal(reg, proxy.OutcomeUpstreamError, "5xx")).To(Equal(1.0))
			Expect(upstreamObservations(reg)).To(Equal(uint64(1)))
		},
		Entry("the scrape's timeout", "0.05", time.Minute, "50ms"),
		Entry("the ceiling, shorter than the scrape's", "10", 50*time.Millisecond, "50ms"),
		Entry("the ceiling, without a scrape timeout", "", 50*time.Millisecond, "50ms"),
		Entry("the ceiling, for a malformed scrape timeout", "soon", 50*time.Millisecond, "50ms"),
	)

	It("returns a gzip answer as it is: no decompression", func() {
		var compressed bytes.Buffer
		zw := gzip.NewWriter(&compressed)
		_, err := io.WriteString(zw, strings.Repeat("http_requests_total{code=\"200\"} 1027\n", 100))
		Expect(err).NotTo(HaveOccurred())
		Expect(zw.Close()).To(Succeed())
		fake.respond = func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Accept-Encoding") != "gzip" {
				w.WriteHeader(http.StatusNotAcceptable)
				return
			}
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
			_, _ = w.Write(compressed.Bytes())
		}
		p, _ := httpsProxy(trusted(), 0)
		r := httptest.NewRequest("GET", scrape, nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := serve(p, r)
		Expect(w.Code).To(Equal(http.StatusOK))
		Expect(w.Header().Get("Content-Encoding")).To(Equal("gzip"))
		Expect(w.Header().Get("Content-Type")).To(Equal("text/plain; version=0.0.4; charset=utf-8; escaping=underscores"))
		Expect(w.Body.Bytes()).To(Equal(compressed.Bytes()))
	})

	It("answers 502 for a body over the limit", func() {
		fake.respond = func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write(bytes.Repeat([]byte("x"), 2<<20))
		}
		p, reg := newProxy(proxy.Options{
			UpstreamAddr: router.Listener.Addr().String(), TLSConfig: trusted(), MaxBodyBytes: 1 << 20,
		}, log)
		DeferCleanup(p.CloseIdleConnections)
		w := serve(p, httptest.NewRequest("GET", scrape, nil))
		Expect(w.Code).To(Equal(http.StatusBadGateway))
		Expect(w.Body.String()).To(ContainSubstring("response body larger than 1048576 bytes"))
		Expect(requestsTotal(reg, proxy.OutcomeUpstreamError, "5xx")).To(Equal(1.0))
	})

	It("passes the router's answer back as it is, X-Cf-Routererror included", func() {
		fake.respond = func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Cf-Routererror", "unknown_route")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "404 Not Found: Requested route ('my-app.example.com') does not exist.\n")
		}
		p, reg := httpsProxy(trusted(), 0)
		w := serve(p, httptest.NewRequest("GET", scrape, nil))
		Expect(w.Code).To(Equal(http.StatusNotFound))
		Expect(w.Header().Get("X-Cf-Routererror")).To(Equal("unknown_route"))
		Expect(w.Body.String()).To(ContainSubstring("does not exist"))
		Expect(requestsTotal(reg, proxy.OutcomeForwarded, "4xx")).To(Equal(1.0))
	})

	It("returns a large body unchanged, chunked or not, and adds no Content-Type", func() {
		body := strings.Repeat("http_requests_total{code=\"200\"} 1027\n", 5000)
		fake.respond = func(w http.ResponseWriter, r *http.Request) {
			w.Header()["Content-Type"] = nil
			if r.URL.Query().Get("chunked") == "" {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			}
			for i := 0; i < len(body); i += 4096 {
				_, _ = io.WriteString(w, body[i:min(i+4096, len(body))])
				w.(http.Flusher).Flush()
			}
		}
		p, _ := httpsProxy(trusted(), 0)
		client := proxyClient("http://" + startProxy(p))
		for _, query := range []string{"", "&chunked=1"} {
			resp, err := client.Get(scrape + query)
			Expect(err).NotTo(HaveOccurred())
			got, err := io.ReadAll(resp.Body)
			Expect(err).NotTo(HaveOccurred())
			Expect(resp.Body.Close()).To(Succeed())
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(string(got)).To(Equal(body))
			Expect(resp.Header).NotTo(HaveKey("Content-Type"))
			Expect(resp.ContentLength).To(Equal(int64(len(body))))
		}
	})

	It("reuses one upstream connection for sequential scrapes", func() {
		p, _ := httpsProxy(trusted(), 0)
		client := proxyClient("http://" + startProxy(p))

		for i := range 5 {
			for _, method := range []string{"GET", "HEAD"} {
				req, err := http.NewRequest(method, "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"), nil)
				Expect(err).NotTo(HaveOccurred())
				resp, err := client.Do(req)
				Expect(err).NotTo(HaveOccurred())
				_, _ = io.Copy(io.Discard, resp.Body)
				Expect(resp.Body.Close()).To(Succeed())
				Expect(resp.StatusCode).To(Equal(http.StatusOK), "request %d", i)
			}
		}
		Expect(fake.requests()).To(HaveLen(10))
		Expect(newConns.Load()).To(Equal(int64(1)))
	})

	It("opens a new connection when the upstream closed the pooled one", func() {
		p, _ := httpsProxy(trusted(), 0)
		for i := range 3 {
			w := serve(p, httptest.NewRequest("GET", scrape, nil))
			Expect(w.Code).To(Equal(http.StatusOK), "request %d: %s", i, w.Body.String())
			router.CloseClientConnections()
		}
		Expect(fake.requests()).To(HaveLen(3))
		Expect(newConns.Load()).To(Equal(int64(3)))
	})
})

// proxyClient is an HTTP client that sends every request through the
// forward proxy at proxyURL, in absolute form, as Prometheus does with
// proxy_url.
func proxyClient(proxyURL string) *http.Client {
	u, err := url.Parse(proxyURL)
	Expect(err).NotTo(HaveOccurred())
	transport := &http.Transport{Proxy: http.ProxyURL(u)}
	DeferCleanup(transport.CloseIdleConnections)
	return &http.Client{Transport: transport}
}
