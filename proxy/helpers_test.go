package proxy_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"code.cloudfoundry.org/lager/v3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/alphagov/cf-app-discovery/proxy"
)

const (
	appGUID   = "1b2a9e3c-5d4f-4a6b-8c7d-9e0f1a2b3c4d"
	otherGUID = "0f0e0d0c-0b0a-4090-8070-605040302010"
)

// scrapeQuery is the query Prometheus builds from a target file's labels
// (url.Values.Encode, so the ':' of the instance arrives as %3A).
func scrapeQuery(guid string, index string) string {
	return "cf_app_guid=" + guid + "&cf_app_instance=" + guid + "%3A" + index + "&cf_app_instance_index=" + index
}

// seenRequest is what an upstream saw of one request.
type seenRequest struct {
	Method     string
	RequestURI string
	Host       string
	Header     http.Header
	ServerName string // TLS SNI, "" over plain http
}

// upstream records the requests that reach it and answers with respond.
type upstream struct {
	mu      sync.Mutex
	seen    []seenRequest
	respond http.HandlerFunc
}

func newUpstream() *upstream {
	return &upstream{respond: func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Header().Set("X-Upstream", "fake")
		_, _ = w.Write([]byte("up 1\n"))
	}}
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := seenRequest{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()}
	if r.TLS != nil {
		s.ServerName = r.TLS.ServerName
	}
	u.mu.Lock()
	u.seen = append(u.seen, s)
	respond := u.respond
	u.mu.Unlock()
	respond(w, r)
}

func (u *upstream) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.seen...)
}

// newProxy builds a proxy (allowing example.com and localhost unless o
// says otherwise) with its own registry served on /metrics, logging at debug
// level to log.
func newProxy(o proxy.Options, log *strings.Builder) (*proxy.Proxy, *prometheus.Registry) {
	if o.AllowList.String() == "" {
		o.AllowList = mustAllow("example.com", "localhost")
	}
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	o.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if log != nil {
		logger := lager.NewLogger("paas-proxy")
		logger.RegisterSink(lager.NewWriterSink(&syncWriter{b: log}, lager.DEBUG))
		o.Logger = logger
	}
	p, err := proxy.New(o)
	Expect(err).NotTo(HaveOccurred())
	return p, reg
}

func mustAllow(entries ...string) proxy.AllowList {
	allow, err := proxy.ParseAllowList(entries)
	Expect(err).NotTo(HaveOccurred())
	return allow
}

// logMu guards the log builders the proxies under test write to.
var logMu sync.Mutex

type syncWriter struct {
	b *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return w.b.Write(p)
}

// logged returns what a proxy under test has logged to log so far.
func logged(log *strings.Builder) string {
	logMu.Lock()
	defer logMu.Unlock()
	return log.String()
}

// requestsTotal reads cf_app_discovery_proxy_requests_total{outcome, code}.
func requestsTotal(reg *prometheus.Registry, outcome, code string) float64 {
	families, err := reg.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "cf_app_discovery_proxy_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["outcome"] == outcome && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// upstreamObservations reads the sample count of the upstream histogram.
func upstreamObservations(reg *prometheus.Registry) uint64 {
	families, err := reg.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() == "cf_app_discovery_proxy_upstream_duration_seconds" {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// selfSignedCert returns a certificate for names, and a pool that trusts it.
func selfSignedCert(names ...string) (tls.Certificate, *x509.CertPool) {
	cert, pool, err := makeCert(names...)
	Expect(err).NotTo(HaveOccurred())
	return cert, pool
}

func benchCert(b *testing.B) (tls.Certificate, *x509.CertPool) {
	cert, pool, err := makeCert("*.example.com")
	if err != nil {
		b.Fatal(err)
	}
	return cert, pool
}

func makeCert(names ...string) (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// startProxy serves p on a loopback port, as paas-proxy does, until the
// test ends, and returns the address.
func startProxy(p *proxy.Proxy) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	server := p.Server()
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()
	DeferCleanup(func() {
		// A test may leave a scrape hanging: its connection is left to
		// the test's own cleanup.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = server.ShutdownWithContext(ctx)
		Expect(<-served).To(Succeed())
	})
	return ln.Addr().String()
}

// send sends r to the proxy at addr on a new connection, with
// r.RequestURI as the request target (absolute form for a scrape, as
// Prometheus sends with proxy_url), and returns the response read back.
func send(addr string, r *http.Request) *httptest.ResponseRecorder {
	var b strings.Builder
	b.WriteString(r.Method + " " + r.RequestURI + " HTTP/1.1\r\nHost: " + r.Host + "\r\n")
	Expect(r.Header.Write(&b)).To(Succeed())
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(r.Body)
		Expect(err).NotTo(HaveOccurred())
	}
	switch {
	case len(r.TransferEncoding) > 0:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if len(body) > 0 {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(body), body)
		}
		b.WriteString("0\r\n\r\n")
	case r.ContentLength > 0:
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	default:
		b.WriteString("\r\n")
	}
	conn, err := net.Dial("tcp", addr)
	Expect(err).NotTo(HaveOccurred())
	defer conn.Close()
	_, err = io.WriteString(conn, b.String())
	Expect(err).NotTo(HaveOccurred())
	return readResponse(conn, r.Method)
}

func readResponse(conn net.Conn, method string) *httptest.ResponseRecorder {
	Expect(conn.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	w := httptest.NewRecorder()
	maps.Copy(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, err = io.Copy(w, resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return w
}

// newPlainUpstream serves h over plain http on loopback until the test
// ends, and returns its address.
func newPlainUpstream(h http.Handler) string {
	server := httptest.NewServer(h)
	DeferCleanup(server.Close)
	return server.Listener.Addr().String()
}
