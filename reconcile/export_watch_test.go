package reconcile

import "github.com/prometheus/client_golang/prometheus"

// Runs is the counter of watches with outcome.
func (m *WatchMetrics) Runs(outcome string) prometheus.Counter {
	return m.runs.WithLabelValues(outcome)
}

// Events is the counter of audit events handled.
func (m *WatchMetrics) Events() prometheus.Counter { return m.events }

// Refreshed is the counter of apps refreshed.
func (m *WatchMetrics) Refreshed() prometheus.Counter { return m.refreshed }

// ChangesCounter is the counter of store changes of kind.
func ChangesCounter(m *Metrics, kind string) prometheus.Counter {
	return m.changes.WithLabelValues(kind)
}

// RunsCounter is the counter of full reconciles with outcome.
func RunsCounter(m *Metrics, outcome string) prometheus.Counter {
	return m.runs.WithLabelValues(outcome)
}
