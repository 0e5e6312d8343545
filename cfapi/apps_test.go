package cfapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("App", func() {
	f := useFakeCF()

	It("describes the app with its org, space, web instances and routes", func() {
		app, err := f.cf.App(f.ctx, fakecf.GUID("app", 1))
		Expect(err).NotTo(HaveOccurred())
		Expect(app.Processes).To(HaveLen(1))
		Expect(app.Processes[0].GUID).To(Equal(app.GUID), "an app's first web process has the app's guid")
		Expect(app.Processes[0].Instances).To(Equal(2))
		Expect(app.Processes[0].CreatedAt).NotTo(BeZero())
		app.Processes = nil
		Expect(app).To(Equal(targets.App{
			GUID: fakecf.GUID("app", 1), Name: "app-1", State: "STARTED",
			Org: "org-0", Space: "space-1",
			Routes: []targets.Route{
				{Host: "app-1", Domain: "apps.example.com", Protocol: "http1", Port: 8080},
				{Host: "app-1-metrics", Domain: "apps.example.com", Path: "/metrics", Protocol: "http1", Port: 8080},
			},
		}))
	})

	It("costs 3 CF requests and no token request once the token is held", func() {
		Expect(f.server.TokenRequests()).To(Equal(1))
		f.server.ResetCounts()
		_, err := f.cf.App(f.ctx, fakecf.GUID("app", 2))
		Expect(err).NotTo(HaveOccurred())
		Expect(f.server.Requests()).To(Equal(3))
		Expect(f.server.RequestsTo("/v3/apps/" + fakecf.GUID("app", 2))).To(Equal(1))
		Expect(f.server.RequestsTo("/v3/processes")).To(Equal(1))
		Expect(f.server.RequestsTo("/v3/routes")).To(Equal(1))
		_, err = f.cf.App(f.ctx, fakecf.GUID("app", 3))
		Expect(err).NotTo(HaveOccurred())
		Expect(f.server.TokenRequests()).To(Equal(0))
	})

	It("follows state changes: stopped, scaled, renamed", func() {
		guid := fakecf.GUID("app", 4)
		Expect(f.server.StopApp(guid)).To(Succeed())
		Expect(f.server.Scale(guid, 5)).To(Succeed())
		Expect(f.server.Rename(guid, "app-4-venerable")).To(Succeed())
		app, err := f.cf.App(f.ctx, guid)
		Expect(err).NotTo(HaveOccurred())
		Expect(app.State).To(Equal("STOPPED"))
		Expect(app.Started()).To(BeFalse())
		Expect(app.Instances()).To(Equal(5))
		Expect(app.Name).To(Equal("app-4-venerable"))
	})

	It("gives 0 instances to an app without a web process", func() {
		guid := fakecf.GUID("app", 5)
		Expect(f.server.RemoveProcess(guid, "web")).To(Succeed())
		Expect(f.server.SetProcess(guid, "worker", 3)).To(Succeed())
		app, err := f.cf.App(f.ctx, guid)
		Expect(err).NotTo(HaveOccurred())
		Expect(app.Instances()).To(Equal(0))
	})

	Context("with routes of every kind", func() {
		var guid string

		JustBeforeEach(func() {
			guid = fakecf.GUID("app", 6)
			other := fakecf.GUID("app", 7)
			internal := f.server.AddDomain(fakecf.Domain{Name: "apps.internal", Internal: true})
			tcp := f.server.AddDomain(fakecf.Domain{Name: "tcp.example.com", TCP: true})
			Expect(f.server.RemoveRoute(fakecf.GUID("route", 6))).To(Succeed())
			t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			domain := f.pop.Domain.GUID
			routes := []fakecf.Route{
				// Added out of order: the client sorts by created_at, then guid.
				{GUID: "00000000-0000-4000-8000-000000000005", Host: "newest", DomainGUID: domain, CreatedAt: t0.Add(5 * time.Hour),
					Destinations: []fakecf.Destination{{AppGUID: guid}}},
				{GUID: "00000000-0000-4000-8000-000000000002", Host: "same-time-b", DomainGUID: domain, CreatedAt: t0.Add(time.Hour),
					Destinations: []fakecf.Destination{{AppGUID: guid}}},
				{GUID: "00000000-0000-4000-8000-000000000001", Host: "same-time-a", DomainGUID: domain, Path: "/x", CreatedAt: t0.Add(time.Hour),
					Destinations: []fakecf.Destination{{AppGUID: guid}}},
				{GUID: "00000000-0000-4000-8000-000000000003", Host: "c2c", DomainGUID: internal.GUID, CreatedAt: t0,
					Destinations: []fakecf.Destination{{AppGUID: guid}}},
				{GUID: "00000000-0000-4000-8000-000000000004", DomainGUID: tcp.GUID, Protocol: fakecf.TCP, Port: 1024, CreatedAt: t0.Add(2 * time.Hour),
					Destinations: []fakecf.Destination{{AppGUID: guid}}},
				{GUID: "00000000-0000-4000-8000-000000000006", Host: "shared", DomainGUID: domain, CreatedAt: t0.Add(3 * time.Hour),
					Destinations: []fakecf.Destination{{AppGUID: other}, {AppGUID: guid, Port: 9090}, {AppGUID: guid}, {AppGUID: guid, Port: 9090},
						{AppGUID: guid, ProcessType: "worker", Port: 7070}}},
				{GUID: "00000000-0000-4000-8000-000000000007", Host: "worker-only", DomainGUID: domain, CreatedAt: t0,
					Destinations: []fakecf.Destination{{AppGUID: guid, ProcessType: "worker"}}},
				{GUID: "00000000-0000-4000-8000-000000000008", Host: "other-app", DomainGUID: domain, CreatedAt: t0,
					Destinations: []fakecf.Destination{{AppGUID: other}}, SpaceGUID: f.pop.Apps[6].SpaceGUID},
			}
			for _, r := range routes {
				_, err := f.server.AddRoute(r)
				Expect(err).NotTo(HaveOccurred())
			}
		})

		It("keeps routes to the app's web process, oldest first, with domain, protocol and port, once per port", func() {
			app, err := f.cf.App(f.ctx, guid)
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
			one, err := f.cf.App(f.ctx, guid)
			Expect(err).NotTo(HaveOccurred())
			many, err := f.cf.Apps(f.ctx, []string{guid})
			Expect(err).NotTo(HaveOccurred())
			Expect(many).To(Equal(map[string]targets.App{guid: one}))
		})
	})

	Context("when CF does not show the app", func() {
		It("answers ErrAppNotVisible for an unknown app", func() {
			_, err := f.cf.App(f.ctx, fakecf.GUID("app", 9999))
			Expect(err).To(MatchError(cfapi.ErrAppNotVisible))
			Expect(errors.Is(err, cfapi.ErrUnavailable)).To(BeFalse())
		})

		It("answers ErrAppNotVisible for an app outside the user's spaces", func() {
			f.server.RestrictToSpaces(f.pop.Spaces[0].GUID)
			_, err := f.cf.App(f.ctx, fakecf.GUID("app", 1))
			Expect(err).To(MatchError(cfapi.ErrAppNotVisible))
			_, err = f.cf.App(f.ctx, fakecf.GUID("app", 4))
			Expect(err).NotTo(HaveOccurred())
		})

		It("answers ErrAppNotVisible for a 403", func() {
			f.server.InjectFault(fakecf.Fault{Path: "/v3/apps/", Status: http.StatusForbidden})
			_, err := f.cf.App(f.ctx, fakecf.GUID("app", 1))
			Expect(err).To(MatchError(cfapi.ErrAppNotVisible))
		})

		It("refuses what is not a GUID without asking CF", func() {
			f.server.ResetCounts()
			_, err := f.cf.App(f.ctx, "../apps")
			Expect(err).To(MatchError(cfapi.ErrAppNotVisible))
			Expect(f.server.Requests()).To(Equal(0))
		})
	})
})

