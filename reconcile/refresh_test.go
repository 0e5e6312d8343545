package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/reconcile"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/store/storetest"
	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("RunApps", func() {
	var (
		ctx  context.Context
		st   *storetest.Mem
		cf   *fakeCF
		rec  *reconcile.Reconciler
		reg  *prometheus.Registry
		app1 = appGUIDn(1)
		app2 = appGUIDn(2)
		app3 = appGUIDn(3)
		app4 = appGUIDn(4) // visible, not bound
	)

	render := func(guid string) string {
		return string(targets.Render(cf.apps[guid], paasDomain))
	}
	// unbind does what Cloud Controller and the broker do on an app's
	// last unbind.
	unbind := func(n int) {
		cf.unbind(bindingGUIDn(n))
		Expect(st.Delete(ctx, recordKey(bindingGUIDn(n)))).To(Succeed())
		Expect(st.Delete(ctx, activeKey(appGUIDn(n)))).To(Succeed())
		Expect(st.Delete(ctx, inactiveKey(appGUIDn(n)))).To(Succeed())
	}

	BeforeEach(func() {
		ctx = context.Background()
		st = storetest.NewMem()
		cf = newFakeCF()
		for n := 1; n <= 4; n++ {
			cf.apps[appGUIDn(n)] = targets.App{GUID: appGUIDn(n), Name: fmt.Sprintf("app-%d", n), State: "STARTED",
				Processes: []targets.Process{{GUID: guid(0xc, n), Instances: 2}}, Org: "org", Space: "space"}
			if n <= 3 {
				cf.bind(bindingGUIDn(n), appGUIDn(n))
			}
		}
		reg = prometheus.NewRegistry()
		rec = &reconcile.Reconciler{Store: st, CF: cf, PaaSDomain: paasDomain, PlanID: "plan", Metrics: reconcile.NewMetrics(reg)}
		_, err := rec.Run(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Keys()).To(ContainElements(activeKey(app1), activeKey(app2), activeKey(app3)))
		cf.lookups, cf.appBindings = nil, nil
	})

	It("rewrites the bound apps it is given, and only them, looked up together", func() {
		// A bind of app2 in flight: its record is the broker's, and young.
		record, err := store.Binding{BindingGUID: bindingGUIDn(8), AppGUID: app2, PlanID: "plan", Source: store.SourceBroker}.Marshal()
		Expect(err).NotTo(HaveOccurred())
		st.PutRaw(recordKey(bindingGUIDn(8)), record)
		before := st.Body(activeKey(app2))
		cf.update(app1, func(a *targets.App) { a.Processes[0].Instances = 5 })
		cf.update(app2, func(a *targets.App) { a.Processes[0].Instances = 5 })
		cf.update(app3, func(a *targets.App) { a.Name = "renamed" })
		bound, err := rec.RunApps(ctx, []string{app3, app1, app3})
		Expect(err).NotTo(HaveOccurred())
		Expect(bound).To(Equal(2))
		Expect(st.Body(activeKey(app1))).To(Equal(render(app1)))
		Expect(st.Body(activeKey(app3))).To(Equal(render(app3)))
		Expect(st.Body(activeKey(app2))).To(Equal(before))
		Expect(cf.appBindings[0]).To(Equal([]string{app1, app3}))
		Expect(cf.lookups[0]).To(Equal([]string{app1, app3}))
	})

	It("lists every binding, and uses those of its apps, from a CF reader that cannot filter them", func() {
		rec.CF = planBindingsOnly{cf}
		cf.update(app1, func(a *targets.App) { a.Processes[0].Instances = 5 })
		cf.update(app2, func(a *targets.App) { a.Processes[0].Instances = 5 })
		before := st.Body(activeKey(app2))
		bound, err := rec.RunApps(ctx, []string{app1, app4})
		Expect(err).NotTo(HaveOccurred())
		Expect(bound).To(Equal(1))
		Expect(st.Body(activeKey(app1))).To(Equal(render(app1)))
		Expect(st.Body(activeKey(app2))).To(Equal(before))
		Expect(cf.lookups[0]).To(Equal([]string{app1}))
		Expect(cf.appBindings).To(BeEmpty())
	})

	It("renders the apps with their bindings' bind parameters", func() {
		record, err := store.Binding{BindingGUID: bindingGUIDn(1), AppGUID: app1, PlanID: "plan", Source: store.SourceBroker,
			Parameters: json.RawMessage(`{"path":"/admin/metrics"}`)}.Marshal()
		Expect(err).NotTo(HaveOccurred())
		st.PutRaw(recordKey(bindingGUIDn(1)), record)
		cf.update(app1, func(a *targets.App) { a.Processes[0].Instances = 3 })
		_, err = rec.RunApps(ctx, []string{app1})
		Expect(err).NotTo(HaveOccurred())
		var groups []targets.TargetGroup
		Expect(json.Unmarshal([]byte(st.Body(activeKey(app1))), &groups)).To(Succeed())
		Expect(groups).To(HaveLen(3))
		for _, g := range groups {
			Expect(g.Labels).To(HaveKeyWithValue("__metrics_path__", "/admin/metrics"))
		}
	})

	It("looks up no app, and writes nothing, for an app that is not bound", func() {
		bound, err := rec.RunApps(ctx, []string{app4})
		Expect(err).NotTo(HaveOccurred())
		Expect(bound).To(BeZero())
		Expect(cf.lookups).To(BeEmpty())
		Expect(st.Keys()).NotTo(ContainElement(BeElementOf(activeKey(app4), inactiveKey(app4))))
	})

	Context("reading the bucket", func() {
		BeforeEach(func() {
			st.ResetOps()
		})

		It("reads the target files of a few apps, and lists nothing", func() {
			cf.update(app1, func(a *targets.App) { a.Processes[0].Instances = 5 })
			_, err := rec.RunApps(ctx, []string{app1, app4})
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Body(activeKey(app1))).To(Equal(render(app1)))
			Expect(st.Ops()).NotTo(HaveKey(storetest.OpList))
			Expect(st.Ops()).To(HaveKeyWithValue(storetest.OpGet, 10), "2 passes: 2 apps in 2 places, and the record of app1's binding")
		})

		It("lists the records when an app has a file and no binding CF lists, and keeps a bind in flight", func() {
			// The broker has written app4's record and file; CF does not list
			// the binding yet.
			record, err := store.Binding{BindingGUID: bindingGUIDn(9), AppGUID: app4, PlanID: "plan", Source: store.SourceBroker}.Marshal()
			Expect(err).NotTo(HaveOccurred())
			st.PutRaw(recordKey(bindingGUIDn(9)), record)
			st.PutRaw(activeKey(app4), []byte("[]\n"))
			st.ResetOps()
			_, err = rec.RunApps(ctx, []string{app4})
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Ops()).To(HaveKey(storetest.OpList))
			Expect(st.Body(activeKey(app4))).To(Equal(render(app4)))
		})

		It("lists the bucket for many apps", func() {
			var many []string
			for n := 1; n <= 60; n++ {
				many = append(many, appGUIDn(n))
			}
			_, err := rec.RunApps(ctx, many)
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Ops()).To(HaveKey(storetest.OpList))
			Expect(st.Ops()).NotTo(HaveKey(storetest.OpGet))
		})
	})

	It("does nothing for no apps", func() {
		Expect(rec.RunApps(ctx, nil)).To(BeZero())
		Expect(cf.appBindings).To(BeEmpty())
	})

	It("moves the file of a stopped app, and removes those of apps unbound or gone", func() {
		cf.update(app1, func(a *targets.App) { a.State = "STOPPED" })
		cf.unbind(bindingGUIDn(2)) // its file left behind
		Expect(st.Delete(ctx, recordKey(bindingGUIDn(2)))).To(Succeed())
		delete(cf.apps, app3)
		_, err := rec.RunApps(ctx, []string{app1, app2, app3})
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Keys()).To(ContainElement(inactiveKey(app1)))
		Expect(st.Keys()).NotTo(ContainElement(BeElementOf(activeKey(app1), activeKey(app2), activeKey(app3))))
	})

	It("leaves binding records to the full reconcile", func() {
		cf.unbind(bindingGUIDn(2))
		st.Age(recordKey(bindingGUIDn(2)), time.Hour)
		cf.bind(bindingGUIDn(9), app4) // no record yet
		_, err := rec.RunApps(ctx, []string{app2, app4})
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Keys()).To(ContainElement(recordKey(bindingGUIDn(2))))
		Expect(st.Keys()).NotTo(ContainElement(recordKey(bindingGUIDn(9))))
		Expect(st.Keys()).To(ContainElement(activeKey(app4)), "a bound app gets its file")
		_, err = rec.Run(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Keys()).NotTo(ContainElement(recordKey(bindingGUIDn(2))))
		Expect(st.Keys()).To(ContainElement(recordKey(bindingGUIDn(9))))
	})

	DescribeTable("changes nothing when a read fails",
		func(fail func()) {
			cf.update(app1, func(a *targets.App) { a.Processes[0].Instances = 5 })
			cf.update(app2, func(a *targets.App) { a.State = "STOPPED" })
			keys, body := st.Keys(), st.Body(activeKey(app1))
			fail()
			_, err := rec.RunApps(ctx, []string{app1, app2})
			Expect(err).To(MatchError(reconcile.ErrReconcile))
			Expect(st.Keys()).To(Equal(keys))
			Expect(st.Body(activeKey(app1))).To(Equal(body))
		},
		Entry("the bindings", func() { cf.bindingsErr = errors.New("CF API unavailable") }),
		Entry("the apps", func() { cf.appsErr = errors.New("CF API unavailable") }),
		Entry("the bucket", func() {
			st.SetFail(func(op, _ string) error {
				if op == storetest.OpList || op == storetest.OpGet {
					return errors.New("S3 unavailable")
				}
				return nil
			})
		}),
	)

	DescribeTable("an unbind during the refresh is not undone",
		func(change func(*targets.App)) {
			cf.update(app1, change)
			reconcile.SetBeforeApply(rec, func(pass int) {
				if pass == 1 {
					unbind(1)
				}
			})
			_, err := rec.RunApps(ctx, []string{app1})
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Keys()).NotTo(ContainElement(BeElementOf(activeKey(app1), inactiveKey(app1))))
		},
		Entry("a rewrite in place (its condition fails)", func(a *targets.App) { a.Processes[0].Instances = 5 }),
		Entry("a move to inactive/ (the next pass removes it)", func(a *targets.App) { a.State = "STOPPED" }),
	)

	It("counts its store changes with the reconciles', but not as a reconcile run", func() {
		cf.update(app1, func(a *targets.App) { a.Processes[0].Instances = 5 })
		written := testutil.ToFloat64(reconcile.ChangesCounter(rec.Metrics, "target_written"))
		_, err := rec.RunApps(ctx, []string{app1})
		Expect(err).NotTo(HaveOccurred())
		Expect(testutil.ToFloat64(reconcile.ChangesCounter(rec.Metrics, "target_written"))).To(Equal(written + 1))
		Expect(testutil.CollectAndCount(reg, "cf_app_discovery_reconcile_duration_seconds")).To(Equal(1))
		Expect(testutil.ToFloat64(reconcile.RunsCounter(rec.Metrics, "success"))).To(Equal(1.0))
	})
})

// planBindingsOnly is a CFReader that cannot list the bindings of some apps.
type planBindingsOnly struct{ cf *fakeCF }

func (p planBindingsOnly) PlanBindings(ctx context.Context) ([]cfapi.Binding, error) {
	return p.cf.PlanBindings(ctx)
}

func (p planBindingsOnly) Apps(ctx context.Context, guids []string) (map[string]targets.App, error) {
	return p.cf.Apps(ctx, guids)
}
