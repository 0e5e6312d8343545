package cfapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/scrape"
)

// metrics count and time every HTTP attempt to the CF API and UAA.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cf_app_discovery_cf_requests_total",
			Help: "HTTP requests to the CF API and UAA, retries included, by endpoint and status code (\"error\" when no answer came).",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cf_app_discovery_cf_request_duration_seconds",
			Help:    "Time to the response headers of HTTP requests to the CF API and UAA, by endpoint.",
			Buckets: prometheus.DefBuckets,
		}, []string{"endpoint"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the equal collector already registered
// (several clients may share a registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// measured records each HTTP attempt it sends. promhttp's round-tripper
// instruments count no failed attempts, and those are the ones to watch.
type measured struct {
	base    http.RoundTripper
	metrics *metrics
}

// RoundTrip implements http.RoundTripper.
func (m measured) RoundTrip(req *http.Request) (*http.Response, error) {
	label := endpoint(req.URL.Path)
	start := time.Now()
	resp, err := m.base.RoundTrip(req)
	m.metrics.duration.WithLabelValues(label).Observe(time.Since(start).Seconds())
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	m.metrics.requests.WithLabelValues(label, code).Inc()
	return resp, err
}

// endpoint is the metric label of a URL path: GUIDs become ":guid".
func endpoint(path string) string {
	segments := strings.Split(path, "/")
	for i, s := range segments {
		if scrape.ValidGUID(s) {
			segments[i] = ":guid"
		}
	}
	return strings.Join(segments, "/")
}
