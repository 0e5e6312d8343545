package broker_test

import (
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/targets"
)

// twoPortApp is startedApp with a second route, to port 9090 of its web
// process.
func twoPortApp() targets.App {
	app := startedApp()
	app.Routes = []targets.Route{
		{Host: "my-app", Domain: "apps.example.com", Protocol: "http1", Port: 8080},
		{Host: "my-app-admin", Domain: "apps.example.com", Protocol: "http1", Port: 9090},
	}
	return app
}

// rendered is the target file the domain renders for app with the given
// bind parameters over its annotations.
func rendered(app targets.App, params string) string {
	bind, err := targets.ParseParameters(json.RawMessage(params))
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	settings, _ := targets.Resolve(app, bind)
	return string(targets.RenderWith(app, targets.Options{PaaSDomain: paasDomain, Settings: settings}))
}

var _ = Describe("Bind with settings", func() {
	var h *harness

	BeforeEach(func() {
		h = newHarness()
		h.cf.setApp(twoPortApp())
		h.serve()
	})

	// ccBind binds as Cloud Controller does: the CF API lists the binding
	// before the broker is called.
	ccBind := func(binding string, params any) response {
		h.cf.setBinding(cfapi.Binding{GUID: binding, AppGUID: appGUID, CreatedAt: time.Now()})
		return h.bindWith(binding, bindWithParams(appGUID, params))
	}
	target := func() string { return h.read("active/" + appGUID + ".json") }

	DescribeTable("writes the target file with the bind parameters, and keeps them in the record",
		func(params string) {
			var p any
			Expect(json.Unmarshal([]byte(params), &p)).To(Succeed())
			r := ccBind(bindingID, p)
			Expect(r.status).To(Equal(http.StatusCreated), r.raw)
			Expect(target()).To(Equal(rendered(twoPortApp(), params)))
			Expect(target()).NotTo(Equal(rendered(twoPortApp(), `{}`)))
			Expect(string(h.record(bindingID).Parameters)).To(MatchJSON(params))
		},
		Entry("path", `{"path":"/admin/metrics"}`),
		Entry("port", `{"port":9090}`),
		Entry("interval", `{"scrape_interval":"30s"}`),
		Entry("timeout", `{"scrape_timeout":"20s"}`),
		Entry("job", `{"job":"shop"}`),
		Entry("labels", `{"labels":{"team":"payments"}}`),
		Entry("all of them", `{"path":"/m","port":9090,"scrape_interval":"1m","scrape_timeout":"15s","job":"j","labels":{"a":"b"}}`),
	)

	It("writes the annotations' settings, under the bind parameters'", func() {
		app := twoPortApp()
		app.Annotations = map[string]string{"prometheus.io/path": "/annotated", "prometheus.io/job": "annotated"}
		h.cf.setApp(app)
		Expect(ccBind(bindingID, map[string]any{"job": "bound"}).status).To(Equal(http.StatusCreated))
		var groups []targets.TargetGroup
		Expect(json.Unmarshal([]byte(target()), &groups)).To(Succeed())
		Expect(groups[0].Labels).To(HaveKeyWithValue("__metrics_path__", "/annotated"))
		Expect(groups[0].Labels).To(HaveKeyWithValue("job", "bound"))
	})

	It("logs an annotation it ignores, and writes the rest", func() {
		app := twoPortApp()
		app.Annotations = map[string]string{"prometheus.io/scrape-interval": "1s", "prometheus.io/job": "annotated"}
		h.cf.setApp(app)
		Expect(ccBind(bindingID, nil).status).To(Equal(http.StatusCreated))
		Expect(target()).To(ContainSubstring(`"job": "annotated"`))
		Expect(target()).NotTo(ContainSubstring("__scrape_interval__"))
		Expect(h.logs.String()).To(ContainSubstring(`"key":"prometheus.io/scrape-interval"`))
	})

	DescribeTable("refuses invalid parameters with 400 naming the key and its form, before anything is read or written",
		func(params any, key, form string) {
			r := ccBind(bindingID, params)
			Expect(r.status).To(Equal(http.StatusBadRequest), r.raw)
			Expect(r.body).To(HaveKeyWithValue("description", HavePrefix("invalid bind parameters: ")))
			Expect(r.body).To(HaveKeyWithValue("description", ContainSubstring(key+form)))
			Expect(h.files()).To(BeEmpty())
			Expect(h.cf.callCount()).To(BeZero())
			Expect(h.operations("bind", "invalid-parameters")).To(Equal(1.0))
			Expect(h.logs.String()).NotTo(ContainSubstring("tenant-value"))
		},
		Entry("an unknown key", map[string]any{"paht": "tenant-value"}, `"paht": `, "not a parameter; the parameters are path, port"),
		Entry("a path that is not absolute", map[string]any{"path": "tenant-value"}, `"path": `, "expected an absolute path"),
		Entry("a port that is a string", map[string]any{"port": "tenant-value"}, `"port": `, "expected an integer from 1 to 65535"),
		Entry("an interval that is not a duration", map[string]any{"scrape_interval": "tenant-value"}, `"scrape_interval": `, "expected a Prometheus duration from 10s to 2m"),
		Entry("a timeout over the interval", map[string]any{"scrape_interval": "10s", "scrape_timeout": "20s"}, `"scrape_timeout": `, "exceeds scrape_interval"),
		Entry("an empty job", map[string]any{"job": ""}, `"job": `, "expected a string of 1 to 256 characters"),
		Entry("a reserved label", map[string]any{"labels": map[string]any{"instance": "tenant-value"}}, `"labels": `, "expected an object of at most 10 extra target labels"),
		Entry("not an object", []any{"tenant-value"}, "", "the parameters must be a JSON object"),
	)

	It("refuses with 400 a port no route of the app serves, and writes nothing", func() {
		r := ccBind(bindingID, map[string]any{"port": 7070})
		Expect(r.status).To(Equal(http.StatusBadRequest), r.raw)
		Expect(r.body).To(HaveKeyWithValue("description", ContainSubstring(`"port": no route of the app reaches that port alone`)))
		Expect(r.body).To(HaveKeyWithValue("description", ContainSubstring("the app's HTTP routes reach port 8080, 9090")))
		Expect(h.files()).To(BeEmpty())
	})

	It("asks the CF API about the app alone on its first bind, and lists its bindings on the next", func() {
		Expect(ccBind(bindingID, nil).status).To(Equal(http.StatusCreated))
		Expect(h.cf.callCount()).To(Equal(1))
		Expect(ccBind(binding2ID, nil).status).To(Equal(http.StatusCreated))
		Expect(h.cf.callCount()).To(Equal(3))
	})

	Context("when another binding of the app has settings", func() {
		BeforeEach(func() {
			Expect(ccBind(binding2ID, map[string]any{"path": "/m", "scrape_interval": "30s"}).status).To(Equal(http.StatusCreated))
		})

		DescribeTable("refuses conflicting parameters with 400 saying how to resolve it, and writes nothing",
			func(params map[string]any, keys string) {
				before := target()
				r := ccBind(bindingID, params)
				Expect(r.status).To(Equal(http.StatusBadRequest), r.raw)
				Expect(r.body).To(HaveKeyWithValue("description", ContainSubstring("the bind parameters "+keys+" disagree with those of binding "+binding2ID)))
				Expect(r.body).To(HaveKeyWithValue("description", ContainSubstring("bind with the same parameters, or unbind binding "+binding2ID+" first")))
				Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+binding2ID+".json"))
				Expect(target()).To(Equal(before))
				Expect(h.operations("bind", "settings-conflict")).To(Equal(1.0))
			},
			Entry("path", map[string]any{"path": "/n"}, "path"),
			Entry("interval", map[string]any{"scrape_interval": "1m"}, "scrape_interval/scrape_timeout"),
			Entry("timeout", map[string]any{"scrape_timeout": "5s"}, "scrape_interval/scrape_timeout"),
			Entry("both", map[string]any{"path": "/n", "scrape_interval": "1m"}, "path, scrape_interval/scrape_timeout"),
		)

		DescribeTable("binds agreeing parameters, and writes the settings of both",
			func(params any, want string) {
				r := ccBind(bindingID, params)
				Expect(r.status).To(Equal(http.StatusCreated), r.raw)
				Expect(target()).To(Equal(rendered(twoPortApp(), want)))
			},
			Entry("none", nil, `{"path":"/m","scrape_interval":"30s"}`),
			Entry("the same", map[string]any{"scrape_interval": "30s", "path": "/m"}, `{"path":"/m","scrape_interval":"30s"}`),
			Entry("others", map[string]any{"job": "j"}, `{"path":"/m","scrape_interval":"30s","job":"j"}`),
		)

		It("ignores a binding Cloud Controller is deleting", func() {
			h.cf.setBinding(cfapi.Binding{GUID: binding2ID, AppGUID: appGUID, Deleting: true})
			r := h.bindWith(bindingID, bindWithParams(appGUID, map[string]any{"path": "/n"}))
			Expect(r.status).To(Equal(http.StatusCreated), r.raw)
		})

		It("answers a repeat of its own bind 200, with the settings of both", func() {
			r := ccBind(binding2ID, map[string]any{"path": "/m", "scrape_interval": "30s"})
			Expect(r.status).To(Equal(http.StatusOK), r.raw)
			Expect(target()).To(Equal(rendered(twoPortApp(), `{"path":"/m","scrape_interval":"30s"}`)))
		})

		It("answers 503 when the CF API cannot list the app's bindings", func() {
			h.cf.appsErr = cfapi.ErrUnavailable
			r := ccBind(bindingID, map[string]any{"path": "/n"})
			Expect(r.status).To(Equal(http.StatusServiceUnavailable), r.raw)
			Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+binding2ID+".json"))
		})
	})

	Context("when another binding has no record (made before the bucket had them)", func() {
		BeforeEach(func() {
			Expect(ccBind(binding2ID, nil).status).To(Equal(http.StatusCreated))
			h.cf.setBinding(cfapi.Binding{GUID: unknownID, AppGUID: appGUID, CreatedAt: time.Now().Add(-time.Hour)})
		})

		It("binds with its own settings", func() {
			Expect(ccBind(bindingID, map[string]any{"path": "/n"}).status).To(Equal(http.StatusCreated))
			Expect(target()).To(Equal(rendered(twoPortApp(), `{"path":"/n"}`)))
		})
	})
})
