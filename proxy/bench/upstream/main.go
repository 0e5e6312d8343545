// Command upstream is the fake app behind the CF router for
// bench-proxy.sh: an HTTPS server on 127.0.0.1 with a throwaway self-signed
// certificate that answers a small metrics body only when the scrape headers
// paas-proxy (or nginx) must set are right, and 403 otherwise, so that a
// proxy that gets them wrong cannot look fast.
//
// It writes cert.pem into -dir, then the address it listens on into
// -dir/upstream.addr once it accepts connections. With -free-port it only
// prints a free loopback port and exits.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

const metricsBody = `# HELP up Whether the app is up.
# TYPE up gauge
up 1
# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{code="200"} 1027
http_requests_total{code="500"} 3
`

func main() {
	dir := flag.String("dir", "", "directory for cert.pem and upstream.addr")
	host := flag.String("host", "my-app.bench.local", "host name the certificate is for")
	guid := flag.String("guid", "", "app guid the scrape headers must name")
	index := flag.String("index", "0", "instance index the scrape headers must name")
	bodyBytes := flag.Int("body-bytes", 0, "pad the metrics body with series up to about this size")
	freePort := flag.Bool("free-port", false, "print a free loopback port and exit")
	flag.Parse()
	if *freePort {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		_ = ln.Close()
		return
	}
	if *dir == "" || *guid == "" {
		log.Fatal("usage: upstream -dir DIR -guid GUID [-host NAME] [-index N]")
	}

	cert, err := writeCert(*dir, *host)
	if err != nil {
		log.Fatal(err)
	}
	body := []byte(metricsBody)
	for i := 0; len(body) < *bodyBytes; i++ {
		body = fmt.Appendf(body, "bench_series{le=\"%d\"} %d\n", i, i*7)
	}
	instance, bearer := *guid+":"+*index, "Bearer "+*guid
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != *host || r.Header.Get("X-Cf-App-Instance") != instance ||
			r.Header.Get("Xx-Cf-App-Instance") != instance || r.Header.Get("Authorization") != bearer {
			http.Error(w, "wrong scrape headers", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	// HTTP/1.1 only, as the CF router speaks to both proxies.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	server := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		Protocols:         &protocols,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ErrorLog:          log.New(os.Stderr, "upstream: ", 0),
	}
	if err := os.WriteFile(filepath.Join(*dir, "upstream.addr"), []byte(ln.Addr().String()), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Fatal(server.ServeTLS(ln, "", ""))
}

// writeCert makes a self-signed certificate for host, writes it to
// dir/cert.pem for the proxies to trust, and returns it.
func writeCert(dir, host string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: host},
		DNSNames:              []string{host},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
