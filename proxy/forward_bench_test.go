package proxy_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/alphagov/cf-app-discovery/proxy"
)

// BenchmarkForward measures the proxy's own cost per scrape (allocations
// included) against an in-process HTTPS upstream over loopback; the
// comparison with nginx is proxy/bench/bench-proxy.sh.
func BenchmarkForward(b *testing.B) {
	cert, roots := benchCert(b)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("up 1\n"))
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	up.StartTLS()
	defer up.Close()
	allow, err := proxy.ParseAllowList([]string{"example.com"})
	if err != nil {
		b.Fatal(err)
	}
	p, err := proxy.New(proxy.Options{AllowList: allow, UpstreamAddr: up.Listener.Addr().String(), TLSConfig: &tls.Config{RootCAs: roots}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.CloseIdleConnections()
	target := "http://my-app.example.com/metrics?" + scrapeQuery(appGUID, "0")
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
