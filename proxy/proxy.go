// Package proxy is paas-proxy: the forward proxy on each Prometheus host
// through which Prometheus scrapes app instances on Cloud Foundry.
//
// Prometheus sends each scrape in absolute form
// (GET http://my-app.example.com/metrics?cf_app_guid=G&cf_app_instance=G%3A0&cf_app_instance_index=0).
// The proxy forwards it to the app's route, turning the scrape parameters of
// the shared contract (package scrape) into the headers the CF router
// routes on and the app's metrics endpoint checks. It is never an open proxy:
// only hosts on the allow-list are reached, and only GET and HEAD.
//
// HTTP itself is fasthttp's, on both sides: a fasthttp.Server, and a
// fasthttp.Client that keeps a pool of connections per upstream host. This
// package decides what is forwarded, and how.
package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Options configure a Proxy.
type Options struct {
	// AllowList names the hosts scrapes may reach (ALLOWED_DOMAINS).
	AllowList AllowList
	// UpstreamScheme is "https" (the default when empty) or "http".
	UpstreamScheme string
	// UpstreamAddr, when set, is the host:port every upstream connection is
	// dialled to (the CF router's load balancer, or a fake router in tests).
	// The Host header and TLS server name still come from the scrape URL.
	UpstreamAddr string
	// TLSConfig is the base of the upstream TLS configuration; nil means
	// the system roots. The server name is always set per connection from
	// the scrape URL.
	TLSConfig *tls.Config
	// Timeout bounds each upstream exchange, body included (zero means
	// DefaultTimeout), and a scrape's own X-Prometheus-Scrape-Timeout-Seconds
	// bounds it too.
	Timeout time.Duration
	// MaxBodyBytes bounds an upstream response body, read whole before
	// answering: a larger one gets 502. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int
	// Registerer receives the proxy's metrics; nil means they are not
	// exported.
	Registerer prometheus.Registerer
	// Metrics serves origin-form GET /metrics (promhttp on the registry
	// behind Registerer); nil answers 404.
	Metrics http.Handler
	// Logger receives one line per rejected request and per upstream
	// failure; nil discards them.
	Logger lager.Logger
}

// DefaultTimeout is the default of Options.Timeout.
const DefaultTimeout = time.Minute

// DefaultMaxBodyBytes is the default of Options.MaxBodyBytes: far above
// an app's metrics (gzipped), far below what would exhaust the host.
const DefaultMaxBodyBytes = 32 << 20

// Server limits for client connections.
const (
	// MaxHeaderBytes bounds a client's request line and header together
	// (the server's read buffer). A scrape's are a few hundred bytes.
	MaxHeaderBytes = 16 << 10
	// MaxRequestURI is the longest request target the proxy forwards, as
	// the CF router's front proxy allows.
	MaxRequestURI = 8 << 10
	// maxRequestBody bounds what the server reads of a request body before
	// refusing the request: a scrape has none.
	maxRequestBody = 4 << 10
	readTimeout    = 10 * time.Second
	idleTimeout    = 5 * time.Minute
	writeTimeout   = 15 * time.Second
)

// Proxy is paas-proxy. Its Server forwards absolute-form requests as
// scrapes, and answers origin-form GET /health and GET /metrics itself.
type Proxy struct {
	allow   AllowList
	scheme  string
	client  *fasthttp.Client
	overall time.Duration
	maxBody int
	metrics *metrics
	logger  lager.Logger
	// metricsHandler serves GET /metrics; nil answers 404.
	metricsHandler fasthttp.RequestHandler
}

// ErrUpstreamScheme is returned by New for an upstream scheme other than
// http or https.
var ErrUpstreamScheme = errors.New("upstream scheme must be https or http")

// New returns a Proxy. It fails when the allow-list is empty or the
// options are inconsistent.
func New(o Options) (*Proxy, error) {
	if len(o.AllowList.domains) == 0 && len(o.AllowList.exact) == 0 {
		return nil, ErrEmptyAllowList
	}
	switch o.UpstreamScheme {
	case "":
		o.UpstreamScheme = "https"
	case "https", "http":
	default:
		return nil, fmt.Errorf("%w, got %q", ErrUpstreamScheme, o.UpstreamScheme)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = lager.NewLogger("paas-proxy")
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	p := &Proxy{
		allow:   o.AllowList,
		scheme:  o.UpstreamScheme,
		client:  newClient(o),
		overall: o.Timeout,
		maxBody: o.MaxBodyBytes,
		metrics: newMetrics(o.Registerer),
		logger:  o.Logger,
	}
	if o.Metrics != nil {
		p.metricsHandler = fasthttpadaptor.NewFastHTTPHandler(o.Metrics)
	}
	return p, nil
}

// Server returns a new fasthttp server for p. Stop it with
// ShutdownWithContext: the scrapes in flight finish, their clients told
// that the connection closes.
func (p *Proxy) Server() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:      p.serve,
		ErrorHandler: p.unreadable,
		// A scrape has no body to wait for: 417 rather than 100 Continue.
		ContinueHandler:              func(*fasthttp.RequestHeader) bool { return false },
		ReadBufferSize:               MaxHeaderBytes,
		MaxRequestBodySize:           maxRequestBody,
		ReadTimeout:                  readTimeout,
		IdleTimeout:                  idleTimeout,
		WriteTimeout:                 writeTimeout,
		CloseOnShutdown:              true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		// Fewer error messages quote the request (see serverLog).
		SecureErrorLogMessage: true,
		Logger:                serverLog{p.logger},
	}
}

// CloseIdleConnections closes the pooled upstream connections; call it on
// shutdown.
func (p *Proxy) CloseIdleConnections() {
	p.client.CloseIdleConnections()
}

// serverLog logs that fasthttp's server met an error of its own (a
// connection that failed in an unexpected way, a panic of the metrics
// handler). Only the kind of error is logged, not its data: fasthttp
// quotes the request it could not read, and the query of a scrape holds
// the app guid, the app's bearer token. (The proxy logs and counts every
// request it refuses itself.)
type serverLog struct{ logger lager.Logger }

func (l serverLog) Printf(format string, _ ...any) {
	l.logger.Info("server-error", lager.Data{"error": format})
}
