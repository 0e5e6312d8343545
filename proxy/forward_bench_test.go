package proxy_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/alphagov/cf-app-discovery/proxy"
)

// BenchmarkForward measures the cost per scrape (allocations included) of
// the proxy's server and client: one client connection, and an in-process
// HTTPS upstream over loopback. The comparison with nginx is
// proxy/bench/bench-proxy.sh.
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	server := p.Server()
	go func() { _ = server.Serve(ln) }()
	defer func() { _ = server.Shutdown() }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	request := []byte("GET http://my-app.example.com/metrics?" + scrapeQuery(appGUID, "0") + " HTTP/1.1\r\nHost: my-app.example.com\r\n\r\n")
	br := bufio.NewReader(conn)
	defer conn.Close() // before Shutdown, which waits for it
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(request); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
