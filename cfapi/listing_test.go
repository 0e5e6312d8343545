package cfapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("Listings", func() {
	f := useFakeCF()

	// onPage1 edits page 1 of the listings of path.
	onPage1 := func(path string, edit func(page map[string]json.RawMessage)) tamper {
		return tamper{edit: func(r *http.Request, body []byte) []byte {
			if r.URL.Path != path || r.URL.Query().Get("page") != "1" {
				return body
			}
			return editPage(body, edit)
		}}
	}

	DescribeTable("an answer that is not the whole listing is an error",
		func(t func() tamper, why string) {
			var err error
			f.cfg.API = tampered(f.server, t())
			f.cf, err = cfapi.New(f.ctx, f.cfg)
			Expect(err).NotTo(HaveOccurred())
			_, err = f.cf.App(f.ctx, fakecf.GUID("app", 1))
			Expect(err).To(MatchError(cfapi.ErrUnavailable))
			Expect(err.Error()).To(ContainSubstring(why))
		},
		Entry("a page without its included resources", func() tamper {
			return onPage1("/v3/routes", func(page map[string]json.RawMessage) { delete(page, "included") })
		}, "page 1 has no included resources"),
		Entry("a page whose included resources are null", func() tamper {
			return onPage1("/v3/routes", func(page map[string]json.RawMessage) { page["included"] = json.RawMessage("null") })
		}, "page 1 has no included resources"),
		Entry("a page short of a resource", func() tamper {
			return onPage1("/v3/processes", func(page map[string]json.RawMessage) {
				var resources []json.RawMessage
				Expect(json.Unmarshal(page["resources"], &resources)).To(Succeed())
				page["resources"], _ = json.Marshal(resources[:len(resources)-1])
			})
		}, "0 of 1 resources read"),
		Entry("a next link to another page than the next", func() tamper {
			return onPage1("/v3/processes", func(page map[string]json.RawMessage) {
				page["pagination"] = json.RawMessage(`{"total_results":1,"total_pages":3,"next":{"href":"http://127.0.0.1/v3/processes?page=3&per_page=5000"}}`)
			})
		}, "unexpected next link"),
		Entry("a page without its pagination", func() tamper {
			return onPage1("/v3/processes", func(page map[string]json.RawMessage) { delete(page, "pagination") })
		}, "not a page of a listing"),
		Entry("a page that is null", func() tamper {
			return tamper{edit: func(r *http.Request, body []byte) []byte {
				if r.URL.Path == "/v3/routes" {
					return []byte("null")
				}
				return body
			}}
		}, "not a page of a listing"),
		Entry("a page whose resources are not a list", func() tamper {
			return onPage1("/v3/routes", func(page map[string]json.RawMessage) { page["resources"] = json.RawMessage(`{}`) })
		}, "malformed"),
	)

	It("reads what it does not know past", func() {
		var err error
		f.cfg.API = tampered(f.server, onPage1("/v3/routes", func(page map[string]json.RawMessage) {
			page["a_future_key"] = json.RawMessage(`{"resources":[{"guid":"x"}],"included":null}`)
		}))
		f.cf, err = cfapi.New(f.ctx, f.cfg)
		Expect(err).NotTo(HaveOccurred())
		app, err := f.cf.App(f.ctx, fakecf.GUID("app", 1))
		Expect(err).NotTo(HaveOccurred())
		Expect(app.Routes).To(HaveLen(2))
	})

	It("reads each app's annotations", func() {
		annotated := fakecf.GUID("app", 2)
		var err error
		f.cfg.API = tampered(f.server, tamper{edit: func(r *http.Request, body []byte) []byte {
			if !strings.HasPrefix(r.URL.Path, "/v3/apps") {
				return body
			}
			// Each app resource carries its own metadata: give app 2's
			// annotations, leaving the others' empty.
			var out []string
			for i, part := range strings.Split(string(body), `"guid":"`+annotated+`"`) {
				if i > 0 {
					part = strings.Replace(part, `"annotations":{}`, `"annotations":{"prometheus.io/path":"/admin/metrics"}`, 1)
				}
				out = append(out, part)
			}
			return []byte(strings.Join(out, `"guid":"`+annotated+`"`))
		}})
		f.cf, err = cfapi.New(f.ctx, f.cfg)
		Expect(err).NotTo(HaveOccurred())
		want := map[string]string{"prometheus.io/path": "/admin/metrics"}
		app, err := f.cf.App(f.ctx, annotated)
		Expect(err).NotTo(HaveOccurred())
		Expect(app.Annotations).To(Equal(want))
		apps, err := f.cf.Apps(f.ctx, []string{annotated, fakecf.GUID("app", 3)})
		Expect(err).NotTo(HaveOccurred())
		Expect(apps[annotated].Annotations).To(Equal(want))
		Expect(apps[fakecf.GUID("app", 3)].Annotations).To(BeEmpty())
	})
})

