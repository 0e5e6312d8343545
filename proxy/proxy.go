// Package proxy is paas-proxy: the forward proxy on each Prometheus host
// through which Prometheus scrapes app instances on Cloud Foundry (SPEC §5).
//
// Prometheus sends each scrape in absolute form
// (GET http://my-app.example.com/metrics?cf_app_guid=G&cf_app_instance=G%3A0&cf_app_instance_index=0).
// The proxy forwards it to the app's route, turning the scrape parameters of
// the shared contract (scrape.Params) into the headers the CF router
// routes on and the app's metrics endpoint checks. It is never an open proxy:
// only hosts on the allow-list are reached, and only GET and HEAD.
package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/prometheus/client_golang/prometheus"
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
	// Timeouts bound each upstream exchange; zero fields take defaults.
	Timeouts Timeouts
	// Registerer receives the proxy's metrics; nil means they are not
	// exported.
	Registerer prometheus.Registerer
	// Metrics serves origin-form GET /metrics (promhttp on the registry
	// behind Registerer); nil answers 404.
	Metrics http.Handler
	// Logger receives one line per rejected request and per upstream
	// failure; nil discards them.
	Logger lager.Logger
	// EventLoops is how many event loops serve the TCP connections of
	// Server (on Linux): 0 means runtime.GOMAXPROCS(0), as nginx runs a
	// worker per core; below 0, each connection gets its own goroutine.
	// A loop waits in epoll_wait holding its P (the runtime's right to
	// run Go code); give the runtime one P more than loops (see
	// cmd/paas-proxy), or its monitor thread takes the waiting Ps back
	// and wakes every 20 µs to do so.
	EventLoops int
}

// Timeouts bound each upstream exchange. Prometheus abandons a scrape after
// its scrape_timeout (10 s by default) and the proxy then cancels the
// upstream request at once; these are the backstops for clients that don't.
type Timeouts struct {
	// Dial bounds opening a TCP connection upstream.
	Dial time.Duration
	// TLSHandshake bounds the TLS handshake upstream.
	TLSHandshake time.Duration
	// ResponseHeader bounds the wait for the upstream's response header
	// once the request is sent.
	ResponseHeader time.Duration
	// Overall bounds the whole exchange, body included.
	Overall time.Duration
}

// DefaultTimeouts are the timeouts used for the zero fields of
// Options.Timeouts.
var DefaultTimeouts = Timeouts{
	Dial:           5 * time.Second,
	TLSHandshake:   5 * time.Second,
	ResponseHeader: 30 * time.Second,
	Overall:        60 * time.Second,
}

func (t Timeouts) withDefaults() Timeouts {
	if t.Dial <= 0 {
		t.Dial = DefaultTimeouts.Dial
	}
	if t.TLSHandshake <= 0 {
		t.TLSHandshake = DefaultTimeouts.TLSHandshake
	}
	if t.ResponseHeader <= 0 {
		t.ResponseHeader = DefaultTimeouts.ResponseHeader
	}
	if t.Overall <= 0 {
		t.Overall = DefaultTimeouts.Overall
	}
	return t
}

// Proxy is paas-proxy. Served by its Server, it forwards absolute-form
// requests as scrapes, and answers origin-form GET /health and GET /metrics
// for itself.
type Proxy struct {
	allow   AllowList
	client  *client
	overall time.Duration
	metrics *metrics
	logger  lager.Logger
	// metricsHandler serves GET /metrics; nil answers 404.
	metricsHandler http.Handler
	eventLoops     int
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
	if o.UpstreamAddr != "" {
		if err := checkHostPort(o.UpstreamAddr); err != nil {
			return nil, fmt.Errorf("upstream address: %w", err)
		}
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = lager.NewLogger("paas-proxy")
	}
	o.Timeouts = o.Timeouts.withDefaults()
	p := &Proxy{
		allow:   o.AllowList,
		client:  newClient(o),
		overall: o.Timeouts.Overall,
		metrics: newMetrics(o.Registerer),
		logger:  o.Logger,
	}
	p.metricsHandler = o.Metrics
	switch {
	case o.EventLoops == 0:
		p.eventLoops = runtime.GOMAXPROCS(0)
	case o.EventLoops > 0:
		p.eventLoops = o.EventLoops
	}
	return p, nil
}

