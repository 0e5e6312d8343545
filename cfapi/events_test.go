package cfapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
)

// ccLists is a small Cloud Controller: the API root, a UAA token endpoint
// and listings of resources it is given, paged as CC pages them, in CC's
// shapes. It records the query of every listing request.
type ccLists struct {
	server *httptest.Server
	now    time.Time

	mu        sync.Mutex
	resources map[string][]map[string]any // by path
	pageSize  int
	status    int // answered to every listing when not 0
	// truncate drops the last resource of every page while still counting
	// it in total_results.
	truncate bool
	queries  map[string][]url.Values
}

func newCCLists() *ccLists {
	cc := &ccLists{resources: map[string][]map[string]any{}, queries: map[string][]url.Values{}, pageSize: 5000,
		now: time.Date(2026, 12, 5, 14, 0, 7, 0, time.UTC)}
	cc.server = httptest.NewServer(http.HandlerFunc(cc.serve))
	DeferCleanup(cc.server.Close)
	return cc
}

func (cc *ccLists) set(path string, resources ...map[string]any) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.resources[path] = resources
}

func (cc *ccLists) with(f func(*ccLists)) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	f(cc)
}

func (cc *ccLists) queriesOf(path string) []url.Values {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.queries[path]
}

func (cc *ccLists) client() *cfapi.Client {
	c, err := cfapi.New(context.Background(), cfapi.Config{
		API: cc.server.URL, ClientID: "monitor", ClientSecret: "secret", PlanID: planCatalogID,
		Registerer: prometheus.NewRegistry(), MaxAttempts: 2,
		RetryBaseDelay: time.Millisecond, RetryMaxDelay: 5 * time.Millisecond, AttemptTimeout: 2 * time.Second,
	})
	Expect(err).NotTo(HaveOccurred())
	return c
}

func (cc *ccLists) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", cc.now.Format(http.TimeFormat))
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/":
		_ = json.NewEncoder(w).Encode(map[string]any{"links": map[string]any{
			"self": map[string]any{"href": cc.server.URL},
			"uaa":  map[string]any{"href": cc.server.URL}, "login": map[string]any{"href": cc.server.URL},
		}})
		return
	case "/oauth/token":
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "token", "token_type": "bearer", "expires_in": 3600})
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.queries[r.URL.Path] = append(cc.queries[r.URL.Path], r.URL.Query())
	all, ok := cc.resources[r.URL.Path]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if cc.status != 0 {
		w.WriteHeader(cc.status)
		_, _ = w.Write([]byte(`{"errors":[{"code":10001,"title":"CF-ServiceUnavailable","detail":"try later"}]}`))
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	from, to := min((page-1)*cc.pageSize, len(all)), min(page*cc.pageSize, len(all))
	resources := all[from:to]
	if cc.truncate && len(resources) > 0 {
		resources = resources[:len(resources)-1]
	}
	var next any
	if to < len(all) {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(page+1))
		next = map[string]any{"href": cc.server.URL + r.URL.Path + "?" + q.Encode()}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"pagination": map[string]any{
			"total_results": len(all), "total_pages": (len(all) + cc.pageSize - 1) / cc.pageSize,
			"first": map[string]any{"href": cc.server.URL + r.URL.Path}, "next": next, "previous": nil,
		},
		"resources": resources,
	})
}

func auditEvent(guid, typ, created, target, process string) map[string]any {
	data := map[string]any{}
	if process != "" {
		data = map[string]any{"process_guid": process, "process_type": "web", "request": map[string]any{"instances": 3}}
	}
	return map[string]any{
		"guid": guid, "created_at": created, "updated_at": created, "type": typ,
		"actor":  map[string]any{"guid": "u", "type": "user", "name": "admin"},
		"target": map[string]any{"guid": target, "type": "app", "name": "my-app"},
		"data":   data, "space": map[string]any{"guid": "s"}, "organization": map[string]any{"guid": "o"},
	}
}

func deployment(guid, app, value, reason string, newProcesses ...string) map[string]any {
	procs := []map[string]any{}
	for _, p := range newProcesses {
		procs = append(procs, map[string]any{"guid": p, "type": "web"})
	}
	return map[string]any{
		"guid": guid, "status": map[string]any{"value": value, "reason": reason}, "strategy": "rolling",
		"new_processes": procs, "relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": app}}},
	}
}

