package lease

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics show the lease from one instance: whether it holds it, the
// lease period, the holder it last saw and what happened to its lease.
type Metrics struct {
	held     prometheus.Gauge
	duration prometheus.Gauge
	holder   *prometheus.GaugeVec
	events   *prometheus.CounterVec
}

// lease events, the values of the event label.
var events = []string{"acquired", "renewed", "renew_failed", "lost", "expired", "released"}

// NewMetrics registers the lease metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cf_app_discovery_lease_held",
			Help: "1 while this updater instance holds the lease and reconciles, 0 while it stands by.",
		}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cf_app_discovery_lease_duration_seconds",
			Help: "The lease period (LEASE_DURATION).",
		}),
		holder: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cf_app_discovery_lease_holder",
			Help: "1 for the holder of the lease as this instance last saw it (holder: its id).",
		}, []string{"holder"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cf_app_discovery_lease_events_total",
			Help: "What happened to this instance's lease: acquired, renewed, renew_failed, lost (taken by another), expired (not renewed in time), released.",
		}, []string{"event"}),
	}
	reg.MustRegister(m.held, m.duration, m.holder, m.events)
	for _, e := range events {
		m.events.WithLabelValues(e)
	}
	return m
}

func (m *Metrics) setDuration(d time.Duration) {
	if m != nil {
		m.duration.Set(d.Seconds())
	}
}

func (m *Metrics) setHeld(held bool) {
	if m == nil {
		return
	}
	if held {
		m.held.Set(1)
	} else {
		m.held.Set(0)
	}
}

// setHolder keeps one series: the holder last seen.
func (m *Metrics) setHolder(holder string) {
	if m == nil {
		return
	}
	m.holder.Reset()
	m.holder.WithLabelValues(holder).Set(1)
}

func (m *Metrics) event(e string) {
	if m != nil {
		m.events.WithLabelValues(e).Inc()
	}
}
