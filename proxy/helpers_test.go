package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"code.cloudfoundry.org/lager/v3"
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

type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
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
