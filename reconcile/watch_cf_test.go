package reconcile_test

import (
	"context"
	"encoding/json"
	"maps"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/reconcile"
	"github.com/alphagov/cf-app-discovery/store/storetest"
)

var _ = Describe("Watch against the CF API", func() {
	var (
		ctx    context.Context
		cf     *fakecf.Server
		st     *storetest.Mem
		rec    *reconcile.Reconciler
		w      *reconcile.Watch
		appA   fakecf.App
		appB   fakecf.App
		appC   fakecf.App // not bound
		mu     sync.Mutex
		cfTime time.Time
	)

	instances := func(app string) int {
		body := st.Body(activeKey(app))
		var groups []any
		ExpectWithOffset(1, json.Unmarshal([]byte(body), &groups)).To(Succeed(), body)
		return len(groups)
	}
	files := func() map[string]string {
		out := map[string]string{}
		for _, k := range st.Keys() {
			out[k] = st.Body(k)
		}
		return out
	}
	watch := func() reconcile.WatchResult {
		res, err := w.Run(ctx)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		return res
	}

	BeforeEach(func() {
		ctx = context.Background()
		// The CF API's clock stays in one second unless a test moves it.
		cfTime = time.Date(2026, 12, 5, 14, 0, 0, 100e6, time.UTC)
		cf = fakecf.New(fakecf.Options{Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return cfTime
		}})
		DeferCleanup(cf.Close)
		org := cf.AddOrg(fakecf.Org{Name: "org"})
		space, err := cf.AddSpace(fakecf.Space{Name: "space", OrgGUID: org.GUID})
		Expect(err).NotTo(HaveOccurred())
		plan := cf.AddServicePlan(fakecf.ServicePlan{Name: "prometheus", BrokerCatalogID: "plan-id"})
		for i, a := range []*fakecf.App{&appA, &appB, &appC} {
			*a, err = cf.AddApp(fakecf.App{Name: string(rune('a' + i)), SpaceGUID: space.GUID, Instances: 2})
			Expect(err).NotTo(HaveOccurred())
		}
		for _, a := range []fakecf.App{appA, appB} {
			_, err = cf.AddBinding(fakecf.Binding{AppGUID: a.GUID, PlanGUID: plan.GUID})
			Expect(err).NotTo(HaveOccurred())
		}
		client, err := cfapi.New(ctx, cfapi.Config{
			API: cf.URL(), Username: fakecf.DefaultUsername, Password: fakecf.DefaultPassword, PlanID: "plan-id",
			Registerer: prometheus.NewRegistry(), MaxAttempts: 2,
			RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond, AttemptTimeout: 2 * time.Second,
		})
		Expect(err).NotTo(HaveOccurred())
		st = storetest.NewMem()
		rec = &reconcile.Reconciler{Store: st, CF: client, PaaSDomain: paasDomain, PlanID: "plan-id"}
		w = &reconcile.Watch{CF: client, Apps: rec}

		// As the updater starts: the cursor, then a full reconcile.
		Expect(w.Begin(ctx)).To(Succeed())
		_, err = rec.Run(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(instances(appA.GUID)).To(Equal(2))
		watch()
	})

	It("handles the events of one second once each, over several watches", func() {
		Expect(cf.Scale(appA.GUID, 3)).To(Succeed())
		res := watch()
		Expect(res.Events).To(Equal(1))
		Expect(res.Refreshed).To(Equal(1))
		Expect(instances(appA.GUID)).To(Equal(3))

		// The same second: the scale of A is listed again, with B's.
		Expect(cf.Scale(appB.GUID, 4)).To(Succeed())
		cf.ResetCounts()
		res = watch()
		Expect(res.Events).To(Equal(1))
		Expect(res.Refreshed).To(Equal(1), "B alone")
		Expect(instances(appB.GUID)).To(Equal(4))
		Expect(cf.RequestLog()).NotTo(ContainElement(ContainSubstring(appA.GUID)), "nothing asked about A")
		Expect(cf.RequestLog()).To(ContainElement(ContainSubstring(appB.GUID)))
	})

	It("looks up no app for the events of an app that is not bound", func() {
		Expect(cf.Scale(appC.GUID, 5)).To(Succeed())
		cf.ResetCounts()
		res := watch()
		Expect(res.Events).To(Equal(1))
		Expect(res.Refreshed).To(BeZero())
		Expect(cf.RequestsTo("/v3/apps")).To(BeZero())
		Expect(cf.RequestsTo("/v3/processes")).To(BeZero())
		Expect(cf.RequestsTo("/v3/routes")).To(BeZero())
		Expect(st.Keys()).NotTo(ContainElement(activeKey(appC.GUID)))
	})

	It("follows a rolling deploy to its end, which no event marks", func() {
		_, err := cf.Deploy(appA.GUID, fakecf.Rolling)
		Expect(err).NotTo(HaveOccurred())
		rec.Addressing = "process"
		watch()
		Expect(instances(appA.GUID)).To(Equal(3), "old 2, new 1")
		_, err = cf.StepDeployment(appA.GUID)
		Expect(err).NotTo(HaveOccurred())
		Expect(watch().Events).To(BeZero())
		Expect(instances(appA.GUID)).To(Equal(3), "old 1, new 2")
		_, err = cf.FinishDeployment(appA.GUID)
		Expect(err).NotTo(HaveOccurred())
		Expect(watch().Events).To(BeZero())
		Expect(instances(appA.GUID)).To(Equal(2), "new 2")
	})

	DescribeTable("a failed watch changes nothing, and the next catches up",
		func(fault fakecf.Fault) {
			Expect(cf.Scale(appA.GUID, 3)).To(Succeed())
			_, err := cf.Deploy(appB.GUID, fakecf.Rolling)
			Expect(err).NotTo(HaveOccurred())
			rec.Addressing = "process"
			before := files()
			cf.InjectFault(fault)
			w.Timeout = 500 * time.Millisecond
			_, err = w.Run(ctx)
			Expect(err).To(MatchError(reconcile.ErrWatch))
			Expect(maps.Equal(files(), before)).To(BeTrue(), "the bucket did not change")

			cf.ClearFaults()
			res := watch()
			Expect(res.Events).To(Equal(2))
			Expect(instances(appA.GUID)).To(Equal(3))
			Expect(instances(appB.GUID)).To(Equal(3), "old 2, new 1")
		},
		Entry("audit events: 500", fakecf.Fault{Path: "/v3/audit_events", Status: 500}),
		Entry("audit events: 429", fakecf.Fault{Path: "/v3/audit_events", Status: 429, RetryAfter: "0"}),
		Entry("audit events: a truncated page", fakecf.Fault{Path: "/v3/audit_events", TruncatePage: 1}),
		Entry("audit events: no answer", fakecf.Fault{Path: "/v3/audit_events", Hang: true}),
		Entry("deployments: 503", fakecf.Fault{Path: "/v3/deployments", Status: 503}),
		Entry("bindings of the apps: 500", fakecf.Fault{Path: "/v3/service_credential_bindings", Status: 500}),
		Entry("the apps: 502", fakecf.Fault{Path: "/v3/processes", Status: 502}),
	)
})