// These specs share one platform of 12,000 apps: building it and paging
// through it is the slow part. The last ones change it.
var _ = Describe("Listings at platform scale", Ordered, func() {
	var (
		ctx    context.Context
		server *fakecf.Server
		cfg    cfapi.Config
		cf     *cfapi.Client
		bound  []string
	)

	BeforeAll(func() {
		ctx = context.Background()
		server = fakecf.New(fakecf.Options{})
		DeferCleanup(server.Close)
		_, err := server.Populate(fakecf.Fleet{Orgs: 20, SpacesPerOrg: 10, Apps: 12000, Bound: 10000, ExtraRoutes: 3000, PlanCatalogID: planCatalogID})
		Expect(err).NotTo(HaveOccurred())
		cfg = testCFConfig(server, prometheus.NewRegistry())
		// Pages of 5000 take a while under the race detector.
		cfg.AttemptTimeout = time.Minute
		cf, err = cfapi.New(ctx, cfg)
		Expect(err).NotTo(HaveOccurred())
		for i := range 10000 {
			bound = append(bound, fakecf.GUID("app", i))
		}
	})

	BeforeEach(func() {
		server.ClearFaults()
		server.ResetCounts()
	})

	It("describes 10,000 of 12,000 visible apps by listing everything 5000 a page", func() {
		apps, err := cf.Apps(ctx, bound)
		Expect(err).NotTo(HaveOccurred())
		Expect(apps).To(HaveLen(10000))
		Expect(server.APIRequests()).To(BeNumerically("<=", 15))
		for _, line := range server.RequestLog() {
			Expect(line).To(ContainSubstring("per_page=5000"))
			Expect(line).NotTo(ContainSubstring("guids="))
		}
		last := apps[fakecf.GUID("app", 9999)]
		Expect(last.Instances()).To(Equal(2))
		last.Processes = nil
		Expect(last).To(Equal(targets.App{
			GUID: fakecf.GUID("app", 9999), Name: "app-9999", State: "STARTED",
			Org: "org-19", Space: "space-9",
			Routes: []targets.Route{{Host: "app-9999", Domain: "apps.example.com", Protocol: "http1", Port: 8080}},
		}))
		Expect(apps).NotTo(HaveKey(fakecf.GUID("app", 10000)))
		Expect(apps[fakecf.GUID("app", 2)].Routes).To(HaveLen(2))
	})

	It("lists the 10,000 bindings in two pages", func() {
		bindings, err := cf.PlanBindings(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(bindings).To(HaveLen(10000))
		Expect(server.RequestsTo("/v3/service_credential_bindings")).To(Equal(2))
	})

	It("fails without a map when a page is cut short", func() {
		server.InjectFault(fakecf.Fault{Path: "/v3/apps", TruncatePage: 2, Times: 1})
		apps, err := cf.Apps(ctx, bound)
		Expect(err).To(MatchError(cfapi.ErrUnavailable))
		Expect(apps).To(BeNil())
		Expect(server.RequestLog()).To(ContainElement(ContainSubstring("/v3/apps?include=space.organization&per_page=5000&page=2")))
	})

	Context("when apps are deleted while the apps are listed", func() {
		// deletedApps counts the apps the specs below deleted, the last
		// apps of the platform, none of them bound.
		var deletedApps atomic.Int32
		// deleting gives a client whose requests for page 2 of the apps
		// each delete an app first, times times at most.
		deleting := func(times int32) *cfapi.Client {
			limit := deletedApps.Load() + times
			cfg := cfg
			cfg.API = tampered(server, tamper{before: func(r *http.Request) {
				if r.URL.Path == "/v3/apps" && r.URL.Query().Get("page") == "2" && deletedApps.Load() < limit {
					n := int(deletedApps.Add(1))
					Expect(server.DeleteApp(fakecf.GUID("app", 12000-n))).To(Succeed())
				}
			}})
			client, err := cfapi.New(ctx, cfg)
			Expect(err).NotTo(HaveOccurred())
			return client
		}
		firstPages := func() int {
			n := 0
			for _, line := range server.RequestLog() {
				if strings.HasPrefix(line, "GET /v3/apps?") && strings.HasSuffix(line, "&page=1") {
					n++
				}
			}
			return n
		}

		It("reads the listing again", func() {
			apps, err := deleting(1).Apps(ctx, bound)
			Expect(err).NotTo(HaveOccurred())
			Expect(apps).To(HaveLen(10000))
			Expect(firstPages()).To(Equal(2))
		})

		It("gives up when the listing changes again", func() {
			apps, err := deleting(2).Apps(ctx, bound)
			Expect(err).To(MatchError(cfapi.ErrUnavailable))
			Expect(err.Error()).To(ContainSubstring("changed while it was read"))
			Expect(apps).To(BeNil())
			Expect(firstPages()).To(Equal(2))
		})
	})
})
