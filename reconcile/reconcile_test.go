package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"code.cloudfoundry.org/lager/v3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/reconcile"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/store/storetest"
	"github.com/alphagov/cf-app-discovery/targets"
)

// fakeCF is a hand-written CFReader: the apps and bindings CF would return,
// and errors to answer instead.
type fakeCF struct {
	mu          sync.Mutex
	apps        map[string]targets.App
	bindings    map[string]cfapi.Binding
	bindingsErr error
	appsErr     error
	// lookups records the guids of every Apps call; appBindings, those of
	// every AppsBindings call.
	lookups     [][]string
	appBindings [][]string
}

func newFakeCF() *fakeCF {
	return &fakeCF{apps: map[string]targets.App{}, bindings: map[string]cfapi.Binding{}}
}

func (f *fakeCF) PlanBindings(context.Context) ([]cfapi.Binding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bindingsErr != nil {
		return nil, f.bindingsErr
	}
	var out []cfapi.Binding
	for _, b := range f.bindings {
		out = append(out, b)
	}
	return out, nil
}

func (f *fakeCF) AppsBindings(_ context.Context, appGUIDs []string) ([]cfapi.Binding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appBindings = append(f.appBindings, appGUIDs)
	if f.bindingsErr != nil {
		return nil, f.bindingsErr
	}
	var out []cfapi.Binding
	for _, b := range f.bindings {
		if slices.Contains(appGUIDs, b.AppGUID) {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *fakeCF) Apps(_ context.Context, guids []string) (map[string]targets.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups = append(f.lookups, guids)
	if f.appsErr != nil {
		return nil, f.appsErr
	}
	out := map[string]targets.App{}
	for _, g := range guids {
		if a, ok := f.apps[g]; ok {
			out[g] = a
		}
	}
	return out, nil
}

func (f *fakeCF) update(guid string, change func(*targets.App)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.apps[guid]
	change(&a)
	f.apps[guid] = a
}

func (f *fakeCF) bind(bindingGUID, appGUID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bindings[bindingGUID] = cfapi.Binding{GUID: bindingGUID, AppGUID: appGUID, CreatedAt: time.Now()}
}

func (f *fakeCF) unbind(bindingGUID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.bindings, bindingGUID)
}

func guid(kind byte, n int) string {
	return fmt.Sprintf("%08x-0000-4000-8%03x-%012x", n, kind, n)
}

func appGUIDn(n int) string     { return guid(0xa, n) }
func bindingGUIDn(n int) string { return guid(0xb, n) }

func activeKey(app string) string   { k, _ := store.TargetKey(app, true); return k }
func inactiveKey(app string) string { k, _ := store.TargetKey(app, false); return k }
func recordKey(b string) string     { k, _ := store.BindingKey(b); return k }

const paasDomain = "paas.example"

var _ = Describe("Reconciler", func() {
	var (
		st  *storetest.Mem
		cf  *fakeCF
		rec *reconcile.Reconciler
		reg *prometheus.Registry
		ctx context.Context
	)

	newApp := func(n, instances int) targets.App {
		return targets.App{GUID: appGUIDn(n), Name: fmt.Sprintf("app-%d", n), State: "STARTED", Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: instances}},
			Org: "org", Space: "space", Routes: []targets.Route{{Host: fmt.Sprintf("app-%d", n), Domain: "example.com", Protocol: "http1"}}}
	}
	// brokerBind does what the broker does on bind: record, then target,
	// through a Bucket of its own.
	brokerBind := func(b, app int) {
		broker := store.NewBucket(st)
		_, err := broker.WriteBinding(ctx, store.Binding{BindingGUID: bindingGUIDn(b), AppGUID: appGUIDn(app), PlanID: "plan", Source: store.SourceBroker}, store.Condition{})
		Expect(err).NotTo(HaveOccurred())
		cf.mu.Lock()
		a := cf.apps[appGUIDn(app)]
		cf.mu.Unlock()
		Expect(broker.PutTarget(ctx, store.Target{AppGUID: a.GUID, Started: a.Started(), Body: targets.Render(a, paasDomain)})).To(Succeed())
		cf.bind(bindingGUIDn(b), appGUIDn(app))
	}
	// brokerUnbind does what Cloud Controller and the broker do on the last
	// unbind of an app.
	brokerUnbind := func(b, app int) {
		broker := store.NewBucket(st)
		Expect(broker.RemoveTargets(ctx, appGUIDn(app))).To(Succeed())
		Expect(broker.DeleteBinding(ctx, bindingGUIDn(b))).To(Succeed())
		cf.unbind(bindingGUIDn(b))
	}
	run := func() reconcile.Result {
		res, err := rec.Run(ctx)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		return res
	}
	expectTarget := func(app targets.App) {
		key, _ := store.TargetKey(app.GUID, app.Started())
		other, _ := store.TargetKey(app.GUID, !app.Started())
		ExpectWithOffset(1, st.Keys()).To(ContainElement(key))
		ExpectWithOffset(1, st.Keys()).NotTo(ContainElement(other))
		ExpectWithOffset(1, st.Body(key)).To(Equal(string(targets.Render(app, paasDomain))))
	}
	expectNoTarget := func(app string) {
		ExpectWithOffset(1, st.Keys()).NotTo(ContainElement(activeKey(app)))
		ExpectWithOffset(1, st.Keys()).NotTo(ContainElement(inactiveKey(app)))
	}

	BeforeEach(func() {
		ctx = context.Background()
		st = storetest.NewMem()
		cf = newFakeCF()
		reg = prometheus.NewRegistry()
		rec = &reconcile.Reconciler{Store: st, CF: cf, PaaSDomain: paasDomain, PlanID: "plan",
			Workers: 4, Logger: lager.NewLogger("test"), Metrics: reconcile.NewMetrics(reg)}
		for n := 1; n <= 3; n++ {
			cf.apps[appGUIDn(n)] = newApp(n, 2)
			brokerBind(n, n)
		}
		st.ResetOps()
	})

	// warm runs once, so that the reconciler holds every record, and
	// forgets the store operations it made.
	warm := func() {
		run()
		st.ResetOps()
	}

	It("reads each record once, then only those whose ETag changed", func() {
		run()
		Expect(st.Ops()).To(Equal(map[string]int{"LIST": 3, "GET": 3}))
		_, err := store.NewBucket(st).WriteBinding(ctx, store.Binding{BindingGUID: bindingGUIDn(2), AppGUID: appGUIDn(2),
			PlanID: "plan", CreatedAt: time.Now(), Source: store.SourceBroker}, store.Condition{})
		Expect(err).NotTo(HaveOccurred()) // a new record: a new ETag
		st.ResetOps()
		run()
		Expect(st.Ops()).To(Equal(map[string]int{"LIST": 3, "GET": 1}))
		st.ResetOps()
		run()
		Expect(st.Ops()).To(Equal(map[string]int{"LIST": 3}))
	})

	It("holds in memory only the records the store still lists", func() {
		run()
		Expect(reconcile.CachedRecords(rec)).To(Equal(3))
		brokerUnbind(3, 3)
		run()
		Expect(reconcile.CachedRecords(rec)).To(Equal(2))
	})

	It("makes no GET, PUT or DELETE when nothing changed", func() {
		warm()
		res := run()
		Expect(res.Passes).To(Equal(1))
		Expect(res.Active).To(Equal(3))
		Expect(st.Ops()).To(Equal(map[string]int{"LIST": 3}))
		Expect(metricValue(reg, "cf_app_discovery_targets", "active")).To(Equal(3.0))
		Expect(metricValue(reg, "cf_app_discovery_reconcile_runs_total", "success")).To(Equal(2.0))
	})

	Context("when the store's ETags are not the MD5 of the content (SSE-KMS)", func() {
		var rendered func() int

		BeforeEach(func() {
			st.SetOpaqueETags(true)
			for n := 1; n <= 3; n++ {
				// The files as the broker writes them under SSE-KMS: the
				// same bytes, an ETag that is not their MD5. (Binding again
				// leaves a file whose bytes are unchanged as it is.)
				app := cf.apps[appGUIDn(n)]
				_, err := st.Put(ctx, activeKey(app.GUID), targets.Render(app, paasDomain), store.Condition{})
				Expect(err).NotTo(HaveOccurred())
				brokerBind(n, n)
			}
			rendered = reconcile.CountRenders(rec)
			st.ResetOps()
		})

		It("rewrites each target once, then makes no GET, PUT or DELETE while nothing changes", func() {
			first := run()
			Expect(first.TargetsWritten).To(Equal(3), "it cannot tell the broker's files hold its bytes")
			for n := 1; n <= 3; n++ {
				expectTarget(cf.apps[appGUIDn(n)])
			}
			st.ResetOps()
			second := run()
			Expect(second.Passes).To(Equal(1))
			Expect(second.TargetsWritten).To(BeZero())
			Expect(st.Ops()).To(Equal(map[string]int{"LIST": 3}))
		})

		It("renders no file once it has rewritten them, while nothing changes", func() {
			run()
			Expect(rendered()).NotTo(BeZero())
			run()
			Expect(rendered()).To(BeZero())
			run()
			Expect(rendered()).To(BeZero())
		})
	})

	Context("when it has rendered every file once", func() {
		var rendered func() int

		BeforeEach(func() {
			rendered = reconcile.CountRenders(rec)
			warm()
			rendered()
		})

		It("renders no file in a run in which nothing changed", func() {
			res := run()
			Expect(rendered()).To(BeZero())
			Expect(res.Passes).To(Equal(1))
			Expect(st.Ops()).To(Equal(map[string]int{"LIST": 3}))
		})

		It("rewrites at the next run a target file edited in the bucket", func() {
			_, err := st.Put(ctx, activeKey(appGUIDn(2)), []byte("[]\n"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			res := run()
			Expect(res.TargetsWritten).To(Equal(1))
			expectTarget(cf.apps[appGUIDn(2)])
			Expect(rendered()).To(Equal(1), "the other files hold what they were rendered from")
		})

		DescribeTable("renders and writes the file of an app whose inputs changed",
			func(change func(a *targets.App)) {
				cf.update(appGUIDn(1), change)
				res := run()
				Expect(rendered()).To(Equal(1), "the other apps are unchanged")
				Expect(res.TargetsWritten).To(Equal(1))
				expectTarget(cf.apps[appGUIDn(1)])
			},
			Entry("scaled", func(a *targets.App) { a.Processes[0].Instances = 5 }),
			Entry("renamed", func(a *targets.App) { a.Name = "app-1-renamed" }),
			Entry("routed elsewhere", func(a *targets.App) { a.Routes[0].Host = "elsewhere" }),
		)
	})

	It("rewrites a scaled app, verifying with a second pass", func() {
		warm()
		cf.update(appGUIDn(1), func(a *targets.App) { a.Processes[0].Instances = 5 })
		res := run()
		Expect(res.TargetsWritten).To(Equal(1))
		Expect(res.Passes).To(Equal(2))
		expectTarget(cf.apps[appGUIDn(1)])
		Expect(st.Ops()).To(Equal(map[string]int{"LIST": 6, "PUT": 1}))

		cf.update(appGUIDn(1), func(a *targets.App) { a.Processes[0].Instances = 0 })
		run()
		Expect(st.Body(activeKey(appGUIDn(1)))).To(Equal("[]\n"))
	})

	It("rewrites renamed apps and route changes, keeping the job of a -venerable app", func() {
		cf.update(appGUIDn(1), func(a *targets.App) { a.Name = "app-1-venerable" })
		cf.update(appGUIDn(2), func(a *targets.App) {
			a.Routes = []targets.Route{{Host: "new", Domain: "example.org", Protocol: "http1", Path: "/prom/metrics"}}
		})
		cf.update(appGUIDn(3), func(a *targets.App) { a.Routes[0].Internal = true })
		res := run()
		Expect(res.TargetsWritten).To(Equal(2), "the rename to -venerable keeps every byte")
		Expect(st.Body(activeKey(appGUIDn(1)))).To(ContainSubstring(`"job": "app-1"`))
		Expect(st.Body(activeKey(appGUIDn(2)))).To(ContainSubstring(`"new.example.org"`))
		Expect(st.Body(activeKey(appGUIDn(3)))).To(ContainSubstring(`"app-3.paas.example"`))
	})

	It("removes the target of an app CF no longer returns", func() {
		delete(cf.apps, appGUIDn(3))
		res := run()
		Expect(res.TargetsDeleted).To(Equal(1))
		expectNoTarget(appGUIDn(3))
		Expect(st.Keys()).To(ContainElement(recordKey(bindingGUIDn(3))), "the binding still exists in CF")
	})

	It("removes a record whose binding CF no longer lists once it is older than the grace period", func() {
		cf.unbind(bindingGUIDn(2))
		run()
		Expect(st.Keys()).To(ContainElement(recordKey(bindingGUIDn(2))), "young: a bind may be in flight")
		expectTarget(cf.apps[appGUIDn(2)])

		st.Age(recordKey(bindingGUIDn(2)), time.Hour)
		run()
		Expect(st.Keys()).NotTo(ContainElement(recordKey(bindingGUIDn(2))))
		expectNoTarget(appGUIDn(2))
	})

	It("skips a young record that an unbind removes while the run reads it", func() {
		cf.unbind(bindingGUIDn(2))
		st.SetFail(func(op, key string) error {
			if op == "GET" && key == recordKey(bindingGUIDn(2)) {
				// The broker's unbind removed the record and the target between
				// the listing and this read.
				Expect(st.Delete(ctx, activeKey(appGUIDn(2)))).To(Succeed())
				Expect(st.Delete(ctx, recordKey(bindingGUIDn(2)))).To(Succeed())
				return store.ErrNotFound
			}
			return nil
		})
		run()
		expectTarget(cf.apps[appGUIDn(1)])
		expectNoTarget(appGUIDn(2))
	})

	It("skips a young record it cannot parse, and removes it once it is old", func() {
		cf.unbind(bindingGUIDn(2))
		_, err := st.Put(ctx, recordKey(bindingGUIDn(2)), []byte("{not json"), store.Condition{})
		Expect(err).NotTo(HaveOccurred())
		cf.update(appGUIDn(1), func(a *targets.App) { a.Processes[0].Instances = 4 })
		run()
		expectTarget(cf.apps[appGUIDn(1)])
		Expect(st.Keys()).To(ContainElement(recordKey(bindingGUIDn(2))))
		st.Age(recordKey(bindingGUIDn(2)), time.Hour)
		run()
		Expect(st.Keys()).NotTo(ContainElement(recordKey(bindingGUIDn(2))))
	})

	It("leaves the record of a binding Cloud Controller is deleting to the broker", func() {
		cf.bindings[bindingGUIDn(1)] = cfapi.Binding{GUID: bindingGUIDn(1), AppGUID: appGUIDn(1), Deleting: true}
		st.Age(recordKey(bindingGUIDn(1)), time.Hour)
		run()
		Expect(st.Keys()).To(ContainElement(recordKey(bindingGUIDn(1))))
		expectNoTarget(appGUIDn(1))
	})

	It("keeps the target while an app has another binding", func() {
		brokerBind(4, 1)
		Expect(st.Delete(ctx, recordKey(bindingGUIDn(1)))).To(Succeed())
		cf.unbind(bindingGUIDn(1))
		run()
		expectTarget(cf.apps[appGUIDn(1)])
	})

	It("removes the target file of an app that is not bound", func() {
		stray := newApp(9, 1)
		cf.apps[stray.GUID] = stray
		_, err := st.Put(ctx, activeKey(stray.GUID), targets.Render(stray, paasDomain), store.Condition{})
		Expect(err).NotTo(HaveOccurred())
		run()
		expectNoTarget(stray.GUID)
	})

	Context("with a bucket written by the Ruby service", func() {
		BeforeEach(func() {
			for n := 1; n <= 3; n++ {
				Expect(st.Delete(ctx, recordKey(bindingGUIDn(n)))).To(Succeed())
			}
			// The Ruby service left a stale file in both states for app 2.
			_, err := st.Put(ctx, inactiveKey(appGUIDn(2)), []byte("[]"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
		})

		It("adopts the bindings CF lists and keeps every app monitored", func() {
			res := run()
			Expect(res.RecordsAdopted).To(Equal(3))
			for n := 1; n <= 3; n++ {
				Expect(st.Keys()).To(ContainElement(recordKey(bindingGUIDn(n))))
				expectTarget(cf.apps[appGUIDn(n)])
			}
			data, _, err := st.Get(ctx, recordKey(bindingGUIDn(1)))
			Expect(err).NotTo(HaveOccurred())
			b, err := store.UnmarshalBinding(data)
			Expect(err).NotTo(HaveOccurred())
			Expect(b.AppGUID).To(Equal(appGUIDn(1)))
			Expect(b.Source).To(Equal(store.SourceReconcile))
		})
	})

	Context("when a read fails", func() {
		DescribeTable("changes nothing and fails",
			func(breakIt func()) {
				cf.update(appGUIDn(1), func(a *targets.App) { a.Processes[0].Instances = 7 })
				delete(cf.apps, appGUIDn(2))
				cf.unbind(bindingGUIDn(3))
				st.Age(recordKey(bindingGUIDn(3)), time.Hour)
				before := map[string]string{}
				for _, k := range st.Keys() {
					before[k] = st.Body(k)
				}
				breakIt()
				_, err := rec.Run(ctx)
				Expect(err).To(MatchError(reconcile.ErrReconcile))
				after := map[string]string{}
				for _, k := range st.Keys() {
					after[k] = st.Body(k)
				}
				Expect(after).To(Equal(before))
				Expect(st.Ops()).NotTo(HaveKey("PUT"))
				Expect(st.Ops()).NotTo(HaveKey("DELETE"))
				Expect(metricValue(reg, "cf_app_discovery_reconcile_runs_total", "failure")).To(Equal(1.0))
				Expect(metricValue(reg, "cf_app_discovery_reconcile_runs_total", "success")).To(Equal(0.0))
			},
			Entry("bindings from CF", func() { cf.bindingsErr = fmt.Errorf("%w: 502", cfapi.ErrUnavailable) }),
			Entry("apps from CF", func() { cf.appsErr = fmt.Errorf("%w: truncated page", cfapi.ErrUnavailable) }),
			Entry("the store listing", func() {
				st.SetFail(func(op, key string) error {
					if op == "LIST" && key == store.InactivePrefix {
						return errInjected
					}
					return nil
				})
			}),
		)
	})

	Context("when some writes fail", func() {
		It("writes the others, fails the run, and a later run completes", func() {
			for n := 1; n <= 3; n++ {
				cf.update(appGUIDn(n), func(a *targets.App) { a.State = "STOPPED" })
			}
			st.SetFail(func(op, key string) error {
				if op == "PUT" && key == inactiveKey(appGUIDn(2)) {
					return errInjected
				}
				return nil
			})
			_, err := rec.Run(ctx)
			Expect(err).To(MatchError(errInjected))
			expectTarget(cf.apps[appGUIDn(1)])
			expectTarget(cf.apps[appGUIDn(3)])

			st.SetFail(nil)
			run()
			expectTarget(cf.apps[appGUIDn(2)])
		})
	})

	Context("when the broker acts during a run", func() {
		var hook func()

		BeforeEach(func() {
			hook = nil
			reconcile.SetBeforeApply(rec, func(pass int) {
				if pass == 1 && hook != nil {
					hook()
				}
			})
		})

		It("does not resurrect a target unbound while the run rewrote it", func() {
			cf.update(appGUIDn(1), func(a *targets.App) { a.Processes[0].Instances = 4 })
			hook = func() { brokerUnbind(1, 1) }
			run()
			expectNoTarget(appGUIDn(1))
			Expect(st.Keys()).NotTo(ContainElement(recordKey(bindingGUIDn(1))))
		})

		It("does not resurrect a record unbound while the run adopted it", func() {
			Expect(st.Delete(ctx, recordKey(bindingGUIDn(2)))).To(Succeed())
			hook = func() { brokerUnbind(2, 2) }
			run()
			Expect(st.Keys()).NotTo(ContainElement(recordKey(bindingGUIDn(2))))
			expectNoTarget(appGUIDn(2))
		})

		It("does not delete a target bound while the run removed it as unbound", func() {
			stray := newApp(7, 1)
			cf.apps[stray.GUID] = stray
			_, err := st.Put(ctx, activeKey(stray.GUID), []byte("[]"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			hook = func() { brokerBind(7, 7) }
			run()
			expectTarget(stray)
			Expect(st.Keys()).To(ContainElement(recordKey(bindingGUIDn(7))))
		})

		It("keeps a target bound while the run was reading", func() {
			fresh := newApp(8, 3)
			cf.apps[fresh.GUID] = fresh
			hook = func() { brokerBind(8, 8) }
			run()
			expectTarget(fresh)
		})

		It("keeps the broker's newer file when the app changed state during the run", func() {
			cf.update(appGUIDn(3), func(a *targets.App) { a.Processes[0].Instances = 1 })
			hook = func() {
				cf.update(appGUIDn(3), func(a *targets.App) { a.State = "STOPPED" })
				brokerBind(5, 3)
			}
			run()
			expectTarget(cf.apps[appGUIDn(3)])
		})
	})
})

var errInjected = errors.New("injected failure")

// metricValue returns the value of the series of metric name whose only
// label has value label.
func metricValue(reg *prometheus.Registry, name, label string) float64 {
	families, err := reg.Gather()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	Fail(fmt.Sprintf("no series %s{%s}", name, label), 1)
	return 0
}
