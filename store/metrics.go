package store

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Store operation outcomes, the values of the outcome label.
const (
	outcomeOK                 = "ok"
	outcomeNotFound           = "not_found"
	outcomePreconditionFailed = "precondition_failed"
	outcomeError              = "error"
)

var (
	storeOperations = []string{"get", "put", "delete", "list"}
	storeOutcomes   = []string{outcomeOK, outcomeNotFound, outcomePreconditionFailed, outcomeError}
)

// instrumentedStore counts and times the operations of the Store it wraps.
type instrumentedStore struct {
	next       Store
	operations *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

// Instrument wraps s so that its operations are counted by
// operation and outcome (ok, not_found, precondition_failed, error) and
// timed. The metrics are registered on reg; several stores may share one
// registry, and so their metrics. A nil reg leaves them unregistered.
// Registering on reg fails only when reg already holds different metrics
// with the same names, a programming error: it panics then.
func Instrument(s Store, reg prometheus.Registerer) Store {
	m := &instrumentedStore{
		next: s,
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cf_app_discovery_store_operations_total",
			Help: "Store operations by operation (get, put, delete, list) and outcome (ok, not_found, precondition_failed, error).",
		}, []string{"operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cf_app_discovery_store_operation_duration_seconds",
			Help:    "Duration of store operations, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"operation"}),
	}
	if reg != nil {
		m.operations = mustRegisterShared(reg, m.operations)
		m.duration = mustRegisterShared(reg, m.duration)
	}
	// Every series exists from the start, so that rates and alerts on a
	// rare outcome see a zero rather than no data.
	for _, op := range storeOperations {
		for _, o := range storeOutcomes {
			m.operations.WithLabelValues(op, o)
		}
	}
	return m
}

// mustRegisterShared registers c, or returns the equal collector already
// registered.
func mustRegisterShared[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if err != nil {
		panic(err)
	}
	return c
}

func (m *instrumentedStore) Get(ctx context.Context, key string) ([]byte, string, error) {
	start := time.Now()
	body, etag, err := m.next.Get(ctx, key)
	m.observe("get", start, err)
	return body, etag, err
}

func (m *instrumentedStore) Put(ctx context.Context, key string, body []byte, cond Condition) (string, error) {
	start := time.Now()
	etag, err := m.next.Put(ctx, key, body, cond)
	m.observe("put", start, err)
	return etag, err
}

func (m *instrumentedStore) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := m.next.Delete(ctx, key)
	m.observe("delete", start, err)
	return err
}

func (m *instrumentedStore) List(ctx context.Context, prefix string) ([]Object, error) {
	start := time.Now()
	objects, err := m.next.List(ctx, prefix)
	m.observe("list", start, err)
	return objects, err
}

func (m *instrumentedStore) observe(op string, start time.Time, err error) {
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	m.operations.WithLabelValues(op, outcome(err)).Inc()
}

func outcome(err error) string {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, ErrNotFound):
		return outcomeNotFound
	case errors.Is(err, ErrPreconditionFailed):
		return outcomePreconditionFailed
	default:
		return outcomeError
	}
}
