package fakecf_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
)

var _ = Describe("audit events", func() {
	var w *world

	BeforeEach(func() {
		w = newWorld()
	})

	// events lists the app's events, oldest first.
	events := func() []map[string]any {
		all, _ := w.api.all("/v3/audit_events?target_guids=" + w.app.GUID)
		return all
	}

	DescribeTable("the events each action records",
		func(act func(w *world) error, want ...string) {
			Expect(act(w)).To(Succeed())
			got := events()
			types := make([]string, len(got))
			for i, e := range got {
				types[i] = e["type"].(string)
				Expect(field(e, "target", "guid")).To(Equal(w.app.GUID))
				Expect(field(e, "target", "type")).To(Equal("app"))
				Expect(field(e, "space", "guid")).To(Equal(w.space.GUID))
				Expect(field(e, "actor", "type")).To(Equal("user"))
			}
			Expect(types).To(Equal(want))
		},
		Entry("scale", func(w *world) error { return w.server.Scale(w.app.GUID, 5) }, fakecf.EventProcessScale),
		Entry("stop", func(w *world) error { return w.server.StopApp(w.app.GUID) }, fakecf.EventStop),
		Entry("start", func(w *world) error { return w.server.StartApp(w.app.GUID) }, fakecf.EventStart),
		Entry("restart", func(w *world) error { return w.server.RestartApp(w.app.GUID) }, fakecf.EventRestart),
		Entry("rename", func(w *world) error { return w.server.Rename(w.app.GUID, "shop-venerable") }, fakecf.EventUpdate),
		Entry("map a route", func(w *world) error {
			r, err := w.server.AddRoute(fakecf.Route{Host: "other", DomainGUID: w.domain.GUID, SpaceGUID: w.space.GUID})
			if err != nil {
				return err
			}
			return w.server.MapRoute(r.GUID, w.app.GUID, "web")
		}, fakecf.EventMapRoute),
		Entry("unmap a route", func(w *world) error { return w.server.UnmapRoute(w.route.GUID, w.app.GUID) }, fakecf.EventUnmapRoute),
		Entry("delete the app", func(w *world) error { return w.server.DeleteApp(w.app.GUID) },
			fakecf.EventUnmapRoute, fakecf.EventProcessDelete, fakecf.EventDeleteRequest),
		Entry("add a worker process", func(w *world) error { return w.server.SetProcess(w.app.GUID, "worker", 1) }, fakecf.EventProcessCreate),
		Entry("remove the web process", func(w *world) error { return w.server.RemoveProcess(w.app.GUID, "web") }, fakecf.EventProcessDelete),
		Entry("deploy", func(w *world) error {
			_, err := w.server.Deploy(w.app.GUID, fakecf.Rolling)
			return err
		}, fakecf.EventDeploymentCreate),
		Entry("deploy, step and finish", func(w *world) error {
			if _, err := w.server.Deploy(w.app.GUID, fakecf.Rolling); err != nil {
				return err
			}
			if _, err := w.server.StepDeployment(w.app.GUID); err != nil {
				return err
			}
			_, err := w.server.FinishDeployment(w.app.GUID)
			return err
		}, fakecf.EventDeploymentCreate),
		Entry("deploy a canary and continue it", func(w *world) error {
			if _, err := w.server.Deploy(w.app.GUID, fakecf.Canary); err != nil {
				return err
			}
			if _, err := w.server.StepDeployment(w.app.GUID); err != nil {
				return err
			}
			_, err := w.server.ContinueDeployment(w.app.GUID)
			return err
		}, fakecf.EventDeploymentCreate, fakecf.EventDeploymentContinue),
		Entry("deploy and cancel", func(w *world) error {
			if _, err := w.server.Deploy(w.app.GUID, fakecf.Rolling); err != nil {
				return err
			}
			if _, err := w.server.CancelDeployment(w.app.GUID); err != nil {
				return err
			}
			_, err := w.server.FinishDeployment(w.app.GUID)
			return err
		}, fakecf.EventDeploymentCreate, fakecf.EventDeploymentCancel),
		Entry("seeding apps and routes", func(w *world) error {
			_, err := w.server.AddRoute(fakecf.Route{Host: "more", DomainGUID: w.domain.GUID, Destinations: []fakecf.Destination{{AppGUID: w.app.GUID}}})
			return err
		}),
	)

	It("names the process of a process event in data.process_guid, and the app in target", func() {
		d, err := w.server.Deploy(w.app.GUID, fakecf.Rolling)
		Expect(err).NotTo(HaveOccurred())
		_, err = w.server.FinishDeployment(w.app.GUID)
		Expect(err).NotTo(HaveOccurred())
		Expect(w.server.Scale(w.app.GUID, 4)).To(Succeed())
		e := events()[1]
		Expect(e["type"]).To(Equal(fakecf.EventProcessScale))
		Expect(e["data"]).To(Equal(map[string]any{
			"process_guid": d.NewProcessGUID, "process_type": "web", "request": map[string]any{"instances": 4.0},
		}))
		Expect(field(e, "target", "guid")).To(Equal(w.app.GUID))
		Expect(field(e, "target", "name")).To(Equal("shop"))
		Expect(field(events()[0], "data", "deployment_guid")).To(Equal(d.GUID))
		Expect(field(events()[0], "data", "strategy")).To(Equal("rolling"))
	})

	It("records a route's deletion against the route, not its apps", func() {
		Expect(w.server.RemoveRoute(w.route.GUID)).To(Succeed())
		Expect(events()).To(BeEmpty())
		l := w.api.list("/v3/audit_events?types=audit.route.delete-request")
		Expect(l.Resources).To(HaveLen(1))
		Expect(l.Resources[0]["target"]).To(Equal(map[string]any{"guid": w.route.GUID, "type": "route", "name": "shop"}))
	})

	Describe("GET /v3/audit_events", func() {
		var other fakecf.App

		// Events: stop and start of shop at 14:00:00.25 and .75, a scale of
		// other at 14:00:01.5, a stop of other at 14:00:03.
		BeforeEach(func() {
			var err error
			other, err = w.server.AddApp(fakecf.App{Name: "other", SpaceGUID: w.space.GUID, Instances: 1})
			Expect(err).NotTo(HaveOccurred())
			Expect(w.server.StopApp(w.app.GUID)).To(Succeed())
			w.clock.Advance(500 * time.Millisecond)
			Expect(w.server.StartApp(w.app.GUID)).To(Succeed())
			w.clock.Advance(750 * time.Millisecond)
			Expect(w.server.Scale(other.GUID, 2)).To(Succeed())
			w.clock.Advance(1500 * time.Millisecond)
			Expect(w.server.StopApp(other.GUID)).To(Succeed())
		})

		typesOf := func(target string) []string {
			var out []string
			for _, e := range w.api.list(target).Resources {
				out = append(out, e["type"].(string)+"@"+e["created_at"].(string))
			}
			return out
		}

		It("shows whole-second UTC times, oldest first, events of one second in the order recorded", func() {
			Expect(typesOf("/v3/audit_events")).To(Equal([]string{
				"audit.app.stop@2026-12-05T14:00:00Z", "audit.app.start@2026-12-05T14:00:00Z",
				"audit.app.process.scale@2026-12-05T14:00:01Z", "audit.app.stop@2026-12-05T14:00:03Z",
			}))
			e := w.api.list("/v3/audit_events").Resources[0]
			Expect(e["updated_at"]).To(Equal(e["created_at"]))
			Expect(field(e, "organization", "guid")).NotTo(BeEmpty())
			resp, body := w.api.get("/v3/audit_events/" + e["guid"].(string))
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			var shown map[string]any
			Expect(json.Unmarshal(body, &shown)).To(Succeed())
			Expect(shown).To(Equal(e))
		})

		It("orders newest first with order_by=-created_at", func() {
			Expect(typesOf("/v3/audit_events?order_by=-created_at")).To(Equal([]string{
				"audit.app.stop@2026-12-05T14:00:03Z", "audit.app.process.scale@2026-12-05T14:00:01Z",
				"audit.app.start@2026-12-05T14:00:00Z", "audit.app.stop@2026-12-05T14:00:00Z",
			}))
		})

		It("filters by types and target guids, comma-separated values OR'd", func() {
			Expect(typesOf("/v3/audit_events?types=audit.app.stop")).To(HaveLen(2))
			Expect(typesOf("/v3/audit_events?types=audit.app.stop,audit.app.process.scale&target_guids=" + other.GUID)).To(Equal([]string{
				"audit.app.process.scale@2026-12-05T14:00:01Z", "audit.app.stop@2026-12-05T14:00:03Z",
			}))
			Expect(typesOf("/v3/audit_events?target_guids=" + w.app.GUID + "," + other.GUID)).To(HaveLen(4))
		})

		DescribeTable("filters by created_at as Cloud Controller does, to the second",
			func(filter string, want int) {
				Expect(typesOf("/v3/audit_events?" + filter)).To(HaveLen(want))
			},
			Entry("gte takes the whole second named", "created_ats[gte]=2026-12-05T14:00:00Z", 4),
			Entry("gt skips the whole second named", "created_ats[gt]=2026-12-05T14:00:00Z", 2),
			Entry("gt of a second with no events", "created_ats[gt]=2026-12-05T14:00:02Z", 1),
			Entry("lt", "created_ats[lt]=2026-12-05T14:00:01Z", 2),
			Entry("lte takes the whole second named", "created_ats[lte]=2026-12-05T14:00:01Z", 3),
			Entry("gte and lt together", "created_ats[gte]=2026-12-05T14:00:01Z&created_ats[lt]=2026-12-05T14:00:03Z", 1),
			Entry("equality, any of several seconds", "created_ats=2026-12-05T14:00:00Z,2026-12-05T14:00:03Z", 3),
			Entry("after every event", "created_ats[gte]=2026-12-05T14:00:04Z", 0),
		)

		DescribeTable("refuses invalid queries with 400",
			func(query, detail string) {
				resp, body := w.api.get("/v3/audit_events?" + query)
				Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
				var e cfErrors
				Expect(json.Unmarshal(body, &e)).To(Succeed())
				Expect(e.Errors[0].Title).To(Equal("CF-BadQueryParameter"))
				Expect(e.Errors[0].Detail).To(ContainSubstring(detail))
			},
			Entry("a timestamp with a zone offset", "created_ats[gte]=2026-12-05T14:00:00%2B01:00", "Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'"),
			Entry("a timestamp with fractional seconds", "created_ats[gte]=2026-12-05T14:00:00.5Z", "invalid timestamp format"),
			Entry("an unknown operator", "created_ats[ne]=2026-12-05T14:00:00Z", "Invalid relational operator: 'ne'"),
			Entry("two values with an operator", "created_ats[gt]=2026-12-05T14:00:00Z,2026-12-05T14:00:01Z", "only accepts one value"),
			Entry("an unknown order", "order_by=type", "Order by can only be: 'created_at', 'updated_at'"),
			Entry("per_page above 5000", "per_page=5001", "Per page must be between 1 and 5000"),
			Entry("an unknown filter", "target_guid=x", "Unknown query parameter(s): 'target_guid'"),
		)

		It("pages through next.href with the filters kept", func() {
			for range 7 {
				Expect(w.server.Scale(other.GUID, 3)).To(Succeed())
			}
			all, pages := w.api.all("/v3/audit_events?per_page=3&created_ats[gte]=2026-12-05T14:00:01Z&order_by=created_at")
			Expect(pages).To(Equal(3))
			Expect(all).To(HaveLen(9))
			seen := map[string]bool{}
			for _, e := range all {
				Expect(seen[e["guid"].(string)]).To(BeFalse())
				seen[e["guid"].(string)] = true
				Expect(e["created_at"].(string) >= "2026-12-05T14:00:01Z").To(BeTrue())
			}
			l := w.api.list("/v3/audit_events?per_page=5000")
			Expect(l.Pagination.TotalResults).To(Equal(11))
			Expect(l.Pagination.Next).To(BeNil())
		})

		It("shows only events in the user's spaces", func() {
			guid := w.api.list("/v3/audit_events").Resources[0]["guid"].(string)
			w.server.RestrictToSpaces()
			Expect(w.api.list("/v3/audit_events").Resources).To(BeEmpty())
			resp, _ := w.api.get("/v3/audit_events/" + guid)
			Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
		})
	})

	It("dates API answers by the fake's clock", func() {
		resp, _ := w.api.get("/v3/apps")
		Expect(resp.Header.Get("Date")).To(Equal("Sat, 05 Dec 2026 14:00:00 GMT"))
		w.clock.Advance(time.Hour)
		resp, _ = w.api.get("/v3/audit_events")
		date, err := http.ParseTime(resp.Header.Get("Date"))
		Expect(err).NotTo(HaveOccurred())
		Expect(date).To(Equal(time.Date(2026, 12, 5, 15, 0, 0, 0, time.UTC)))
		Expect(strings.HasSuffix(resp.Header.Get("Date"), "GMT")).To(BeTrue())
	})
})
