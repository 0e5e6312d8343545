package cfapi_test

import (
	"context"
	"errors"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/targets"
)

const planCatalogID = "prometheus-plan"

// testCFConfig keeps retry waits short so that the specs run quickly.
func testCFConfig(server *fakecf.Server, reg prometheus.Registerer) cfapi.Config {
	return cfapi.Config{
		API:            server.URL(),
		Username:       fakecf.DefaultUsername,
		Password:       fakecf.DefaultPassword,
		PlanID:         planCatalogID,
		Registerer:     reg,
		MaxAttempts:    3,
		RetryBaseDelay: time.Millisecond,
		RetryMaxDelay:  5 * time.Millisecond,
		AttemptTimeout: 2 * time.Second,
	}
}

// counterValue reads one series of a counter from a registry (-1 if absent).
func counterValue(reg *prometheus.Registry, name string, labels map[string]string) float64 {
	families, err := reg.Gather()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

var _ = Describe("CFClient", func() {
	var (
		ctx    context.Context
		server *fakecf.Server
		pop    fakecf.Population
		reg    *prometheus.Registry
		cfg    cfapi.Config
		cf     *cfapi.Client
		fleet  fakecf.Fleet
	)

	BeforeEach(func() {
		ctx = context.Background()
		server = fakecf.New(fakecf.Options{})
		DeferCleanup(server.Close)
		reg = prometheus.NewRegistry()
		cfg = testCFConfig(server, reg)
		fleet = fakecf.Fleet{Orgs: 2, SpacesPerOrg: 2, Apps: 40, Bound: 20, ExtraRoutes: 5, PlanCatalogID: planCatalogID}
	})

	JustBeforeEach(func() {
		var err error
		pop, err = server.Populate(fleet)
		Expect(err).NotTo(HaveOccurred())
		cf, err = cfapi.New(ctx, cfg)
		Expect(err).NotTo(HaveOccurred())
	})

	Describe("App", func() {
		It("describes the app with its org, space, web instances and routes", func() {
			app, err := cf.App(ctx, fakecf.GUID("app", 1))
			Expect(err).NotTo(HaveOccurred())
			Expect(app.Processes).To(HaveLen(1))
			Expect(app.Processes[0].GUID).To(Equal(app.GUID), "an app's first web process has the app's guid")
			Expect(app.Processes[0].Instances).To(Equal(2))
			Expect(app.Processes[0].CreatedAt).NotTo(BeZero())
			app.Processes = nil
			Expect(app).To(Equal(targets.App{
				GUID: fakecf.GUID("app", 1), Name: "app-1", State: "STARTED", Annotations: map[string]string{},
				Org: "org-0", Space: "space-1",
				Routes: []targets.Route{
					{Host: "app-1", Domain: "apps.example.com", Protocol: "http1", Port: 8080},
					{Host: "app-1-metrics", Domain: "apps.example.com", Path: "/metrics", Protocol: "http1", Port: 8080},
				},
			}))
		})

		It("costs 3 CF requests and no token request once the token is held", func() {
			Expect(server.TokenRequests()).To(Equal(1))
			server.ResetCounts()
			_, err := cf.App(ctx, fakecf.GUID("app", 2))
			Expect(err).NotTo(HaveOccurred())
			Expect(server.Requests()).To(Equal(3))
			Expect(server.RequestsTo("/v3/apps/" + fakecf.GUID("app", 2))).To(Equal(1))
			Expect(server.RequestsTo("/v3/processes")).To(Equal(1))
			Expect(server.RequestsTo("/v3/routes")).To(Equal(1))
			_, err = cf.App(ctx, fakecf.GUID("app", 3))
			Expect(err).NotTo(HaveOccurred())
			Expect(server.TokenRequests()).To(Equal(0))
		})

		It("follows state changes: stopped, scaled, renamed", func() {
			guid := fakecf.GUID("app", 4)
			Expect(server.StopApp(guid)).To(Succeed())
			Expect(server.Scale(guid, 5)).To(Succeed())
			Expect(server.Rename(guid, "app-4-venerable")).To(Succeed())
			app, err := cf.App(ctx, guid)
			Expect(err).NotTo(HaveOccurred())
			Expect(app.State).To(Equal("STOPPED"))
			Expect(app.Started()).To(BeFalse())
			Expect(app.Instances()).To(Equal(5))
			Expect(app.Name).To(Equal("app-4-venerable"))
		})

		It("gives 0 instances to an app without a web process", func() {
			guid := fakecf.GUID("app", 5)
			Expect(server.RemoveProcess(guid, "web")).To(Succeed())
			Expect(server.SetProcess(guid, "worker", 3)).To(Succeed())
			app, err := cf.App(ctx, guid)
			Expect(err).NotTo(HaveOccurred())
			Expect(app.Instances()).To(Equal(0))
		})

		Context("with routes of every kind", func() {
			var guid string

			JustBeforeEach(func() {
				guid = fakecf.GUID("app", 6)
				other := fakecf.GUID("app", 7)
				internal := server.AddDomain(fakecf.Domain{Name: "apps.internal", Internal: true})
				tcp := server.AddDomain(fakecf.Domain{Name: "tcp.example.com", TCP: true})
				Expect(server.RemoveRoute(fakecf.GUID("route", 6))).To(Succeed())
				t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
				routes := []fakecf.Route{
					// Added out of order: the client sorts by created_at, then guid.
					{GUID: "00000000-0000-4000-8000-000000000005", Host: "newest", DomainGUID: pop.Domain.GUID, CreatedAt: t0.Add(5 * time.Hour),
						Destinations: []fakecf.Destination{{AppGUID: guid}}},
					{GUID: "00000000-0000-4000-8000-000000000002", Host: "same-time-b", DomainGUID: pop.Domain.GUID, CreatedAt: t0.Add(time.Hour),
						Destinations: []fakecf.Destination{{AppGUID: guid}}},
					{GUID: "00000000-0000-4000-8000-000000000001", Host: "same-time-a", DomainGUID: pop.Domain.GUID, Path: "/x", CreatedAt: t0.Add(time.Hour),
						Destinations: []fakecf.Destination{{AppGUID: guid}}},
					{GUID: "00000000-0000-4000-8000-000000000003", Host: "c2c", DomainGUID: internal.GUID, CreatedAt: t0,
						Destinations: []fakecf.Destination{{AppGUID: guid}}},
					{GUID: "00000000-0000-4000-8000-000000000004", DomainGUID: tcp.GUID, Protocol: fakecf.TCP, Port: 1024, CreatedAt: t0.Add(2 * time.Hour),
						Destinations: []fakecf.Destination{{AppGUID: guid}}},
					{GUID: "00000000-0000-4000-8000-000000000006", Host: "shared", DomainGUID: pop.Domain.GUID, CreatedAt: t0.Add(3 * time.Hour),
						Destinations: []fakecf.Destination{{AppGUID: other}, {AppGUID: guid, Port: 9090}, {AppGUID: guid}, {AppGUID: guid, Port: 9090},
							{AppGUID: guid, ProcessType: "worker", Port: 7070}}},
					{GUID: "00000000-0000-4000-8000-000000000007", Host: "worker-only", DomainGUID: pop.Domain.GUID, CreatedAt: t0,
						Destinations: []fakecf.Destination{{AppGUID: guid, ProcessType: "worker"}}},
					{GUID: "00000000-0000-4000-8000-000000000008", Host: "other-app", DomainGUID: pop.Domain.GUID, CreatedAt: t0,
						Destinations: []fakecf.Destination{{AppGUID: other}}, SpaceGUID: pop.Apps[6].SpaceGUID},
				}
				for _, r := range routes {
					_, err := server.AddRoute(r)
					Expect(err).NotTo(HaveOccurred())
				}
			})

			It("keeps routes to the app's web process, oldest first, with domain, protocol and port, once per port", func() {
				app, err := cf.App(ctx, guid)
				Expect(err).NotTo(HaveOccurred())
				Expect(app.Routes).To(Equal([]targets.Route{
					{Host: "c2c", Domain: "apps.internal", Protocol: "http1", Internal: true, Port: 8080},
					{Host: "same-time-a", Domain: "apps.example.com", Path: "/x", Protocol: "http1", Port: 8080},
					{Host: "same-time-b", Domain: "apps.example.com", Protocol: "http1", Port: 8080},
					{Host: "", Domain: "tcp.example.com", Protocol: "tcp", Port: 8080},
					{Host: "shared", Domain: "apps.example.com", Protocol: "http1", Port: 8080},
					{Host: "shared", Domain: "apps.example.com", Protocol: "http1", Port: 9090},
					{Host: "newest", Domain: "apps.example.com", Protocol: "http1", Port: 8080},
				}))
				route, ok := targets.ChooseRoute(app.Routes)
				Expect(ok).To(BeTrue())
				Expect(route.Address()).To(Equal("same-time-a.apps.example.com"))
			})

			It("describes the app the same way in Apps", func() {
				one, err := cf.App(ctx, guid)
				Expect(err).NotTo(HaveOccurred())
				many, err := cf.Apps(ctx, []string{guid})
				Expect(err).NotTo(HaveOccurred())
				Expect(many).To(Equal(map[string]targets.App{guid: one}))
			})
		})

		Context("when CF does not show the app", func() {
			It("answers ErrAppNotVisible for an unknown app", func() {
				_, err := cf.App(ctx, fakecf.GUID("app", 9999))
				Expect(err).To(MatchError(cfapi.ErrAppNotVisible))
				Expect(errors.Is(err, cfapi.ErrUnavailable)).To(BeFalse())
			})

			It("answers ErrAppNotVisible for an app outside the user's spaces", func() {
				server.RestrictToSpaces(pop.Spaces[0].GUID)
				_, err := cf.App(ctx, fakecf.GUID("app", 1))
				Expect(err).To(MatchError(cfapi.ErrAppNotVisible))
				_, err = cf.App(ctx, fakecf.GUID("app", 4))
				Expect(err).NotTo(HaveOccurred())
			})

			It("answers ErrAppNotVisible for a 403", func() {
				server.InjectFault(fakecf.Fault{Path: "/v3/apps/", Status: http.StatusForbidden})
				_, err := cf.App(ctx, fakecf.GUID("app", 1))
				Expect(err).To(MatchError(cfapi.ErrAppNotVisible))
			})

			It("refuses what is not a GUID without asking CF", func() {
				server.ResetCounts()
				_, err := cf.App(ctx, "../apps")
				Expect(err).To(MatchError(cfapi.ErrAppNotVisible))
				Expect(server.Requests()).To(Equal(0))
			})
		})

		Context("when CF fails", func() {
			var guid string

			BeforeEach(func() {
				guid = fakecf.GUID("app", 1)
			})

			It("retries a 500 and succeeds", func() {
				server.InjectFault(fakecf.Fault{Path: "/v3/apps/", Times: 1, Status: http.StatusInternalServerError})
				app, err := cf.App(ctx, guid)
				Expect(err).NotTo(HaveOccurred())
				Expect(app.Name).To(Equal("app-1"))
				Expect(server.RequestsTo("/v3/apps/" + guid)).To(Equal(2))
				Expect(counterValue(reg, "cf_app_discovery_cf_requests_total", map[string]string{"endpoint": "/v3/apps/:guid", "code": "500"})).To(Equal(1.0))
				Expect(counterValue(reg, "cf_app_discovery_cf_requests_total", map[string]string{"endpoint": "/v3/apps/:guid", "code": "200"})).To(Equal(1.0))
			})

			It("retries a 429 with Retry-After and succeeds", func() {
				server.InjectFault(fakecf.Fault{Path: "/v3/routes", Times: 2, Status: http.StatusTooManyRequests, RetryAfter: "1"})
				_, err := cf.App(ctx, guid)
				Expect(err).NotTo(HaveOccurred())
				Expect(server.RequestsTo("/v3/routes")).To(Equal(3))
				Expect(counterValue(reg, "cf_app_discovery_cf_requests_total", map[string]string{"endpoint": "/v3/routes", "code": "429"})).To(Equal(2.0))
			})

			It("retries a hung request after the attempt timeout", func() {
				cfg.AttemptTimeout = 200 * time.Millisecond
				// The client is built in JustBeforeEach; rebuild it with the short timeout.
				var err error
				cf, err = cfapi.New(ctx, cfg)
				Expect(err).NotTo(HaveOccurred())
				server.InjectFault(fakecf.Fault{Path: "/v3/processes", Times: 1, Hang: true})
				app, err := cf.App(ctx, guid)
				Expect(err).NotTo(HaveOccurred())
				Expect(app.Instances()).To(Equal(2))
				Expect(server.RequestsTo("/v3/processes")).To(Equal(2))
			})

			It("gives up with ErrCFUnavailable when 500s persist", func() {
				server.InjectFault(fakecf.Fault{Path: "/v3/apps/", Status: http.StatusInternalServerError})
				_, err := cf.App(ctx, guid)
				Expect(err).To(MatchError(cfapi.ErrUnavailable))
				Expect(errors.Is(err, cfapi.ErrAppNotVisible)).To(BeFalse())
				Expect(server.RequestsTo("/v3/apps/" + guid)).To(Equal(cfg.MaxAttempts))
			})

			It("answers ErrCFUnavailable for a truncated answer", func() {
				server.InjectFault(fakecf.Fault{Path: "/v3/routes", TruncatePage: 1})
				_, err := cf.App(ctx, guid)
				Expect(err).To(MatchError(cfapi.ErrUnavailable))
				Expect(err.Error()).To(ContainSubstring("malformed"))
			})

			It("answers ErrCFUnavailable when the server is gone", func() {
				server.Close()
				_, err := cf.App(ctx, guid)
				Expect(err).To(MatchError(cfapi.ErrUnavailable))
			})
		})
	})

	Describe("Binding", func() {
		It("looks a binding up with its app and plan", func() {
			b, err := cf.Binding(ctx, fakecf.GUID("binding", 3))
			Expect(err).NotTo(HaveOccurred())
			Expect(b.GUID).To(Equal(fakecf.GUID("binding", 3)))
			Expect(b.AppGUID).To(Equal(fakecf.GUID("app", 3)))
			Expect(b.PlanGUID).To(Equal(pop.Plan.GUID))
			Expect(b.CreatedAt).To(Equal(pop.Bindings[3].CreatedAt))
			Expect(b.Deleting).To(BeFalse())
		})

		DescribeTable("Deleting is set only while Cloud Controller unbinds",
			func(op fakecf.LastOperation, deleting bool) {
				guid := fakecf.GUID("binding", 3)
				Expect(server.SetBindingLastOperation(guid, op)).To(Succeed())
				b, err := cf.Binding(ctx, guid)
				Expect(err).NotTo(HaveOccurred())
				Expect(b.Deleting).To(Equal(deleting))
			},
			Entry("delete in progress", fakecf.LastOperation{Type: fakecf.OpDelete, State: fakecf.OpInProgress}, true),
			Entry("delete failed", fakecf.LastOperation{Type: fakecf.OpDelete, State: fakecf.OpFailed}, false),
			Entry("create in progress", fakecf.LastOperation{Type: fakecf.OpCreate, State: fakecf.OpInProgress}, false),
			Entry("create succeeded", fakecf.LastOperation{Type: fakecf.OpCreate, State: fakecf.OpSucceeded}, false),
		)

		It("answers ErrBindingNotFound for an unknown binding", func() {
			_, err := cf.Binding(ctx, fakecf.GUID("binding", 999))
			Expect(err).To(MatchError(cfapi.ErrBindingNotFound))
		})

		It("answers ErrCFUnavailable when CF fails", func() {
			server.InjectFault(fakecf.Fault{Path: "/v3/service_credential_bindings/", Status: http.StatusBadGateway})
			_, err := cf.Binding(ctx, fakecf.GUID("binding", 3))
			Expect(err).To(MatchError(cfapi.ErrUnavailable))
			Expect(errors.Is(err, cfapi.ErrBindingNotFound)).To(BeFalse())
		})
	})

	Describe("AppBindings and PlanBindings", func() {
		var otherPlan fakecf.ServicePlan

		JustBeforeEach(func() {
			otherPlan = server.AddServicePlan(fakecf.ServicePlan{Name: "other", BrokerCatalogID: "other-plan"})
			_, err := server.AddBinding(fakecf.Binding{AppGUID: fakecf.GUID("app", 1), PlanGUID: otherPlan.GUID})
			Expect(err).NotTo(HaveOccurred())
			_, err = server.AddBinding(fakecf.Binding{Type: fakecf.KeyBinding, PlanGUID: pop.Plan.GUID, SpaceGUID: pop.Spaces[0].GUID})
			Expect(err).NotTo(HaveOccurred())
			_, err = server.AddBinding(fakecf.Binding{GUID: fakecf.GUID("second-binding", 1), AppGUID: fakecf.GUID("app", 1), PlanGUID: pop.Plan.GUID,
				ServiceInstanceGUID: fakecf.GUID("instance", 2)})
			Expect(err).NotTo(HaveOccurred())
		})

		It("lists the app bindings of our plan for one app, oldest first", func() {
			bindings, err := cf.AppBindings(ctx, fakecf.GUID("app", 1))
			Expect(err).NotTo(HaveOccurred())
			Expect(bindings).To(HaveLen(2))
			Expect(bindings[0].GUID).To(Equal(fakecf.GUID("binding", 1)))
			Expect(bindings[1].GUID).To(Equal(fakecf.GUID("second-binding", 1)))
			for _, b := range bindings {
				Expect(b.AppGUID).To(Equal(fakecf.GUID("app", 1)))
				Expect(b.PlanGUID).To(Equal(pop.Plan.GUID))
			}
		})

		It("lists every app binding of our plan, and no keys or other plans", func() {
			bindings, err := cf.PlanBindings(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(bindings).To(HaveLen(fleet.Bound + 1))
			for _, b := range bindings {
				Expect(b.PlanGUID).To(Equal(pop.Plan.GUID))
				Expect(b.AppGUID).NotTo(BeEmpty())
			}
		})

		It("looks the plan guids up once", func() {
			_, err := cf.PlanBindings(ctx)
			Expect(err).NotTo(HaveOccurred())
			_, err = cf.AppBindings(ctx, fakecf.GUID("app", 2))
			Expect(err).NotTo(HaveOccurred())
			Expect(server.RequestsTo("/v3/service_plans")).To(Equal(1))
			Expect(server.RequestLog()).To(ContainElement(ContainSubstring("per_page=5000")))
		})

		It("leaves out bindings CF does not show", func() {
			server.RestrictToSpaces(pop.Spaces[0].GUID)
			bindings, err := cf.PlanBindings(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(bindings).To(HaveLen(5), "apps 0, 4, 8, 12 and 16")
		})

		Context("when our plan is not visible", func() {
			BeforeEach(func() {
				cfg.PlanID = "no-such-plan"
			})

			It("fails instead of answering an empty list", func() {
				bindings, err := cf.PlanBindings(ctx)
				Expect(err).To(MatchError(cfapi.ErrUnavailable))
				Expect(bindings).To(BeNil())
			})
		})
	})

	Describe("Apps", func() {
		guids := func(from, to int) []string {
			var out []string
			for i := from; i < to; i++ {
				out = append(out, fakecf.GUID("app", i))
			}
			return out
		}

		It("describes each app as App does, leaving out unknown guids and non-GUIDs", func() {
			asked := append(guids(0, 5), fakecf.GUID("app", 9999), "not-a-guid", fakecf.GUID("app", 1))
			apps, err := cf.Apps(ctx, asked)
			Expect(err).NotTo(HaveOccurred())
			Expect(apps).To(HaveLen(5))
			for _, g := range guids(0, 5) {
				one, err := cf.App(ctx, g)
				Expect(err).NotTo(HaveOccurred())
				Expect(apps).To(HaveKeyWithValue(g, one))
			}
		})

		It("asks nothing for no guids", func() {
			server.ResetCounts()
			apps, err := cf.Apps(ctx, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(apps).To(BeEmpty())
			Expect(server.Requests()).To(Equal(0))
		})

		It("leaves out apps CF does not show", func() {
			server.RestrictToSpaces(pop.Spaces[1].GUID)
			apps, err := cf.Apps(ctx, guids(0, 8))
			Expect(err).NotTo(HaveOccurred())
			Expect(apps).To(HaveLen(2))
			Expect(apps).To(HaveKey(fakecf.GUID("app", 1)))
			Expect(apps).To(HaveKey(fakecf.GUID("app", 5)))
		})

		It("fails without a map when one listing fails", func() {
			server.InjectFault(fakecf.Fault{Path: "/v3/routes", Status: http.StatusServiceUnavailable})
			apps, err := cf.Apps(ctx, guids(0, 8))
			Expect(err).To(MatchError(cfapi.ErrUnavailable))
			Expect(apps).To(BeNil())
		})

		Context("with 250 guids", func() {
			BeforeEach(func() {
				fleet.Apps = 300
			})

			It("filters by guid in batches whose request lines stay under the limit", func() {
				server.ResetCounts()
				apps, err := cf.Apps(ctx, guids(0, 250))
				Expect(err).NotTo(HaveOccurred())
				Expect(apps).To(HaveLen(250))
				Expect(server.APIRequests()).To(Equal(9), "3 batches of apps, processes and routes")
				for _, line := range server.RequestLog() {
					Expect(len(line)).To(BeNumerically("<", fakecf.MaxRequestLine))
					Expect(line).To(Or(ContainSubstring("guids="), HavePrefix("POST /oauth/token")))
				}
			})
		})
	})

	Describe("authentication", func() {
		It("fetches one token with the password grant and reuses it", func() {
			for i := range 5 {
				_, err := cf.App(ctx, fakecf.GUID("app", i))
				Expect(err).NotTo(HaveOccurred())
			}
			_, err := cf.PlanBindings(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(server.TokenRequests()).To(Equal(1))
		})

		It("fetches a new token when CF refuses the old one", func() {
			server.RevokeTokens()
			_, err := cf.App(ctx, fakecf.GUID("app", 1))
			Expect(err).NotTo(HaveOccurred())
			Expect(server.TokenRequests()).To(Equal(2))
		})

		Context("with client credentials", func() {
			BeforeEach(func() {
				cfg.Username, cfg.Password = "", ""
				cfg.ClientID, cfg.ClientSecret = fakecf.DefaultClientID, fakecf.DefaultClientSecret
			})

			It("fetches one token and reuses it", func() {
				for i := range 3 {
					_, err := cf.App(ctx, fakecf.GUID("app", i))
					Expect(err).NotTo(HaveOccurred())
				}
				Expect(server.TokenRequests()).To(Equal(1))
			})
		})

		It("refuses a wrong password at start", func() {
			cfg.Password = "wrong"
			_, err := cfapi.New(ctx, cfg)
			Expect(err).To(HaveOccurred())
		})

		It("answers ErrCFUnavailable for wrong client credentials", func() {
			cfg.Username, cfg.Password = "", ""
			cfg.ClientID, cfg.ClientSecret = fakecf.DefaultClientID, "wrong"
			client, err := cfapi.New(ctx, cfg)
			Expect(err).NotTo(HaveOccurred())
			_, err = client.App(ctx, fakecf.GUID("app", 1))
			Expect(err).To(MatchError(cfapi.ErrUnavailable))
		})

		It("requires credentials", func() {
			cfg.Username, cfg.Password = "", ""
			_, err := cfapi.New(ctx, cfg)
			Expect(err).To(MatchError(ContainSubstring("credentials")))
		})

		It("shares metrics between clients on one registry", func() {
			other, err := cfapi.New(ctx, cfg)
			Expect(err).NotTo(HaveOccurred())
			_, err = other.App(ctx, fakecf.GUID("app", 1))
			Expect(err).NotTo(HaveOccurred())
			_, err = cf.App(ctx, fakecf.GUID("app", 1))
			Expect(err).NotTo(HaveOccurred())
			Expect(counterValue(reg, "cf_app_discovery_cf_requests_total", map[string]string{"endpoint": "/v3/apps/:guid", "code": "200"})).To(Equal(2.0))
			Expect(counterValue(reg, "cf_app_discovery_cf_requests_total", map[string]string{"endpoint": "/oauth/token", "code": "200"})).To(Equal(2.0))
		})
	})

	It("stops connecting when the context ends", func() {
		server.InjectFault(fakecf.Fault{Path: "/", Hang: true})
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := cfapi.New(short, cfg)
		Expect(err).To(MatchError(context.DeadlineExceeded))
		server.ClearFaults()
	})
})

// These specs share one platform of 12,000 apps: building it and paging
// through it is the slow part.
var _ = Describe("CFClient at platform scale", Ordered, func() {
	var (
		ctx    context.Context
		server *fakecf.Server
		cf     *cfapi.Client
		bound  []string
	)

	BeforeAll(func() {
		ctx = context.Background()
		server = fakecf.New(fakecf.Options{})
		DeferCleanup(server.Close)
		_, err := server.Populate(fakecf.Fleet{Orgs: 20, SpacesPerOrg: 10, Apps: 12000, Bound: 10000, ExtraRoutes: 3000, PlanCatalogID: planCatalogID})
		Expect(err).NotTo(HaveOccurred())
		cfg := testCFConfig(server, prometheus.NewRegistry())
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
			GUID: fakecf.GUID("app", 9999), Name: "app-9999", State: "STARTED", Annotations: map[string]string{},
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
})