// CloseIdleConnections closes the pooled upstream connections; call it on
// shutdown.
func (p *Proxy) CloseIdleConnections() {
	p.client.closeIdle()
}

// serve answers one request on c: an absolute-form request is a scrape to
// forward, an origin-form one is for the proxy itself. The two cannot be
// confused: a proxied request is always in absolute form. It reports
// whether the connection may carry another request.
func (p *Proxy) serve(c *serverConn, r *request) bool {
	x, keep, answered := p.route(c, r)
	if answered {
		return keep
	}
	return p.exchange(c, r, x)
}

// route answers r when it is no scrape to forward, or a scrape rejected
// (answered is true, and keep whether the connection may carry another
// request); otherwise it returns the checked scrape.
func (p *Proxy) route(c *serverConn, r *request) (x checkedScrape, keep, answered bool) {
	switch {
	case r.hasBody:
		// Checked first, for every request: its body is never read, and
		// the connection closes after the answer.
		return x, p.reject(c, r, http.StatusBadRequest, OutcomeRejectedRequest, "paas-proxy reads no request body: a scrape has none"), true
	case r.method == http.MethodConnect:
		// Prometheus tunnels only https scrapes, whose query the proxy
		// could not read; the scrape job must use scheme: http.
		return x, p.reject(c, r, http.StatusMethodNotAllowed, OutcomeRejectedMethod, "CONNECT is not supported: scrape with scheme: http"), true
	case r.url.IsAbs():
		return p.prepare(c, r)
	default:
		return x, p.serveLocal(c, r), true
	}
}

// serveLocal answers GET /health and GET /metrics.
func (p *Proxy) serveLocal(c *serverConn, r *request) bool {
	var h http.Handler
	switch r.url.Path {
	case "/health":
		h = http.HandlerFunc(health)
	case "/metrics":
		h = p.metricsHandler
	}
	switch {
	case h == nil:
		p.metrics.count(OutcomeNotFound, http.StatusNotFound)
		p.logger.Debug("not-found", lager.Data{"method": r.method, "path": r.url.Path})
		return c.writeText(r, http.StatusNotFound, "404 page not found", "") == nil && !r.close
	case r.method != http.MethodGet && r.method != http.MethodHead:
		return p.reject(c, r, http.StatusMethodNotAllowed, OutcomeRejectedMethod, "method "+r.method+" is not allowed")
	}
	p.metrics.count(OutcomeLocal, http.StatusOK)
	return c.serveHandler(r, h) == nil && !r.close
}

func health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// reject answers status with reason as a plain-text body, counts it and logs
// one line. Neither the query (which carries the app guid, the app's bearer
// token) nor any header is logged. It reports whether the connection may
// carry another request.
func (p *Proxy) reject(c *serverConn, r *request, status int, outcome, reason string) bool {
	p.metrics.count(outcome, status)
	data := lager.Data{"outcome": outcome, "status": status, "reason": reason, "method": r.method}
	if r.url != nil {
		data["host"], data["path"] = r.url.Host, r.url.Path
	}
	p.logger.Info("rejected", data)
	extra := ""
	if status == http.StatusMethodNotAllowed {
		extra = "Allow: GET, HEAD\r\n"
	}
	return c.writeText(r, status, reason, extra) == nil && !r.close
}

// rejectUnread answers a request that could not be read (malformed, or a
// header too long) and closes the connection.
func (p *Proxy) rejectUnread(c *serverConn, e *requestError) {
	p.metrics.count(OutcomeRejectedRequest, e.status)
	p.logger.Info("rejected", lager.Data{"outcome": OutcomeRejectedRequest, "status": e.status, "reason": e.reason})
	_ = c.writeText(nil, e.status, e.reason, "")
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has no valid port", addr)
	}
	return nil
}
