package store_test

import (
	"context"
	"errors"

	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/store/storetest"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	storeOpsMetric      = "cf_app_discovery_store_operations_total"
	storeDurationMetric = "cf_app_discovery_store_operation_duration_seconds"
)

// brokenStore fails every operation with errStoreBroken.
type brokenStore struct{}

var errStoreBroken = errors.New("store broken")

func (brokenStore) Get(context.Context, string) ([]byte, string, error) {
	return nil, "", errStoreBroken
}

func (brokenStore) Put(context.Context, string, []byte, store.Condition) (string, error) {
	return "", errStoreBroken
}

func (brokenStore) Delete(context.Context, string) error { return errStoreBroken }

func (brokenStore) List(context.Context, string) ([]store.Object, error) {
	return nil, errStoreBroken
}

// storeOps reads the operations counter for op and outcome from reg.
func storeOps(reg *prometheus.Registry, op, outcome string) float64 {
	return storeMetric(reg, storeOpsMetric, map[string]string{"operation": op, "outcome": outcome})
}

// storeTimings reads the duration histogram's sample count for op from reg.
func storeTimings(reg *prometheus.Registry, op string) float64 {
	return storeMetric(reg, storeDurationMetric, map[string]string{"operation": op})
}

func storeMetric(reg *prometheus.Registry, name string, labels map[string]string) float64 {
	families, err := reg.Gather()
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	Fail("no metric " + name + " with the labels asked for")
	return 0
}

var _ = Describe("NewInstrumentedStore", func() {
	var (
		reg *prometheus.Registry
		st  store.Store
		ctx context.Context
		key string
	)

	BeforeEach(func() {
		reg = prometheus.NewPedanticRegistry()
		dir, err := store.NewDir(GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		st = store.Instrument(dir, reg)
		ctx = context.Background()
		key = storetest.Key(store.ActivePrefix, 1)
	})

	It("starts every operation and outcome at zero", func() {
		Expect(testutil.CollectAndCount(reg, storeOpsMetric)).To(Equal(16))
		Expect(storeOps(reg, "put", "precondition_failed")).To(BeZero())
	})

	It("passes results through and counts successes", func() {
		etag, err := st.Put(ctx, key, []byte("[]"), store.Condition{})
		Expect(err).NotTo(HaveOccurred())
		body, getETag, err := st.Get(ctx, key)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(body)).To(Equal("[]"))
		Expect(getETag).To(Equal(etag))
		objects, err := st.List(ctx, store.ActivePrefix)
		Expect(err).NotTo(HaveOccurred())
		Expect(objectKeys(objects)).To(Equal([]string{key}))
		Expect(st.Delete(ctx, key)).To(Succeed())

		for _, op := range []string{"get", "put", "delete", "list"} {
			Expect(storeOps(reg, op, "ok")).To(Equal(1.0), op)
			Expect(storeOps(reg, op, "error")).To(BeZero(), op)
			Expect(storeTimings(reg, op)).To(Equal(1.0), op)
		}
	})

	It("counts a missing object as not_found, and passes the error on", func() {
		_, _, err := st.Get(ctx, key)
		Expect(err).To(MatchError(store.ErrNotFound))
		Expect(storeOps(reg, "get", "not_found")).To(Equal(1.0))
		Expect(storeOps(reg, "get", "error")).To(BeZero())
	})

	It("counts a failed condition as precondition_failed, and passes the error on", func() {
		_, err := st.Put(ctx, key, []byte("[]"), store.Condition{})
		Expect(err).NotTo(HaveOccurred())
		_, err = st.Put(ctx, key, []byte("[1]"), store.Condition{IfNoneMatch: true})
		Expect(err).To(MatchError(store.ErrPreconditionFailed))
		Expect(storeOps(reg, "put", "ok")).To(Equal(1.0))
		Expect(storeOps(reg, "put", "precondition_failed")).To(Equal(1.0))
		Expect(storeTimings(reg, "put")).To(Equal(2.0))
	})

	It("counts other failures as error", func() {
		Expect(st.Delete(ctx, "active/../x.json")).To(MatchError(store.ErrInvalidKey))
		Expect(storeOps(reg, "delete", "error")).To(Equal(1.0))

		broken := store.Instrument(brokenStore{}, reg)
		_, _, err := broken.Get(ctx, key)
		Expect(err).To(MatchError(errStoreBroken))
		_, err = broken.Put(ctx, key, nil, store.Condition{})
		Expect(err).To(MatchError(errStoreBroken))
		Expect(broken.Delete(ctx, key)).To(MatchError(errStoreBroken))
		_, err = broken.List(ctx, store.ActivePrefix)
		Expect(err).To(MatchError(errStoreBroken))
		Expect(storeOps(reg, "get", "error")).To(Equal(1.0))
		Expect(storeOps(reg, "put", "error")).To(Equal(1.0))
		Expect(storeOps(reg, "delete", "error")).To(Equal(2.0))
		Expect(storeOps(reg, "list", "error")).To(Equal(1.0))
	})

	It("lets several stores share a registry and their metrics", func() {
		other := store.Instrument(brokenStore{}, reg)
		_, _, _ = other.Get(ctx, key)
		_, _, _ = st.Get(ctx, key)
		Expect(storeOps(reg, "get", "error")).To(Equal(1.0))
		Expect(storeOps(reg, "get", "not_found")).To(Equal(1.0))
		Expect(testutil.CollectAndCount(reg, storeOpsMetric)).To(Equal(16))
	})

	It("works without a registry", func() {
		s := store.Instrument(brokenStore{}, nil)
		Expect(s.Delete(ctx, key)).To(MatchError(errStoreBroken))
	})

	It("has metrics that pass the Prometheus linter", func() {
		_, _, _ = st.Get(ctx, key)
		problems, err := testutil.GatherAndLint(reg)
		Expect(err).NotTo(HaveOccurred())
		Expect(problems).To(BeEmpty())
	})
})
