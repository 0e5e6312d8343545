package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a request, the values of the outcome label of
// cf_app_discovery_proxy_requests_total.
const (
	OutcomeForwarded       = "forwarded"        // answered with the upstream's response
	OutcomeUpstreamError   = "upstream_error"   // the upstream could not be reached: 502
	OutcomeRejectedMethod  = "rejected_method"  // not GET or HEAD: 405
	OutcomeRejectedHost    = "rejected_host"    // host not on the allow-list: 403
	OutcomeRejectedParams  = "rejected_params"  // malformed scrape parameters or URL: 400
	OutcomeRejectedRequest = "rejected_request" // a body, a scheme other than http, an unreadable request: 4xx
	OutcomeLocal           = "local"            // /health or /metrics of the proxy itself
	OutcomeNotFound        = "not_found"        // any other origin-form request: 404
)

type metrics struct {
	requests *prometheus.CounterVec
	upstream prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cf_app_discovery_proxy_requests_total",
			Help: "Requests handled by paas-proxy, by outcome and class of the status code answered (2xx, 4xx, ...).",
		}, []string{"outcome", "code"}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cf_app_discovery_proxy_upstream_duration_seconds",
			Help: "Time from sending a scrape upstream to the end of its response body, or to the failure.",
			// Scrapes time out after about 10 s.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	reg.MustRegister(m.requests, m.upstream)
	return m
}

var codeClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (m *metrics) count(outcome string, status int) {
	class := codeClasses[0]
	if i := status / 100; i > 0 && i < len(codeClasses) {
		class = codeClasses[i]
	}
	m.requests.WithLabelValues(outcome, class).Inc()
}
