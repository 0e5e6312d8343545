package proxy

import (
	"net/http"
	"time"
)

// Server returns the HTTP server paas-proxy listens with, serving p: bounded
// request headers (no scrape needs more than a few hundred bytes) and time
// limits that outlast the upstream timeouts, so that the upstream's answer
// or the proxy's 502 always reaches the client first.
func (p *Proxy) Server() *http.Server {
	return &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      p.overall + 15*time.Second,
		// Prometheus reuses its connection to the proxy from one scrape to
		// the next; keep it across the usual scrape intervals.
		IdleTimeout:    5 * time.Minute,
		MaxHeaderBytes: 16 << 10,
	}
}
