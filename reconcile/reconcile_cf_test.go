package reconcile_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/reconcile"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// faultyS3 sits in front of an S3-compatible server and answers 500 to the
// operations a test chooses.
type faultyS3 struct {
	next http.Handler
	mu   sync.Mutex
	fail func(op, key string) bool
}

func (f *faultyS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := r.Method
	if r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
		op = "LIST"
	}
	key := strings.TrimPrefix(r.URL.Path, "/cf-targets/")
	f.mu.Lock()
	fail := f.fail != nil && f.fail(op, key)
	f.mu.Unlock()
	if fail {
		http.Error(w, "<Error><Code>InternalError</Code></Error>", http.StatusInternalServerError)
		return
	}
	f.next.ServeHTTP(w, r)
}

func (f *faultyS3) set(fail func(op, key string) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

var _ = Describe("Reconciler against the CF API and S3", func() {
	var (
		ctx     context.Context
		cf      *fakecf.Server
		s3      *faultyS3
		st      store.Store
		rec     *reconcile.Reconciler
		space   fakecf.Space
		domain  fakecf.Domain
		plan    fakecf.ServicePlan
		appA    fakecf.App
		appB    fakecf.App
		routeA  fakecf.Route
		shifted time.Duration
	)

	addRoute := func(host string, d fakecf.Domain, path, app string) fakecf.Route {
		r, err := cf.AddRoute(fakecf.Route{Host: host, DomainGUID: d.GUID, Path: path,
			Destinations: []fakecf.Destination{{AppGUID: app}}})
		Expect(err).NotTo(HaveOccurred())
		return r
	}
	bindings := 0
	bind := func(app string) fakecf.Binding {
		bindings++
		b, err := cf.AddBinding(fakecf.Binding{GUID: fakecf.GUID("binding", bindings), AppGUID: app, PlanGUID: plan.GUID})
		Expect(err).NotTo(HaveOccurred())
		return b
	}
	groups := func(key string) []targets.TargetGroup {
		data, _, err := st.Get(ctx, key)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		var out []targets.TargetGroup
		ExpectWithOffset(1, json.Unmarshal(data, &out)).To(Succeed())
		return out
	}
	keys := func() map[string]string {
		out := map[string]string{}
		for _, prefix := range []string{store.ActivePrefix, store.InactivePrefix, store.BindingPrefix} {
			objects, err := st.List(ctx, prefix)
			ExpectWithOffset(1, err).NotTo(HaveOccurred())
			for _, o := range objects {
				out[o.Key] = o.ETag
			}
		}
		return out
	}
	run := func() {
		_, err := rec.Run(ctx)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
	}

	BeforeEach(func() {
		ctx = context.Background()
		cf = fakecf.New(fakecf.Options{})
		DeferCleanup(cf.Close)
		org := cf.AddOrg(fakecf.Org{Name: "my-org"})
		var err error
		space, err = cf.AddSpace(fakecf.Space{Name: "my-space", OrgGUID: org.GUID})
		Expect(err).NotTo(HaveOccurred())
		domain = cf.AddDomain(fakecf.Domain{Name: "apps.example.com"})
		plan = cf.AddServicePlan(fakecf.ServicePlan{Name: "prometheus", BrokerCatalogID: "plan-id"})
		appA, err = cf.AddApp(fakecf.App{Name: "app-a", SpaceGUID: space.GUID, Instances: 2})
		Expect(err).NotTo(HaveOccurred())
		appB, err = cf.AddApp(fakecf.App{Name: "app-b", SpaceGUID: space.GUID, Instances: 1})
		Expect(err).NotTo(HaveOccurred())
		routeA = addRoute("app-a", domain, "", appA.GUID)
		addRoute("app-b", domain, "/prom", appB.GUID)
		bind(appA.GUID)
		bind(appB.GUID)

		s3 = &faultyS3{next: gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server()}
		s3srv := httptest.NewServer(s3)
		DeferCleanup(s3srv.Close)
		awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
		st, err = store.NewS3(ctx, store.S3Options{Bucket: "cf-targets", Endpoint: s3srv.URL, AWSConfig: &awsCfg, Timeout: 2 * time.Second})
		Expect(err).NotTo(HaveOccurred())

		client, err := cfapi.New(ctx, cfapi.Config{
			API: cf.URL(), Username: fakecf.DefaultUsername, Password: fakecf.DefaultPassword, PlanID: "plan-id",
			Registerer: prometheus.NewRegistry(), MaxAttempts: 3,
			RetryBaseDelay: time.Millisecond, RetryMaxDelay: 50 * time.Millisecond, AttemptTimeout: 500 * time.Millisecond,
		})
		Expect(err).NotTo(HaveOccurred())
		shifted = 0
		rec = &reconcile.Reconciler{Store: st, CF: client, PaaSDomain: "paas.example", PlanID: "plan-id",
			Workers: 4, Logger: lager.NewLogger("test"), Now: func() time.Time { return time.Now().Add(shifted) }}
		run()
	})

	It("writes a target file per bound app from the CF API", func() {
		a := groups("active/" + appA.GUID + ".json")
		Expect(a).To(HaveLen(2))
		Expect(a[1].Targets).To(Equal([]string{"app-a.apps.example.com"}))
		Expect(a[1].Labels).To(HaveKeyWithValue("instance", appA.GUID+":1"))
		Expect(a[1].Labels).To(HaveKeyWithValue("org", "my-org"))
		Expect(a[1].Labels).To(HaveKeyWithValue("space", "my-space"))
		b := groups("active/" + appB.GUID + ".json")
		Expect(b[0].Labels).To(HaveKeyWithValue("__metrics_path__", "/prom/metrics"))
		Expect(keys()).To(HaveLen(4), "two targets and two adopted records")
	})

	It("follows annotations: one changed on the app reaches the target file at the next reconcile, no rebind", func() {
		Expect(cf.SetAnnotations(appA.GUID, map[string]string{
			"prometheus.io/path": "/admin/metrics", "prometheus.io/scrape-interval": "30s", "prometheus.io/job": "shop",
		})).To(Succeed())
		run()
		labels := groups("active/" + appA.GUID + ".json")[0].Labels
		Expect(labels).To(HaveKeyWithValue("__metrics_path__", "/admin/metrics"))
		Expect(labels).To(HaveKeyWithValue("__scrape_interval__", "30s"))
		Expect(labels).To(HaveKeyWithValue("__scrape_timeout__", "10s"))
		Expect(labels).To(HaveKeyWithValue("job", "shop"))

		Expect(cf.SetAnnotations(appA.GUID, map[string]string{"prometheus.io/path": "", "prometheus.io/job": ""})).To(Succeed())
		run()
		labels = groups("active/" + appA.GUID + ".json")[0].Labels
		Expect(labels).NotTo(HaveKey("__metrics_path__"))
		Expect(labels).To(HaveKeyWithValue("job", "app-a"))
		Expect(labels).To(HaveKeyWithValue("__scrape_interval__", "30s"))
	})

	It("scrapes the route on the annotated port", func() {
		_, err := cf.AddRoute(fakecf.Route{Host: "admin-a", DomainGUID: domain.GUID,
			Destinations: []fakecf.Destination{{AppGUID: appA.GUID, Port: 9090}}})
		Expect(err).NotTo(HaveOccurred())
		run()
		Expect(groups("active/" + appA.GUID + ".json")[0].Targets).To(Equal([]string{"app-a.apps.example.com"}))
		Expect(cf.SetAnnotations(appA.GUID, map[string]string{"prometheus.io/port": "9090"})).To(Succeed())
		run()
		Expect(groups("active/" + appA.GUID + ".json")[0].Targets).To(Equal([]string{"admin-a.apps.example.com"}))
	})

	It("follows scaling, including to 0", func() {
		Expect(cf.Scale(appA.GUID, 3)).To(Succeed())
		run()
		Expect(groups("active/" + appA.GUID + ".json")).To(HaveLen(3))
		Expect(cf.Scale(appA.GUID, 0)).To(Succeed())
		run()
		Expect(groups("active/" + appA.GUID + ".json")).To(BeEmpty())
	})

	It("moves stopped apps out of active/ and back", func() {
		Expect(cf.StopApp(appA.GUID)).To(Succeed())
		run()
		Expect(keys()).NotTo(HaveKey("active/" + appA.GUID + ".json"))
		Expect(groups("inactive/" + appA.GUID + ".json")).To(HaveLen(2))
		Expect(cf.StartApp(appA.GUID)).To(Succeed())
		run()
		Expect(keys()).NotTo(HaveKey("inactive/" + appA.GUID + ".json"))
		Expect(groups("active/" + appA.GUID + ".json")).To(HaveLen(2))
	})

	It("follows renames, keeping the job of a -venerable app", func() {
		Expect(cf.Rename(appA.GUID, "app-a-venerable")).To(Succeed())
		Expect(cf.Rename(appB.GUID, "app-b2")).To(Succeed())
		run()
		Expect(groups("active/" + appA.GUID + ".json")[0].Labels).To(HaveKeyWithValue("job", "app-a"))
		Expect(groups("active/" + appB.GUID + ".json")[0].Labels).To(HaveKeyWithValue("job", "app-b2"))
	})

	It("follows route changes", func() {
		addRoute("metrics-a", domain, "/internal/metrics", appA.GUID)
		run()
		a := groups("active/" + appA.GUID + ".json")[0]
		Expect(a.Targets).To(Equal([]string{"metrics-a.apps.example.com"}))
		Expect(a.Labels).To(HaveKeyWithValue("__metrics_path__", "/internal/metrics"))

		internal := cf.AddDomain(fakecf.Domain{Name: "apps.internal", Internal: true})
		Expect(cf.RemoveRoute(routeA.GUID)).To(Succeed())
		// Only the internal route is left once the metrics route goes too.
		addRoute("app-a", internal, "", appA.GUID)
		run()
		Expect(groups("active/" + appA.GUID + ".json")[0].Targets).To(Equal([]string{"metrics-a.apps.example.com"}))
	})

	It("guesses the target of an app left with internal routes only", func() {
		internal := cf.AddDomain(fakecf.Domain{Name: "apps.internal", Internal: true})
		Expect(cf.RemoveRoute(routeA.GUID)).To(Succeed())
		addRoute("app-a", internal, "", appA.GUID)
		run()
		a := groups("active/" + appA.GUID + ".json")[0]
		Expect(a.Targets).To(Equal([]string{"app-a.paas.example"}))
		Expect(a.Labels).NotTo(HaveKey("__metrics_path__"))
	})

	It("removes the target of a deleted app and, after the grace period, its record", func() {
		Expect(cf.DeleteApp(appB.GUID)).To(Succeed())
		run()
		Expect(keys()).NotTo(HaveKey("active/" + appB.GUID + ".json"))
		shifted = time.Hour
		run()
		Expect(keys()).To(HaveLen(2), "app A's target and record")
	})

	It("keeps the target while another binding of the app remains", func() {
		second := bind(appA.GUID)
		run()
		Expect(cf.DeleteBinding(second.GUID)).To(Succeed())
		shifted = time.Hour
		run()
		Expect(groups("active/" + appA.GUID + ".json")).To(HaveLen(2))
	})

	Context("when the CF API fails", func() {
		var before map[string]string

		BeforeEach(func() {
			Expect(cf.Scale(appA.GUID, 5)).To(Succeed())
			Expect(cf.DeleteApp(appB.GUID)).To(Succeed())
			before = keys()
		})

		DescribeTable("changes nothing and reports failure",
			func(f fakecf.Fault) {
				cf.InjectFault(f)
				_, err := rec.Run(ctx)
				Expect(err).To(MatchError(reconcile.ErrReconcile))
				Expect(keys()).To(Equal(before))
			},
			Entry("5xx on apps", fakecf.Fault{Path: "/v3/apps", Status: 502}),
			Entry("5xx on bindings", fakecf.Fault{Path: "/v3/service_credential_bindings", Status: 503}),
			Entry("429 that never ends", fakecf.Fault{Path: "/v3/routes", Status: 429, RetryAfter: "0"}),
			Entry("a hung request", fakecf.Fault{Path: "/v3/processes", Hang: true}),
			Entry("a truncated page", fakecf.Fault{Path: "/v3/apps", TruncatePage: 1}),
		)

		It("retries a passing 429 and 5xx and then succeeds", func() {
			cf.InjectFault(fakecf.Fault{Path: "/v3/apps", Status: 429, RetryAfter: "0", Times: 1})
			cf.InjectFault(fakecf.Fault{Path: "/v3/routes", Status: 500, Times: 1})
			run()
			Expect(groups("active/" + appA.GUID + ".json")).To(HaveLen(5))
			Expect(keys()).NotTo(HaveKey("active/" + appB.GUID + ".json"))
		})
	})

	Context("when S3 fails", func() {
		BeforeEach(func() {
			Expect(cf.StopApp(appA.GUID)).To(Succeed())
			Expect(cf.DeleteApp(appB.GUID)).To(Succeed())
		})

		DescribeTable("keeps every app consistent, reports failure, and the next run repairs",
			func(op string) {
				before := keys()
				s3.set(func(o, _ string) bool { return o == op })
				_, err := rec.Run(ctx)
				Expect(err).To(MatchError(reconcile.ErrReconcile))
				s3.set(nil)
				after := keys()
				_, active := after["active/"+appA.GUID+".json"]
				_, inactive := after["inactive/"+appA.GUID+".json"]
				Expect(active || inactive).To(BeTrue(), "app A never loses its target")
				if op == "LIST" {
					Expect(after).To(Equal(before))
				}

				run()
				after = keys()
				Expect(after).To(HaveKey("inactive/" + appA.GUID + ".json"))
				Expect(after).NotTo(HaveKey("active/" + appA.GUID + ".json"))
				Expect(after).NotTo(HaveKey("active/" + appB.GUID + ".json"))
			},
			Entry("list", "LIST"),
			Entry("put", "PUT"),
			Entry("delete", "DELETE"),
		)
	})

	Context("with a bucket written by the Ruby service", func() {
		It("adopts the bindings and rewrites the files", func() {
			for key := range keys() {
				if strings.HasPrefix(key, store.BindingPrefix) {
					Expect(st.Delete(ctx, key)).To(Succeed())
				}
			}
			key, _ := store.TargetKey(appA.GUID, true)
			_, err := st.Put(ctx, key, []byte("[\n  {\"targets\": [\"old\"], \"labels\": {}}\n]"), store.Condition{})
			Expect(err).NotTo(HaveOccurred())
			run()
			Expect(groups(key)).To(HaveLen(2))
			Expect(keys()).To(HaveLen(4))
		})
	})
})
