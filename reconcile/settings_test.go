package reconcile_test

import (
	"bytes"
	"context"
	"encoding/json"
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

var _ = Describe("Reconciler and tenant settings", func() {
	var (
		st   *storetest.Mem
		cf   *fakeCF
		rec  *reconcile.Reconciler
		reg  *prometheus.Registry
		logs *bytes.Buffer
		ctx  context.Context
		app  targets.App
		t0   time.Time
	)

	// bindWith records binding n of the app with bind parameters, made at
	// t0 + n minutes, as the broker does, and lists it in CF.
	bindWith := func(n int, params string) {
		created := t0.Add(time.Duration(n) * time.Minute)
		_, err := store.NewBucket(st).WriteBinding(ctx, store.Binding{BindingGUID: bindingGUIDn(n), AppGUID: app.GUID,
			PlanID: "plan", Parameters: json.RawMessage(params), CreatedAt: created, Source: store.SourceBroker}, store.Condition{})
		Expect(err).NotTo(HaveOccurred())
		cf.mu.Lock()
		cf.bindings[bindingGUIDn(n)] = cfapi.Binding{GUID: bindingGUIDn(n), AppGUID: app.GUID, CreatedAt: created}
		cf.mu.Unlock()
	}
	run := func() reconcile.Result {
		res, err := rec.Run(ctx)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		return res
	}
	labels := func() map[string]string {
		var groups []targets.TargetGroup
		ExpectWithOffset(1, json.Unmarshal([]byte(st.Body(activeKey(app.GUID))), &groups)).To(Succeed())
		ExpectWithOffset(1, groups).NotTo(BeEmpty())
		return groups[0].Labels
	}
	target := func() string {
		var groups []targets.TargetGroup
		ExpectWithOffset(1, json.Unmarshal([]byte(st.Body(activeKey(app.GUID))), &groups)).To(Succeed())
		return groups[0].Targets[0]
	}

	BeforeEach(func() {
		ctx = context.Background()
		st = storetest.NewMem()
		cf = newFakeCF()
		reg = prometheus.NewRegistry()
		logs = &bytes.Buffer{}
		logger := lager.NewLogger("test")
		logger.RegisterSink(lager.NewWriterSink(logs, lager.INFO))
		rec = &reconcile.Reconciler{Store: st, CF: cf, PaaSDomain: paasDomain, PlanID: "plan",
			Workers: 4, Logger: logger, Metrics: reconcile.NewMetrics(reg)}
		t0 = time.Now().Add(-time.Hour)
		app = targets.App{GUID: appGUIDn(1), Name: "app-1", State: "STARTED", Org: "org", Space: "space",
			Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: 2}},
			Routes: []targets.Route{
				{Host: "app-1", Domain: "example.com", Protocol: "http1", Port: 8080},
				{Host: "admin-1", Domain: "example.com", Protocol: "http1", Port: 9090},
			}}
		cf.apps[app.GUID] = app
	})

	It("renders the bind parameters kept in the binding's record", func() {
		bindWith(1, `{"path":"/admin/metrics","port":9090,"scrape_interval":"30s","job":"shop","labels":{"team":"payments"}}`)
		run()
		Expect(target()).To(Equal("admin-1.example.com"))
		Expect(labels()).To(HaveKeyWithValue("__metrics_path__", "/admin/metrics"))
		Expect(labels()).To(HaveKeyWithValue("__scrape_interval__", "30s"))
		Expect(labels()).To(HaveKeyWithValue("__scrape_timeout__", "10s"))
		Expect(labels()).To(HaveKeyWithValue("job", "shop"))
		Expect(labels()).To(HaveKeyWithValue("team", "payments"))
	})

	It("follows an annotation changed in CF at the next run, under the bind parameters", func() {
		bindWith(1, `{"job":"bound"}`)
		run()
		Expect(labels()).NotTo(HaveKey("__metrics_path__"))
		cf.update(app.GUID, func(a *targets.App) {
			a.Annotations = map[string]string{"prometheus.io/path": "/annotated", "prometheus.io/job": "annotated"}
		})
		res := run()
		Expect(res.TargetsWritten).To(Equal(1))
		Expect(labels()).To(HaveKeyWithValue("__metrics_path__", "/annotated"))
		Expect(labels()).To(HaveKeyWithValue("job", "bound"))
	})

	It("ignores an invalid annotation, logs it with the app, counts it, and writes the rest right", func() {
		bindWith(1, ``)
		cf.update(app.GUID, func(a *targets.App) {
			a.Annotations = map[string]string{"prometheus.io/scrape-interval": "fast", "prometheus.io/job": "shop",
				"prometheus.io/port": "7070"}
		})
		run()
		Expect(labels()).To(HaveKeyWithValue("job", "shop"))
		Expect(labels()).NotTo(HaveKey("__scrape_interval__"))
		Expect(target()).To(Equal("app-1.example.com"))
		Expect(logs.String()).To(ContainSubstring(`"message":"test.reconcile.invalid-annotation"`))
		Expect(logs.String()).To(ContainSubstring(`"app_guid":"` + app.GUID + `"`))
		Expect(logs.String()).To(ContainSubstring(`"key":"prometheus.io/scrape-interval"`))
		Expect(metricValue(reg, "cf_app_discovery_invalid_annotations_total", "prometheus.io/scrape-interval")).To(Equal(1.0))
		Expect(metricValue(reg, "cf_app_discovery_invalid_annotations_total", "prometheus.io/port")).To(Equal(1.0))
		run()
		Expect(metricValue(reg, "cf_app_discovery_invalid_annotations_total", "prometheus.io/scrape-interval")).To(Equal(2.0),
			"once per run")
	})

	It("keeps the oldest binding's setting when two stored bindings disagree, and logs the conflict", func() {
		bindWith(2, `{"path":"/newer","job":"j"}`)
		bindWith(1, `{"path":"/older"}`)
		run()
		Expect(labels()).To(HaveKeyWithValue("__metrics_path__", "/older"))
		Expect(labels()).To(HaveKeyWithValue("job", "j"))
		Expect(logs.String()).To(ContainSubstring(`"message":"test.reconcile.settings-conflict"`))
		Expect(logs.String()).To(ContainSubstring(`"binding_guid":"` + bindingGUIDn(1) + `"`))
	})

	It("combines the settings of bindings that agree, with a binding that has no record", func() {
		bindWith(1, `{"path":"/m"}`)
		bindWith(2, `{"job":"j"}`)
		cf.bind(bindingGUIDn(3), app.GUID) // made in the Ruby era: adopted, no parameters
		run()
		Expect(labels()).To(HaveKeyWithValue("__metrics_path__", "/m"))
		Expect(labels()).To(HaveKeyWithValue("job", "j"))
	})

	It("keeps monitoring an app whose stored parameters no longer parse, without them", func() {
		bindWith(1, `{"path":"relative"}`)
		run()
		Expect(labels()).NotTo(HaveKey("__metrics_path__"))
		Expect(logs.String()).To(ContainSubstring("stored-parameters-invalid"))
	})

	It("scrapes the usual route when no route serves the bound port any more, and logs it", func() {
		bindWith(1, `{"port":9090}`)
		run()
		Expect(target()).To(Equal("admin-1.example.com"))
		cf.update(app.GUID, func(a *targets.App) { a.Routes = a.Routes[:1] })
		run()
		Expect(target()).To(Equal("app-1.example.com"))
		Expect(logs.String()).To(ContainSubstring(`"message":"test.reconcile.setting-ignored"`))
	})

	It("follows a record rewritten with other parameters", func() {
		bindWith(1, `{"path":"/a"}`)
		run()
		bindWith(1, `{"path":"/b"}`)
		run()
		Expect(labels()).To(HaveKeyWithValue("__metrics_path__", "/b"))
	})
})
