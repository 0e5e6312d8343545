package reconcile

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the target updater's metrics about its own runs.
type Metrics struct {
	runs        *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	duration    prometheus.Histogram
	targets     *prometheus.GaugeVec
	changes     *prometheus.CounterVec
	annotations *prometheus.CounterVec
}

// NewMetrics registers the reconcile metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cf_app_discovery_reconcile_runs_total",
			Help: "Reconcile runs by outcome (success, failure).",
		}, []string{"outcome"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cf_app_discovery_reconcile_last_success_timestamp_seconds",
			Help: "Unix time at which the last successful reconcile ended.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cf_app_discovery_reconcile_duration_seconds",
			Help:    "Duration of reconcile runs.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		targets: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cf_app_discovery_targets",
			Help: "Apps with a target file after the last successful reconcile, by state (active, inactive).",
		}, []string{"state"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cf_app_discovery_reconcile_changes_total",
			Help: "Store changes made by reconcile runs and watch refreshes, by kind.",
		}, []string{"kind"}),
		annotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cf_app_discovery_invalid_annotations_total",
			Help: "App annotations ignored because their value is invalid or names a port no route serves, by annotation; counted once per app and reconcile run.",
		}, []string{"key"}),
	}
	reg.MustRegister(m.runs, m.lastSuccess, m.duration, m.targets, m.changes, m.annotations)
	for _, o := range []string{"success", "failure"} {
		m.runs.WithLabelValues(o)
	}
	return m
}

func (m *Metrics) observe(res Result, err error, took time.Duration, end time.Time) {
	m.duration.Observe(took.Seconds())
	m.observeChanges(res)
	if err != nil {
		m.runs.WithLabelValues("failure").Inc()
		return
	}
	m.runs.WithLabelValues("success").Inc()
	m.lastSuccess.Set(float64(end.Unix()))
	m.targets.WithLabelValues("active").Set(float64(res.Active))
	m.targets.WithLabelValues("inactive").Set(float64(res.Inactive))
}

// observeChanges counts the store changes of a run, full or not, and the
// annotations it ignored.
func (m *Metrics) observeChanges(res Result) {
	m.changes.WithLabelValues("target_written").Add(float64(res.TargetsWritten))
	m.changes.WithLabelValues("target_deleted").Add(float64(res.TargetsDeleted))
	m.changes.WithLabelValues("record_adopted").Add(float64(res.RecordsAdopted))
	m.changes.WithLabelValues("record_removed").Add(float64(res.RecordsRemoved))
	m.changes.WithLabelValues("conflict").Add(float64(res.WritesConflicts))
	for _, n := range res.notes {
		for _, i := range n.ignored {
			if i.Annotation {
				m.annotations.WithLabelValues(i.Key).Inc()
			}
		}
	}
}

// WatchMetrics are the target updater's metrics about its watch of the CF
// API between reconciles.
type WatchMetrics struct {
	runs      *prometheus.CounterVec
	events    prometheus.Counter
	refreshed prometheus.Counter
}

// NewWatchMetrics registers the watch metrics of w on reg. The cursor's lag
// and the age of the oldest unwritten change are read from w when scraped,
// so they grow while watches fail or stop.
func NewWatchMetrics(reg prometheus.Registerer, w *Watch) *WatchMetrics {
	m := &WatchMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cf_app_discovery_watch_runs_total",
			Help: "Watches of the CF API's audit events and deployments, by outcome (success, failure).",
		}, []string{"outcome"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cf_app_discovery_watch_events_total",
			Help: "Audit events the watch handled, each counted once.",
		}),
		refreshed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cf_app_discovery_watch_apps_refreshed_total",
			Help: "Bound apps the watch refreshed (looked up in the CF API, and written where they changed).",
		}),
	}
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cf_app_discovery_watch_cursor_lag_seconds",
		Help: "How far the watch's audit event cursor is behind the CF API's clock (it stays a settling time behind).",
	}, func() float64 { return w.CursorLag().Seconds() })
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cf_app_discovery_watch_oldest_unwritten_change_age_seconds",
		Help: "Age of the oldest audit event the watch saw and has not written yet (0: none).",
	}, func() float64 { return w.OldestUnwritten().Seconds() })
	reg.MustRegister(m.runs, m.events, m.refreshed, lag, oldest)
	for _, o := range []string{"success", "failure"} {
		m.runs.WithLabelValues(o)
	}
	return m
}

func (m *WatchMetrics) observe(res WatchResult, err error) {
	if err != nil {
		// Its events are seen again, and counted, by the watch that
		// writes them.
		m.runs.WithLabelValues("failure").Inc()
		return
	}
	m.events.Add(float64(res.Events))
	m.refreshed.Add(float64(res.Refreshed))
	m.runs.WithLabelValues("success").Inc()
}
