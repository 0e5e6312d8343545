package fakecf_test

import (
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
)

// world is a fake with a controllable clock and one app, "shop", with three
// web instances and a route.
type world struct {
	server *fakecf.Server
	clock  *clock
	api    *apiClient
	space  fakecf.Space
	domain fakecf.Domain
	app    fakecf.App
	route  fakecf.Route
}

func newWorld() *world {
	w := &world{clock: newClock(time.Date(2026, 12, 5, 14, 0, 0, 250e6, time.UTC))}
	w.server = fakecf.New(fakecf.Options{Now: w.clock.Now})
	DeferCleanup(w.server.Close)
	org := w.server.AddOrg(fakecf.Org{Name: "org"})
	var err error
	w.space, err = w.server.AddSpace(fakecf.Space{Name: "space", OrgGUID: org.GUID})
	Expect(err).NotTo(HaveOccurred())
	w.domain = w.server.AddDomain(fakecf.Domain{Name: "apps.example.com"})
	w.app, err = w.server.AddApp(fakecf.App{Name: "shop", SpaceGUID: w.space.GUID, Instances: 3})
	Expect(err).NotTo(HaveOccurred())
	w.route, err = w.server.AddRoute(fakecf.Route{Host: "shop", DomainGUID: w.domain.GUID, Destinations: []fakecf.Destination{{AppGUID: w.app.GUID}}})
	Expect(err).NotTo(HaveOccurred())
	w.api = newAPIClient(w.server)
	return w
}

// eventTypes lists the types of the app's audit events, oldest first.
func (w *world) eventTypes() []string {
	var types []string
	events, _ := w.api.all("/v3/audit_events?per_page=5000&target_guids=" + w.app.GUID)
	for _, e := range events {
		types = append(types, e["type"].(string))
	}
	return types
}

// deployments lists the app's deployments with these status values.
func (w *world) deployments(statusValues string) []map[string]any {
	return w.api.list("/v3/deployments?app_guids=" + w.app.GUID + "&status_values=" + statusValues).Resources
}

func status(d map[string]any) string {
	return field(d, "status", "value").(string) + "/" + field(d, "status", "reason").(string)
}