const (
	eventApp     = "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b"
	eventProcess = "00000000-0000-4000-8000-0000000000b2"
)

var _ = Describe("AuditEvents, ActiveDeployments and Now", func() {
	var (
		ctx context.Context
		cc  *ccLists
		cf  *cfapi.Client
	)

	BeforeEach(func() {
		ctx = context.Background()
		cc = newCCLists()
		cf = cc.client()
	})

	Describe("AuditEvents", func() {
		BeforeEach(func() {
			cc.set("/v3/audit_events",
				auditEvent("e1", "audit.app.process.scale", "2026-12-05T14:00:00Z", eventApp, eventProcess),
				auditEvent("e2", "audit.app.stop", "2026-12-05T14:00:00Z", eventApp, ""),
				auditEvent("e3", "audit.app.deployment.create", "2026-12-05T14:00:03Z", eventApp, ""),
			)
		})

		It("asks for the types since a whole second in UTC, oldest first, 5000 a page", func() {
			since := time.Date(2026, 12, 5, 15, 0, 0, 750e6, time.FixedZone("CET", 3600))
			_, err := cf.AuditEvents(ctx, since, []string{"audit.app.stop", "audit.app.process.scale"})
			Expect(err).NotTo(HaveOccurred())
			q := cc.queriesOf("/v3/audit_events")
			Expect(q).To(HaveLen(1))
			Expect(q[0]).To(HaveKeyWithValue("types", []string{"audit.app.stop,audit.app.process.scale"}))
			Expect(q[0]).To(HaveKeyWithValue("created_ats[gte]", []string{"2026-12-05T14:00:00Z"}))
			Expect(q[0]).To(HaveKeyWithValue("order_by", []string{"created_at"}))
			Expect(q[0]).To(HaveKeyWithValue("per_page", []string{"5000"}))
		})

		It("describes each event: guid, type, time, the app and the process of a process event", func() {
			events, err := cf.AuditEvents(ctx, time.Time{}, []string{"audit.app.stop"})
			Expect(err).NotTo(HaveOccurred())
			Expect(events).To(Equal([]cfapi.AuditEvent{
				{GUID: "e1", Type: "audit.app.process.scale", CreatedAt: time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC), TargetGUID: eventApp, ProcessGUID: eventProcess},
				{GUID: "e2", Type: "audit.app.stop", CreatedAt: time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC), TargetGUID: eventApp},
				{GUID: "e3", Type: "audit.app.deployment.create", CreatedAt: time.Date(2026, 12, 5, 14, 0, 3, 0, time.UTC), TargetGUID: eventApp},
			}))
		})

		It("reads every page", func() {
			cc.with(func(cc *ccLists) { cc.pageSize = 2 })
			events, err := cf.AuditEvents(ctx, time.Time{}, []string{"audit.app.stop"})
			Expect(err).NotTo(HaveOccurred())
			Expect(events).To(HaveLen(3))
			Expect(events[2].GUID).To(Equal("e3"))
			Expect(cc.queriesOf("/v3/audit_events")).To(HaveLen(2))
		})

		It("asks nothing for no types", func() {
			events, err := cf.AuditEvents(ctx, time.Time{}, nil)
			Expect(err).NotTo(HaveOccurred())
			Expect(events).To(BeEmpty())
			Expect(cc.queriesOf("/v3/audit_events")).To(BeEmpty())
		})

		DescribeTable("fails, with no events, when the API does",
			func(arrange func(*ccLists)) {
				cc.with(arrange)
				events, err := cf.AuditEvents(ctx, time.Time{}, []string{"audit.app.stop"})
				Expect(err).To(MatchError(cfapi.ErrUnavailable))
				Expect(events).To(BeNil())
			},
			Entry("5xx", func(cc *ccLists) { cc.status = http.StatusServiceUnavailable }),
			Entry("429", func(cc *ccLists) { cc.status = http.StatusTooManyRequests }),
			Entry("a page short of its total", func(cc *ccLists) { cc.truncate = true }),
			Entry("a short page among several", func(cc *ccLists) { cc.truncate, cc.pageSize = true, 2 }),
		)
	})

	Describe("ActiveDeployments", func() {
		BeforeEach(func() {
			cc.set("/v3/deployments",
				deployment("d1", eventApp, "ACTIVE", "DEPLOYING", eventProcess),
				deployment("d2", "00000000-0000-4000-8000-00000000000c", "ACTIVE", "PAUSED", "00000000-0000-4000-8000-00000000000d"),
			)
		})

		It("lists the running deployments with their app, new processes and reason", func() {
			deployments, err := cf.ActiveDeployments(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(deployments).To(Equal([]cfapi.Deployment{
				{GUID: "d1", AppGUID: eventApp, NewProcessGUIDs: []string{eventProcess}, Reason: "DEPLOYING"},
				{GUID: "d2", AppGUID: "00000000-0000-4000-8000-00000000000c", NewProcessGUIDs: []string{"00000000-0000-4000-8000-00000000000d"}, Reason: "PAUSED"},
			}))
			q := cc.queriesOf("/v3/deployments")
			Expect(q).To(HaveLen(1))
			Expect(q[0]).To(HaveKeyWithValue("status_values", []string{"ACTIVE"}))
			Expect(q[0]).To(HaveKeyWithValue("per_page", []string{"5000"}))
		})

		It("reads every page and keeps only active deployments, whatever the filter let through", func() {
			cc.set("/v3/deployments",
				deployment("d1", eventApp, "ACTIVE", "DEPLOYING", eventProcess),
				deployment("d2", eventApp, "FINALIZED", "DEPLOYED", eventProcess),
				deployment("d3", eventApp, "ACTIVE", "CANCELING"),
			)
			cc.with(func(cc *ccLists) { cc.pageSize = 1 })
			deployments, err := cf.ActiveDeployments(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(deployments).To(HaveLen(2))
			Expect(deployments[1]).To(Equal(cfapi.Deployment{GUID: "d3", AppGUID: eventApp, Reason: "CANCELING"}))
			Expect(cc.queriesOf("/v3/deployments")).To(HaveLen(3))
		})

		It("fails when the API does", func() {
			cc.with(func(cc *ccLists) { cc.status = http.StatusBadGateway })
			_, err := cf.ActiveDeployments(ctx)
			Expect(errors.Is(err, cfapi.ErrUnavailable)).To(BeTrue())
		})
	})

	Describe("Now", func() {
		BeforeEach(func() {
			cc.set("/v3/audit_events", auditEvent("e1", "audit.app.stop", "2026-12-05T14:00:00Z", eventApp, ""))
		})

		It("is the API's clock, from its Date header", func() {
			now, err := cf.Now(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(now).To(Equal(time.Date(2026, 12, 5, 14, 0, 7, 0, time.UTC)))
			Expect(cc.queriesOf("/v3/audit_events")).To(Equal([]url.Values{{"per_page": {"1"}}}))
		})

		It("fails when the API does", func() {
			cc.with(func(cc *ccLists) { cc.status = http.StatusInternalServerError })
			_, err := cf.Now(ctx)
			Expect(err).To(MatchError(cfapi.ErrUnavailable))
		})
	})
})

var _ = Describe("AuditEvents, ActiveDeployments and Now against the fake CF API", func() {
	var (
		ctx    context.Context
		server *fakecf.Server
		cf     *cfapi.Client
		pop    fakecf.Population
		now    time.Time
		mu     sync.Mutex
	)

	tick := func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(d)
	}

	BeforeEach(func() {
		ctx = context.Background()
		now = time.Date(2026, 12, 5, 14, 0, 0, 250e6, time.UTC)
		server = fakecf.New(fakecf.Options{Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		}})
		DeferCleanup(server.Close)
		var err error
		pop, err = server.Populate(fakecf.Fleet{Orgs: 1, SpacesPerOrg: 1, Apps: 3, Bound: 3, PlanCatalogID: planCatalogID})
		Expect(err).NotTo(HaveOccurred())
		cf, err = cfapi.New(ctx, testCFConfig(server, prometheus.NewRegistry()))
		Expect(err).NotTo(HaveOccurred())
	})

	It("lists the events of tenant actions from a second on, and the deployment that runs", func() {
		app1, app2 := pop.Apps[1].GUID, pop.Apps[2].GUID
		Expect(server.Scale(app1, 3)).To(Succeed())
		tick(2 * time.Second)
		since, err := cf.Now(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(since).To(Equal(time.Date(2026, 12, 5, 14, 0, 2, 0, time.UTC)))
		Expect(server.StopApp(app2)).To(Succeed())
		d, err := server.Deploy(app1, fakecf.Rolling)
		Expect(err).NotTo(HaveOccurred())

		events, err := cf.AuditEvents(ctx, since, []string{"audit.app.stop", "audit.app.process.scale", "audit.app.deployment.create"})
		Expect(err).NotTo(HaveOccurred())
		Expect(events).To(HaveLen(2))
		Expect(events[0]).To(MatchFields(IgnoreExtras, Fields{"Type": Equal("audit.app.stop"), "TargetGUID": Equal(app2)}))
		Expect(events[1]).To(MatchFields(IgnoreExtras, Fields{"Type": Equal("audit.app.deployment.create"), "TargetGUID": Equal(app1)}))
		Expect(events[0].CreatedAt).To(Equal(since))

		deployments, err := cf.ActiveDeployments(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(deployments).To(Equal([]cfapi.Deployment{{GUID: d.GUID, AppGUID: app1, NewProcessGUIDs: []string{d.NewProcessGUID}, Reason: "DEPLOYING"}}))

		_, err = server.FinishDeployment(app1)
		Expect(err).NotTo(HaveOccurred())
		Expect(cf.ActiveDeployments(ctx)).To(BeEmpty())
	})

	It("names the process of a process event", func() {
		app := pop.Apps[0].GUID
		Expect(server.Scale(app, 4)).To(Succeed())
		events, err := cf.AuditEvents(ctx, time.Time{}, []string{"audit.app.process.scale"})
		Expect(err).NotTo(HaveOccurred())
		Expect(events).To(HaveLen(1))
		procs, err := server.WebProcesses(app)
		Expect(err).NotTo(HaveOccurred())
		Expect(events[0].ProcessGUID).To(Equal(procs[0].GUID))
	})
})

var _ = Describe("AppsBindings", func() {
	var (
		ctx    context.Context
		server *fakecf.Server
		cf     *cfapi.Client
		pop    fakecf.Population
	)

	BeforeEach(func() {
		ctx = context.Background()
		server = fakecf.New(fakecf.Options{})
		DeferCleanup(server.Close)
		var err error
		pop, err = server.Populate(fakecf.Fleet{Orgs: 1, SpacesPerOrg: 2, Apps: 260, Bound: 250, PlanCatalogID: planCatalogID})
		Expect(err).NotTo(HaveOccurred())
		cf, err = cfapi.New(ctx, testCFConfig(server, prometheus.NewRegistry()))
		Expect(err).NotTo(HaveOccurred())
		_, err = cf.PlanBindings(ctx) // the plan's guid is cached from here
		Expect(err).NotTo(HaveOccurred())
	})

	It("lists the bindings of the given apps only, 100 apps a request", func() {
		var apps []string
		for _, a := range pop.Apps[100:255] { // 150 bound, 5 not
			apps = append(apps, a.GUID)
		}
		apps = append(apps, "not-a-guid", apps[0])
		server.ResetCounts()
		bindings, err := cf.AppsBindings(ctx, apps)
		Expect(err).NotTo(HaveOccurred())
		Expect(bindings).To(HaveLen(150))
		var bound []string
		for _, b := range bindings {
			bound = append(bound, b.AppGUID)
		}
		Expect(bound).To(ConsistOf(apps[:150]))
		Expect(server.RequestsTo("/v3/service_credential_bindings")).To(Equal(2))
		Expect(server.Requests()).To(Equal(2))
	})

	It("asks nothing for no apps", func() {
		server.ResetCounts()
		bindings, err := cf.AppsBindings(ctx, []string{"not-a-guid"})
		Expect(err).NotTo(HaveOccurred())
		Expect(bindings).To(BeEmpty())
		Expect(server.Requests()).To(BeZero())
	})
})
