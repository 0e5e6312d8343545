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