var _ = Describe("deployments", func() {
	var (
		w   *world
		old string // the app's web process before the deployment
	)

	BeforeEach(func() {
		w = newWorld()
		old = w.app.GUID
	})

	Context("when a rolling deployment runs step by step", func() {
		var d fakecf.Deployment

		JustBeforeEach(func() {
			var err error
			d, err = w.server.Deploy(w.app.GUID, fakecf.Rolling)
			Expect(err).NotTo(HaveOccurred())
		})

		It("lists both web processes at each step, then only the new one", func() {
			nw := d.NewProcessGUID
			Expect(nw).NotTo(BeEmpty())
			Expect(nw).NotTo(Equal(old))
			Expect(w.api.webProcesses(w.app.GUID)).To(Equal([]string{old + "=3", nw + "=1"}))

			steps := [][]string{
				{old + "=2", nw + "=2"},
				{old + "=1", nw + "=3"},
				{nw + "=3"},
			}
			for i, want := range steps {
				_, err := w.server.StepDeployment(w.app.GUID)
				Expect(err).NotTo(HaveOccurred())
				Expect(w.api.webProcesses(w.app.GUID)).To(Equal(want), "after step %d", i+1)
			}
		})

		It("shows the deployment ACTIVE (DEPLOYING) with its new process, then FINALIZED (DEPLOYED)", func() {
			active := w.deployments("ACTIVE")
			Expect(active).To(HaveLen(1))
			Expect(active[0]["guid"]).To(Equal(d.GUID))
			Expect(status(active[0])).To(Equal("ACTIVE/DEPLOYING"))
			Expect(active[0]["strategy"]).To(Equal("rolling"))
			Expect(active[0]["new_processes"]).To(Equal([]any{map[string]any{"guid": d.NewProcessGUID, "type": "web"}}))
			Expect(field(active[0], "relationships", "app", "data", "guid")).To(Equal(w.app.GUID))
			Expect(active[0]["created_at"]).To(Equal("2026-12-05T14:00:00Z"))
			Expect(active[0]).NotTo(HaveKey("state"), "Cloud Controller no longer shows it")

			w.clock.Advance(time.Minute)
			_, err := w.server.FinishDeployment(w.app.GUID)
			Expect(err).NotTo(HaveOccurred())
			Expect(w.deployments("ACTIVE")).To(BeEmpty())
			finalized := w.deployments("FINALIZED")
			Expect(finalized).To(HaveLen(1))
			Expect(status(finalized[0])).To(Equal("FINALIZED/DEPLOYED"))
			Expect(finalized[0]["updated_at"]).To(Equal("2026-12-05T14:01:00Z"))
			Expect(w.api.webProcesses(w.app.GUID)).To(Equal([]string{d.NewProcessGUID + "=3"}))
		})

		It("records the deployment's creation and nothing for its steps or its end", func() {
			Expect(w.eventTypes()).To(Equal([]string{fakecf.EventDeploymentCreate}))
			_, err := w.server.StepDeployment(w.app.GUID)
			Expect(err).NotTo(HaveOccurred())
			_, err = w.server.FinishDeployment(w.app.GUID)
			Expect(err).NotTo(HaveOccurred())
			Expect(w.eventTypes()).To(Equal([]string{fakecf.EventDeploymentCreate}))
		})

		It("answers the newest web process for the app's web process", func() {
			resp, body := w.api.get("/v3/apps/" + w.app.GUID + "/processes/web")
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			var p map[string]any
			Expect(json.Unmarshal(body, &p)).To(Succeed())
			Expect(p["guid"]).To(Equal(d.NewProcessGUID))
		})

		It("refuses to scale the web process while it runs, as Cloud Controller does", func() {
			Expect(w.server.Scale(w.app.GUID, 5)).To(MatchError(fakecf.ErrInvalidState))
		})

		It("supersedes the running deployment when another starts", func() {
			_, err := w.server.StepDeployment(w.app.GUID)
			Expect(err).NotTo(HaveOccurred())
			second, err := w.server.Deploy(w.app.GUID, fakecf.Rolling)
			Expect(err).NotTo(HaveOccurred())
			Expect(w.deployments("ACTIVE")).To(ConsistOf(HaveKeyWithValue("guid", second.GUID)))
			Expect(status(w.deployments("FINALIZED")[0])).To(Equal("FINALIZED/SUPERSEDED"))
			Expect(w.api.webProcesses(w.app.GUID)).To(Equal([]string{old + "=2", d.NewProcessGUID + "=2", second.NewProcessGUID + "=1"}))

			_, err = w.server.FinishDeployment(w.app.GUID)
			Expect(err).NotTo(HaveOccurred())
			Expect(w.api.webProcesses(w.app.GUID)).To(Equal([]string{second.NewProcessGUID + "=3"}))
		})

		It("is canceled: the new process goes and the old one gets its instances back", func() {
			_, err := w.server.StepDeployment(w.app.GUID)
			Expect(err).NotTo(HaveOccurred())
			canceled, err := w.server.CancelDeployment(w.app.GUID)
			Expect(err).NotTo(HaveOccurred())
			Expect(canceled.StatusReason).To(Equal(fakecf.ReasonCanceling))
			Expect(status(w.deployments("ACTIVE")[0])).To(Equal("ACTIVE/CANCELING"))
			Expect(w.eventTypes()).To(Equal([]string{fakecf.EventDeploymentCreate, fakecf.EventDeploymentCancel}))

			_, err = w.server.StepDeployment(w.app.GUID)
			Expect(err).NotTo(HaveOccurred())
			Expect(w.deployments("ACTIVE")).To(BeEmpty())
			Expect(status(w.deployments("FINALIZED")[0])).To(Equal("FINALIZED/CANCELED"))
			Expect(w.api.webProcesses(w.app.GUID)).To(Equal([]string{old + "=3"}))
			Expect(w.eventTypes()).To(HaveLen(2), "the updater's tick records nothing")
		})
	})

	Context("when a canary deployment runs", func() {
		var d fakecf.Deployment

		BeforeEach(func() {
			var err error
			d, err = w.server.Deploy(w.app.GUID, fakecf.Canary)
			Expect(err).NotTo(HaveOccurred())
		})

		It("pauses after its first instance until continued", func() {
			Expect(status(w.deployments("ACTIVE")[0])).To(Equal("ACTIVE/DEPLOYING"))
			for range 2 {
				got, err := w.server.StepDeployment(w.app.GUID)
				Expect(err).NotTo(HaveOccurred())
				Expect(got.StatusReason).To(Equal(fakecf.ReasonPaused))
				Expect(status(w.deployments("ACTIVE")[0])).To(Equal("ACTIVE/PAUSED"))
				Expect(w.api.webProcesses(w.app.GUID)).To(Equal([]string{old + "=3", d.NewProcessGUID + "=1"}))
			}
			_, err := w.server.FinishDeployment(w.app.GUID)
			Expect(err).To(MatchError(fakecf.ErrInvalidState))

			_, err = w.server.ContinueDeployment(w.app.GUID)
			Expect(err).NotTo(HaveOccurred())
			Expect(status(w.deployments("ACTIVE")[0])).To(Equal("ACTIVE/DEPLOYING"))
			_, err = w.server.StepDeployment(w.app.GUID)
			Expect(err).NotTo(HaveOccurred())
			Expect(w.api.webProcesses(w.app.GUID)).To(Equal([]string{old + "=2", d.NewProcessGUID + "=2"}))
			_, err = w.server.FinishDeployment(w.app.GUID)
			Expect(err).NotTo(HaveOccurred())
			Expect(w.api.webProcesses(w.app.GUID)).To(Equal([]string{d.NewProcessGUID + "=3"}))
			Expect(w.eventTypes()).To(Equal([]string{fakecf.EventDeploymentCreate, fakecf.EventDeploymentContinue}))
		})

		It("refuses to continue before it pauses", func() {
			_, err := w.server.ContinueDeployment(w.app.GUID)
			Expect(err).To(MatchError(fakecf.ErrInvalidState))
		})
	})

	Context("when the app is stopped", func() {
		It("starts the app's process at once and the deployment is over", func() {
			Expect(w.server.StopApp(w.app.GUID)).To(Succeed())
			d, err := w.server.Deploy(w.app.GUID, fakecf.Rolling)
			Expect(err).NotTo(HaveOccurred())
			Expect(d.Active()).To(BeFalse())
			Expect(d.NewProcessGUID).To(BeEmpty())
			Expect(w.api.webProcesses(w.app.GUID)).To(Equal([]string{old + "=3"}))
			Expect(w.api.list("/v3/apps?guids=" + w.app.GUID).Resources[0]).To(HaveKeyWithValue("state", "STARTED"))
			Expect(w.eventTypes()).To(Equal([]string{fakecf.EventStop, fakecf.EventStart, fakecf.EventDeploymentCreate}))
		})
	})

	It("has nothing to step for an app without a deployment", func() {
		_, err := w.server.StepDeployment(w.app.GUID)
		Expect(err).To(MatchError(fakecf.ErrInvalidState))
		_, err = w.server.StepDeployment(fakecf.GUID("app", 404))
		Expect(err).To(MatchError(fakecf.ErrNotFound))
	})

	Describe("GET /v3/deployments", func() {
		var others []fakecf.App

		BeforeEach(func() {
			for _, name := range []string{"a", "b", "c"} {
				app, err := w.server.AddApp(fakecf.App{Name: name, SpaceGUID: w.space.GUID, Instances: 1})
				Expect(err).NotTo(HaveOccurred())
				others = append(others, app)
				_, err = w.server.Deploy(app.GUID, fakecf.Rolling)
				Expect(err).NotTo(HaveOccurred())
				w.clock.Advance(time.Second)
			}
			_, err := w.server.FinishDeployment(others[1].GUID)
			Expect(err).NotTo(HaveOccurred())
		})

		It("filters by status value and app, comma-separated values OR'd", func() {
			Expect(w.api.list("/v3/deployments?status_values=ACTIVE").Resources).To(HaveLen(2))
			Expect(w.api.list("/v3/deployments?status_values=FINALIZED").Resources).To(HaveLen(1))
			Expect(w.api.list("/v3/deployments?status_values=ACTIVE,FINALIZED").Resources).To(HaveLen(3))
			l := w.api.list("/v3/deployments?app_guids=" + others[0].GUID + "," + others[1].GUID + "&status_values=ACTIVE")
			Expect(l.Resources).To(HaveLen(1))
			Expect(field(l.Resources[0], "relationships", "app", "data", "guid")).To(Equal(others[0].GUID))
			Expect(w.api.list("/v3/deployments?status_reasons=DEPLOYED").Resources).To(HaveLen(1))
		})

		It("pages through next.href, oldest first", func() {
			all, pages := w.api.all("/v3/deployments?per_page=1")
			Expect(pages).To(Equal(3))
			var apps []any
			for _, d := range all {
				apps = append(apps, field(d, "relationships", "app", "data", "guid"))
			}
			Expect(apps).To(Equal([]any{others[0].GUID, others[1].GUID, others[2].GUID}))
		})

		It("shows one deployment, and refuses unknown parameters", func() {
			d := w.api.list("/v3/deployments?per_page=1").Resources[0]
			resp, _ := w.api.get("/v3/deployments/" + d["guid"].(string))
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			resp, _ = w.api.get("/v3/deployments?app_guid=x")
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))
		})

		It("lists only deployments in the user's spaces", func() {
			w.server.RestrictToSpaces()
			Expect(w.api.list("/v3/deployments").Resources).To(BeEmpty())
		})
	})
})
