package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a request, the values of the outcome label of
// cf_app_discovery_proxy_requests_total.
const (
	OutcomeForwarded       = "forwarded"        // answered with the upstream's response
	OutcomeUpstreamError   = "upstream_error"   // the upstream could not be reached: 502
	OutcomeClientGone      = "client_gone"      // the client went away before the upstream answered
	OutcomeRejectedMethod  = "rejected_method"  // not GET or HEAD: 405
	OutcomeRejectedHost    = "rejected_host"    // host not on the allow-list: 403
	OutcomeRejectedParams  = "rejected_params"  // malformed scrape parameters or URL: 400
	OutcomeRejectedRequest = "rejected_request" // a body, or a scheme other than http: 400
	OutcomeLocal           = "local"            // /health or /metrics of the proxy itself
	OutcomeNotFound        = "not_found"        // any other origin-form request: 404
)

type metrics struct {
	requests  *prometheus.CounterVec
	forwarded [len(codeClasses)]prometheus.Counter // by status/100, resolved once
	upstream  prometheus.Histogram
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
	for i := 1; i < len(codeClasses); i++ {
		m.forwarded[i] = m.requests.WithLabelValues(OutcomeForwarded, codeClasses[i])
	}
	return m
}

var codeClasses = [...]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (m *metrics) count(outcome string, status int) {
	i := status / 100
	if i < 1 || i >= len(codeClasses) {
		m.requests.WithLabelValues(outcome, "other").Inc()
		return
	}
	if outcome == OutcomeForwarded {
		m.forwarded[i].Inc()
		return
	}
	m.requests.WithLabelValues(outcome, codeClasses[i]).Inc()
}
