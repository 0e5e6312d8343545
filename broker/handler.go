package broker

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/pivotal-cf/brokerapi/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// RequestTimeout bounds the work on one request, so that a hung CF API or
// store turns into a 503 before Cloud Controller gives up on a bind (60 s).
const RequestTimeout = 50 * time.Second

// MaxBodyBytes bounds request bodies: an OSB request is a few hundred bytes,
// bind parameters included.
const MaxBodyBytes = 64 << 10

// Credentials are the basic-auth credentials Cloud Controller presents.
type Credentials struct {
	Username string
	Password string
}

// NewHandler serves the OSB API behind basic auth (compared in constant
// time by brokerapi), GET /health without auth for CF's health check, and
// GET /metrics with the broker's own metrics from gatherer. Requests are
// counted by operation and status code on reg.
func NewHandler(b *Broker, logger lager.Logger, creds Credentials, reg prometheus.Registerer, gatherer prometheus.Gatherer) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cf_app_discovery_broker_requests_total",
		Help: "OSB requests by operation and status code.",
	}, []string{"operation", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cf_app_discovery_broker_request_duration_seconds",
		Help:    "OSB request duration by operation.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	}, []string{"operation"})
	reg.MustRegister(requests, duration)

	osb := brokerapi.New(b, logger, brokerapi.BrokerCredentials(creds))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.Handle("/v2/", osb)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, cancel := context.WithTimeout(r.Context(), RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		if !canonicalPath(r.URL.Path) {
			// ServeMux would answer a redirect to the cleaned path, which
			// for "service_bindings/.." is another OSB resource.
			rec.Header().Set("Content-Type", "application/json")
			rec.WriteHeader(http.StatusBadRequest)
			_, _ = rec.Write([]byte(`{"description":"the request path has empty, '.' or '..' segments"}` + "\n"))
		} else {
			mux.ServeHTTP(rec, r)
		}
		op := Operation(r.Method, r.URL.Path)
		requests.WithLabelValues(op, strconv.Itoa(rec.status)).Inc()
		duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	})
}

// canonicalPath reports whether p is absolute and has no empty, "." or
// ".." segment (a trailing slash is allowed).
func canonicalPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	segments := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	for i, s := range segments {
		if s == "." || s == ".." || (s == "" && !(i == 0 && len(segments) == 1)) {
			return false
		}
	}
	return true
}

// Operation names the OSB operation of a request, for metrics.
func Operation(method, path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "/health" || path == "/metrics":
		return strings.TrimPrefix(path, "/")
	case len(parts) == 2 && parts[1] == "catalog":
		return "catalog"
	case len(parts) == 3 && parts[1] == "service_instances":
		return byMethod(method, map[string]string{"PUT": "provision", "PATCH": "update", "DELETE": "deprovision", "GET": "get-instance"})
	case len(parts) == 4 && parts[3] == "last_operation":
		return "last-operation"
	case len(parts) == 5 && parts[3] == "service_bindings":
		return byMethod(method, map[string]string{"PUT": "bind", "DELETE": "unbind", "GET": "get-binding"})
	case len(parts) == 6 && parts[5] == "last_operation":
		return "last-binding-operation"
	}
	return "other"
}

func byMethod(method string, ops map[string]string) string {
	if op, ok := ops[method]; ok {
		return op
	}
	return "other"
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
