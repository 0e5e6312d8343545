package broker

import (
	"errors"
	"time"

	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics count the broker's operations by what came of them, which the
// HTTP status alone does not say (a 422 is a service key or an app the
// monitoring user cannot see; a 503 is the CF API or the store).
type metrics struct {
	operations *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cf_app_discovery_broker_operations_total",
			Help: "Broker operations by operation and outcome (created, already-exists, target-removed, target-kept, ok, or the failure).",
		}, []string{"operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cf_app_discovery_broker_operation_duration_seconds",
			Help:    "Broker operation duration by operation, CF API and store calls included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"operation"}),
	}
	if reg != nil {
		reg.MustRegister(m.operations, m.duration)
	}
	return m
}

// observe counts one operation that started at start. success is the
// outcome when err is nil.
func (m *metrics) observe(operation string, start time.Time, success string, err error) {
	m.operations.WithLabelValues(operation, outcome(success, err)).Inc()
	m.duration.WithLabelValues(operation).Observe(time.Since(start).Seconds())
}

// outcome names a result with a bounded set of values: the failure
// responses' logger actions (errors.go and brokerapi's), "error" for
// anything else.
func outcome(success string, err error) string {
	if err == nil {
		return success
	}
	var failure *apiresponses.FailureResponse
	if errors.As(err, &failure) {
		return failure.LoggerAction()
	}
	return "error"
}