var _ = Describe("Apps", func() {
	f := useFakeCF()

	guids := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, fakecf.GUID("app", i))
		}
		return out
	}

	It("describes each app as App does, leaving out unknown guids and non-GUIDs", func() {
		asked := append(guids(0, 5), fakecf.GUID("app", 9999), "not-a-guid", fakecf.GUID("app", 1))
		apps, err := f.cf.Apps(f.ctx, asked)
		Expect(err).NotTo(HaveOccurred())
		Expect(apps).To(HaveLen(5))
		for _, g := range guids(0, 5) {
			one, err := f.cf.App(f.ctx, g)
			Expect(err).NotTo(HaveOccurred())
			Expect(apps).To(HaveKeyWithValue(g, one))
		}
	})

	It("asks nothing for no guids", func() {
		f.server.ResetCounts()
		apps, err := f.cf.Apps(f.ctx, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(apps).To(BeEmpty())
		Expect(f.server.Requests()).To(Equal(0))
	})

	It("leaves out apps CF does not show", func() {
		f.server.RestrictToSpaces(f.pop.Spaces[1].GUID)
		apps, err := f.cf.Apps(f.ctx, guids(0, 8))
		Expect(err).NotTo(HaveOccurred())
		Expect(apps).To(HaveLen(2))
		Expect(apps).To(HaveKey(fakecf.GUID("app", 1)))
		Expect(apps).To(HaveKey(fakecf.GUID("app", 5)))
	})

	It("fails without a map when one listing fails", func() {
		f.server.InjectFault(fakecf.Fault{Path: "/v3/routes", Status: http.StatusServiceUnavailable})
		apps, err := f.cf.Apps(f.ctx, guids(0, 8))
		Expect(err).To(MatchError(cfapi.ErrUnavailable))
		Expect(apps).To(BeNil())
	})

	// CC pages by offset, so a listing that changes between two page
	// reads can show an app on both pages. Describing an app drops its
	// processes and routes, so that a second description would have
	// neither: here the fake's one page of apps is served as two, the
	// second repeating app 1 under a new name.
	It("describes an app listed twice once, as its first copy says, with its processes and routes", func() {
		guid := fakecf.GUID("app", 1)
		var copied atomic.Pointer[json.RawMessage]
		var secondPages atomic.Int32
		f.cfg.API = tampered(f.server, tamper{edit: func(r *http.Request, body []byte) []byte {
			if r.URL.Path != "/v3/apps" {
				return body
			}
			page := r.URL.Query().Get("page")
			return editPage(body, func(p map[string]json.RawMessage) {
				var pagination map[string]json.RawMessage
				Expect(json.Unmarshal(p["pagination"], &pagination)).To(Succeed())
				var total int
				Expect(json.Unmarshal(pagination["total_results"], &total)).To(Succeed())
				pagination["total_results"], _ = json.Marshal(total + 1)
				pagination["total_pages"] = json.RawMessage("2")
				var resources []json.RawMessage
				Expect(json.Unmarshal(p["resources"], &resources)).To(Succeed())
				switch page {
				case "1":
					next := *r.URL
					q := next.Query()
					q.Set("page", "2")
					next.RawQuery = q.Encode()
					pagination["next"], _ = json.Marshal(map[string]string{"href": "http://" + r.Host + next.String()})
					for _, raw := range resources {
						var app map[string]json.RawMessage
						Expect(json.Unmarshal(raw, &app)).To(Succeed())
						if string(app["guid"]) == `"`+guid+`"` {
							// Renamed between the page reads: the second
							// copy is the newer, and still not the one kept.
							app["name"] = json.RawMessage(`"app-1-renamed"`)
							again, err := json.Marshal(app)
							Expect(err).NotTo(HaveOccurred())
							copied.Store((*json.RawMessage)(&again))
						}
					}
				case "2":
					secondPages.Add(1)
					again := copied.Load()
					Expect(again).NotTo(BeNil(), "page 2 read before page 1")
					resources = append(resources, *again)
				}
				p["pagination"], _ = json.Marshal(pagination)
				p["resources"], _ = json.Marshal(resources)
			})
		}})
		var err error
		f.cf, err = cfapi.New(f.ctx, f.cfg)
		Expect(err).NotTo(HaveOccurred())

		apps, err := f.cf.Apps(f.ctx, guids(0, 3))
		Expect(err).NotTo(HaveOccurred())
		Expect(secondPages.Load()).To(BeEquivalentTo(1), "the apps were listed in two pages")
		Expect(apps).To(HaveLen(3))
		one, err := f.cf.App(f.ctx, guid)
		Expect(err).NotTo(HaveOccurred())
		Expect(one.Processes).NotTo(BeEmpty())
		Expect(one.Routes).NotTo(BeEmpty())
		Expect(apps[guid]).To(Equal(one), "the first copy wins")
		Expect(apps[guid].Name).To(Equal("app-1"))
	})

	Context("with 250 guids", func() {
		BeforeEach(func() {
			f.fleet.Apps = 300
		})

		It("filters by guid in batches whose request lines stay under the limit", func() {
			f.server.ResetCounts()
			apps, err := f.cf.Apps(f.ctx, guids(0, 250))
			Expect(err).NotTo(HaveOccurred())
			Expect(apps).To(HaveLen(250))
			Expect(f.server.APIRequests()).To(Equal(9), "3 batches of apps, processes and routes")
			for _, line := range f.server.RequestLog() {
				Expect(len(line)).To(BeNumerically("<", fakecf.MaxRequestLine))
				Expect(line).To(Or(ContainSubstring("guids="), HavePrefix("POST /oauth/token")))
			}
		})
	})
})
