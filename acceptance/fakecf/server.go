// Package fakecf is a fake Cloud Foundry API v3 with its UAA token endpoint,
// for tests and local demos. It answers like the real API for the calls
// cf-app-discovery makes (same JSON shapes, pagination, filters, includes,
// errors and request-line limit) and holds its state in memory, set through
// Go methods or, for another process, the control endpoints under /fake/.
// Tenant actions (scale, stop, rename, rolling and canary deployments...)
// change the state and record audit events as Cloud Controller does. It
// also counts requests and injects latency and faults.
package fakecf

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Credentials a Server accepts when Options leaves them unset.
const (
	DefaultUsername     = "monitoring"
	DefaultPassword     = "monitoring-password"
	DefaultClientID     = "cf-app-discovery"
	DefaultClientSecret = "cf-app-discovery-secret"
)

// MaxRequestLine is the longest request line (method, space, URL) the fake
// accepts; longer ones get 414, as from the CF API's front proxy.
const MaxRequestLine = 8192

// Options configure a Server.
type Options struct {
	// Users maps user names to passwords for the password grant
	// (default: DefaultUsername).
	Users map[string]string
	// Clients maps client ids to secrets for the client_credentials grant
	// (default: DefaultClientID).
	Clients map[string]string
	// TokenTTL is the lifetime of access tokens (default one hour).
	TokenTTL time.Duration
	// Now is the fake's clock (default time.Now): it stamps audit events,
	// deployments and processes that deployments create, and the Date
	// header of API answers, so that a test can put several events in one
	// second or step over a second boundary. It must be safe for
	// concurrent use.
	Now func() time.Time
}

// Server is a running fake CF API and UAA on 127.0.0.1. Its methods are safe
// for concurrent use.
type Server struct {
	srv  *httptest.Server
	done chan struct{}
	once sync.Once

	auth    *authority
	counts  *counter
	faults  *faultSet
	control http.Handler

	mu      sync.Mutex
	latency time.Duration
	st      *state
	snap    *snapshot // nil when the state changed since it was built
}

// New starts a Server.
func New(opts Options) *Server {
	s := NewUnstarted(opts)
	s.Start()
	return s
}

// NewUnstarted returns a Server that serves nothing until Start, so that
// tests can set state first.
func NewUnstarted(opts Options) *Server {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		done:   make(chan struct{}),
		auth:   newAuthority(opts),
		counts: newCounter(),
		faults: &faultSet{},
		st:     newState(now),
	}
	s.control = s.controlHandler()
	s.srv = httptest.NewUnstartedServer(s)
	return s
}

// Start starts serving on a random loopback port and returns the URL.
func (s *Server) Start() string {
	s.srv.Start()
	return s.URL()
}

// StartOn starts serving on addr, a fixed loopback address (for the demo,
// whose printed commands must not change between runs).
func (s *Server) StartOn(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	_ = s.srv.Listener.Close()
	s.srv.Listener = ln
	return s.Start(), nil
}

// URL is the API root URL (also the UAA and login URL).
func (s *Server) URL() string {
	return s.srv.URL
}

// Handler returns the server's handler, for mounting elsewhere. Links in
// answers point at URL.
func (s *Server) Handler() http.Handler {
	return s
}

// Close releases hung requests and stops the server.
func (s *Server) Close() {
	s.once.Do(func() { close(s.done) })
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetLatency delays every later request by d before it is answered.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// ServeHTTP answers one request. Requests to the control endpoints under
// /fake/ are served at once; others are counted, wait for the configured
// latency, meet the request-line limit and any fault, then get the root,
// the token endpoint or (with a valid token) the v3 API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, controlPrefix) {
		s.control.ServeHTTP(w, r)
		return
	}
	s.counts.add(r)
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 && !s.wait(r, latency) {
		return
	}
	if len(r.Method)+1+len(r.RequestURI) > MaxRequestLine {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusRequestURITooLong)
		_, _ = w.Write([]byte("<html><body><h1>414 Request-URI Too Large</h1></body></html>\n"))
		return
	}
	if f, ok := s.faults.take(r); ok {
		switch {
		case f.Hang:
			s.wait(r, 0)
			return
		case f.TruncatePage > 0:
			tw := &truncatingWriter{ResponseWriter: w}
			s.route(tw, r)
			tw.flush()
			return
		default:
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			writeError(w, f.Status, apiError{Code: 10001, Title: "CF-ServiceUnavailable", Detail: "injected fault"})
			return
		}
	}
	s.route(w, r)
}

// wait sleeps for d (forever when d is 0) unless the client goes away or the
// server closes; it reports whether the request should still be answered.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-timer:
		return true
	case <-r.Context().Done():
	case <-s.done:
	}
	return false
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/" || r.URL.Path == "":
		s.serveRoot(w, r)
	case r.URL.Path == "/oauth/token":
		s.auth.serveToken(w, r)
	case strings.HasPrefix(r.URL.Path, "/v3/"):
		// Clients take the platform's time from the Date header.
		w.Header().Set("Date", s.st.now().UTC().Format(http.TimeFormat))
		if !s.auth.check(w, r) {
			return
		}
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, apiError{Code: 10000, Title: "CF-NotFound", Detail: "Unknown request"})
			return
		}
		s.serveV3(w, r, s.snapshot())
	default:
		writeError(w, http.StatusNotFound, apiError{Code: 10000, Title: "CF-NotFound", Detail: "Unknown request"})
	}
}

// serveRoot answers GET / with the links go-cfclient and the cf CLI read:
// the UAA and login servers are this server.
func (s *Server) serveRoot(w http.ResponseWriter, _ *http.Request) {
	base := s.URL()
	writeJSON(w, http.StatusOK, map[string]any{
		"links": map[string]any{
			"self":                map[string]any{"href": base},
			"bits_service":        nil,
			"cloud_controller_v2": nil,
			"cloud_controller_v3": map[string]any{"href": base + "/v3", "meta": map[string]any{"version": "3.180.0"}},
			"network_policy_v0":   map[string]any{"href": base + "/networking/v0/external"},
			"network_policy_v1":   map[string]any{"href": base + "/networking/v1/external"},
			"login":               map[string]any{"href": base},
			"uaa":                 map[string]any{"href": base},
			"credhub":             nil,
			"routing":             nil,
			"logging":             nil,
			"log_cache":           nil,
			"log_stream":          nil,
			"app_ssh": map[string]any{"href": "127.0.0.1:2222", "meta": map[string]any{
				"host_key_fingerprint": "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00", "oauth_client": "ssh-proxy",
			}},
		},
	})
}
