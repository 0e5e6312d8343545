package httpsd

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Refresh steps, the values of the step label of refresh errors.
const (
	stepList = "list"
	stepRead = "read"
)

// Request outcomes, the values of the outcome label of requests.
const (
	outcomeAll              = "all"
	outcomeFiltered         = "filtered"
	outcomeUnauthorized     = "unauthorized"
	outcomeBadRequest       = "bad-request"
	outcomeNotReady         = "not-ready"
	outcomeMethodNotAllowed = "method-not-allowed"
	outcomeOff              = "off"
)

// outcomeCodes is the status code each outcome answers.
var outcomeCodes = map[string]int{
	outcomeAll: 200, outcomeFiltered: 200, outcomeUnauthorized: 401, outcomeBadRequest: 400,
	outcomeNotReady: 503, outcomeMethodNotAllowed: 405, outcomeOff: 404,
}

type viewMetrics struct {
	groups          prometheus.Gauge
	refreshDuration prometheus.Histogram
	refreshErrors   *prometheus.CounterVec
	malformed       prometheus.Counter
}

func newViewMetrics(reg prometheus.Registerer, age func() float64) *viewMetrics {
	m := &viewMetrics{
		groups: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cf_app_discovery_httpsd_groups",
			Help: "Target groups in the http_sd view: what a request without filters gets.",
		}),
		refreshDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cf_app_discovery_httpsd_refresh_duration_seconds",
			Help:    "Duration of the http_sd view's refreshes from the bucket, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		refreshErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cf_app_discovery_httpsd_refresh_errors_total",
			Help: "Failed refreshes of the http_sd view, by the step that failed (list: listing active/, nothing changed; read: reading changed target files, whose previous versions were kept).",
		}, []string{"step"}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cf_app_discovery_httpsd_malformed_files_total",
			Help: "Versions of active/ target files the http_sd view left out because they are not valid target groups.",
		}),
	}
	for _, step := range []string{stepList, stepRead} {
		m.refreshErrors.WithLabelValues(step)
	}
	if reg != nil {
		reg.MustRegister(m.groups, m.refreshDuration, m.refreshErrors, m.malformed,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "cf_app_discovery_httpsd_view_age_seconds",
				Help: "Seconds since the http_sd view last read the bucket completely (since the broker started, before the first time).",
			}, age))
	}
	return m
}

type requestMetrics struct {
	requests *prometheus.CounterVec
}

func newRequestMetrics(reg prometheus.Registerer) *requestMetrics {
	m := &requestMetrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cf_app_discovery_httpsd_requests_total",
		Help: "Requests to the http_sd endpoint by outcome (all, filtered, unauthorized, bad-request, not-ready, method-not-allowed, off) and status code.",
	}, []string{"outcome", "code"})}
	// Every series exists from the start, so that rates and alerts on a
	// rare outcome see a zero rather than no data.
	for outcome, code := range outcomeCodes {
		m.requests.WithLabelValues(outcome, strconv.Itoa(code))
	}
	if reg != nil {
		reg.MustRegister(m.requests)
	}
	return m
}

func (m *requestMetrics) observe(outcome string) {
	m.requests.WithLabelValues(outcome, strconv.Itoa(outcomeCodes[outcome])).Inc()
}
