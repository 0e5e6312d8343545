package lease_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/lease"
	"github.com/alphagov/cf-app-discovery/store"
)

// leads records the terms of several instances in one process and fails
// when two overlap: at any moment at most one instance may do the work.
type leads struct {
	mu       sync.Mutex
	current  string
	overlaps []string
	started  map[string][]time.Time
	ended    map[string][]time.Time
}

func newLeads() *leads {
	return &leads{started: map[string][]time.Time{}, ended: map[string][]time.Time{}}
}

// lead is the work of instance who: it runs until its term ends.
func (s *leads) lead(who string) func(context.Context) {
	return func(ctx context.Context) {
		s.mu.Lock()
		if s.current != "" {
			s.overlaps = append(s.overlaps, fmt.Sprintf("%s started while %s led", who, s.current))
		}
		s.current = who
		s.started[who] = append(s.started[who], time.Now())
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
		if s.current == who {
			s.current = ""
		}
		s.ended[who] = append(s.ended[who], time.Now())
		s.mu.Unlock()
	}
}

func (s *leads) leader() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

func (s *leads) terms(who string) (started, ended []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.started[who]...), append([]time.Time(nil), s.ended[who]...)
}

func (s *leads) overlapping() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.overlaps...)
}

// describeRun declares the specs of Run against the store newStore returns,
// with the lease period d.
func describeRun(newStore func() lease.Store, d time.Duration) {
	var (
		st        lease.Store
		record    *leads
		instances map[string]*runningInstance
	)

	BeforeEach(func() {
		st = newStore()
		record = newLeads()
		instances = map[string]*runningInstance{}
	})

	start := func(who string) *runningInstance {
		in := &runningInstance{store: &flakyStore{next: st}, reg: prometheus.NewRegistry(), done: make(chan struct{})}
		l, err := lease.New(lease.Options{Store: in.store, Holder: "updater-" + who, Duration: d, Metrics: lease.NewMetrics(in.reg)})
		Expect(err).NotTo(HaveOccurred())
		var ctx context.Context
		ctx, in.stop = context.WithCancel(context.Background())
		go func() {
			defer close(in.done)
			l.Run(ctx, record.lead(who))
		}()
		DeferCleanup(func() {
			in.stop()
			<-in.done
		})
		instances[who] = in
		return in
	}

	AfterEach(func() {
		Expect(record.overlapping()).To(BeEmpty())
	})

	It("lets one instance lead, and hands over at once when it stops", func() {
		start("a")
		Eventually(record.leader, d).Should(Equal("a"))
		start("b")
		Consistently(record.leader, d).Should(Equal("a"))
		stopped := time.Now()
		instances["a"].stop()
		<-instances["a"].done
		Eventually(record.leader, d).Should(Equal("b"))
		started, _ := record.terms("b")
		AddReportEntry("hand-over after a clean stop", started[0].Sub(stopped).String())
		Expect(started[0].Sub(stopped)).To(BeNumerically("<", d/2), "the released lease is taken at the next read")
	})

	for _, mode := range []string{"down", "hang"} {
		It("stops a holder whose store is "+mode+" at its own deadline, and the other takes over within two periods", func() {
			a := start("a")
			Eventually(record.leader, d).Should(Equal("a"))
			start("b")
			Consistently(record.leader, d/2).Should(Equal("a"))
			cut := time.Now()
			a.store.set(mode)
			Eventually(record.leader, 2*d).Should(Equal("b"))
			_, aEnded := record.terms("a")
			bStarted, _ := record.terms("b")
			Expect(aEnded).To(HaveLen(1))
			Expect(aEnded[0]).To(BeTemporally("<", bStarted[0]))
			Expect(aEnded[0].Sub(cut)).To(BeNumerically("<=", 2*d/3+d/10), "a's work stops by its deadline")
			Expect(bStarted[0].Sub(cut)).To(BeNumerically("<", 2*d), "b takes over within two periods")
			AddReportEntry("take-over after the holder's store went "+mode, bStarted[0].Sub(cut).String())
		})
	}

	It("shows the lease period and the holder in each instance's metrics", func() {
		a := start("a")
		Eventually(record.leader, d).Should(Equal("a"))
		b := start("b")
		Eventually(func() float64 { return metricValue(b.reg, "cf_app_discovery_lease_holder", "updater-a") }, d).Should(Equal(1.0))
		Expect(metricValue(a.reg, "cf_app_discovery_lease_holder", "updater-a")).To(Equal(1.0))
		Expect(metricValue(a.reg, "cf_app_discovery_lease_held", "")).To(Equal(1.0))
		Expect(metricValue(b.reg, "cf_app_discovery_lease_held", "")).To(Equal(0.0))
		Expect(metricValue(a.reg, "cf_app_discovery_lease_duration_seconds", "")).To(Equal(d.Seconds()))
		Eventually(func() float64 { return metricValue(a.reg, "cf_app_discovery_lease_events_total", "renewed") }, d).Should(BeNumerically(">=", 1))
	})

	It("never has two leaders while instances are cut off and come back", func() {
		for _, who := range []string{"a", "b", "c"} {
			start(who)
		}
		Eventually(record.leader, d).ShouldNot(BeEmpty())
		for round := range 4 {
			leader := record.leader()
			if leader == "" {
				Eventually(record.leader, 2*d).ShouldNot(BeEmpty(), "round %d", round)
				leader = record.leader()
			}
			instances[leader].store.set("down")
			Eventually(record.leader, 2*d).ShouldNot(Equal(leader), "round %d", round)
			instances[leader].store.set("")
		}
	})
}

type runningInstance struct {
	store *flakyStore
	reg   *prometheus.Registry
	stop  context.CancelFunc
	done  chan struct{}
}

// metricValue is the value of the series of name whose one label has the
// value value ("" for a metric without labels) in reg, or -1.
func metricValue(reg *prometheus.Registry, name, value string) float64 {
	families, err := reg.Gather()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if value == "" || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == value {
				return m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

var _ = Describe("Run", func() {
	Context("against a directory store", func() {
		describeRun(func() lease.Store {
			st, err := store.NewDir(GinkgoT().TempDir())
			Expect(err).NotTo(HaveOccurred())
			return st
		}, time.Second)
	})

	Context("against gofakes3", func() {
		describeRun(newGofakes3Store, time.Second)
	})

	// SeaweedFS answers a conditional write that contends with another
	// after a second's retry: a longer period keeps renewals in time.
	Context("against SeaweedFS", func() {
		describeRun(newSeaweedFSStore, 3*time.Second)
	})
})
