package targets_test

import (
	"encoding/json"
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/targets"
)

// labelsWith renders app's first group with the settings of bind
// parameters and the app's annotations, as the broker and the updater do.
func labelsWith(app targets.App, params string) (map[string]string, []targets.InvalidSetting) {
	bind, err := targets.ParseParameters(json.RawMessage(params))
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	settings, ignored := targets.Resolve(app, bind)
	groups := targets.GroupsWith(app, targets.Options{PaaSDomain: "paas.example", Settings: settings})
	ExpectWithOffset(1, groups).NotTo(BeEmpty())
	return groups[0].Labels, ignored
}

func targetWith(app targets.App, params string) string {
	bind, err := targets.ParseParameters(json.RawMessage(params))
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	settings, _ := targets.Resolve(app, bind)
	return targets.GroupsWith(app, targets.Options{PaaSDomain: "paas.example", Settings: settings})[0].Targets[0]
}

func parametersError(params string) *targets.ParametersError {
	_, err := targets.ParseParameters(json.RawMessage(params))
	var perr *targets.ParametersError
	ExpectWithOffset(1, errors.As(err, &perr)).To(BeTrue(), "error %v", err)
	return perr
}

// twoPorts is an app whose web process listens on 8080 and 9090.
func twoPorts() targets.App {
	app := sampleApp()
	app.Routes = []targets.Route{
		{Host: "my-app", Domain: "example.com", Protocol: "http1", Port: 8080},
		{Host: "my-app-admin", Domain: "example.com", Protocol: "http1", Port: 9090},
	}
	return app
}

var _ = Describe("Settings", func() {
	var app targets.App

	BeforeEach(func() {
		app = twoPorts()
	})

	DescribeTable("each setting from a bind parameter, an annotation, or both (the parameter wins)",
		func(params string, annotations map[string]string, label, want string) {
			app.Annotations = annotations
			labels, ignored := labelsWith(app, params)
			Expect(ignored).To(BeEmpty())
			if want == "" {
				Expect(labels).NotTo(HaveKey(label))
			} else {
				Expect(labels).To(HaveKeyWithValue(label, want))
			}
		},
		Entry("path: default", `{}`, nil, "__metrics_path__", ""),
		Entry("path: parameter", `{"path":"/admin/metrics"}`, nil, "__metrics_path__", "/admin/metrics"),
		Entry("path: annotation", `{}`, map[string]string{"prometheus.io/path": "/ann"}, "__metrics_path__", "/ann"),
		Entry("path: both", `{"path":"/param"}`, map[string]string{"prometheus.io/path": "/ann"}, "__metrics_path__", "/param"),
		Entry("path: the root", `{"path":"/"}`, nil, "__metrics_path__", "/"),
		Entry("job: default", `{}`, nil, "job", "my-app"),
		Entry("job: parameter", `{"job":"shop"}`, nil, "job", "shop"),
		Entry("job: annotation", `{}`, map[string]string{"prometheus.io/job": "ann"}, "job", "ann"),
		Entry("job: both", `{"job":"param"}`, map[string]string{"prometheus.io/job": "ann"}, "job", "param"),
		Entry("interval: default", `{}`, nil, "__scrape_interval__", ""),
		Entry("interval: parameter", `{"scrape_interval":"30s"}`, nil, "__scrape_interval__", "30s"),
		Entry("interval: annotation", `{}`, map[string]string{"prometheus.io/scrape-interval": "90s"}, "__scrape_interval__", "1m30s"),
		Entry("interval: both", `{"scrape_interval":"15s"}`, map[string]string{"prometheus.io/scrape-interval": "1m"}, "__scrape_interval__", "15s"),
		Entry("timeout: default", `{}`, nil, "__scrape_timeout__", ""),
		Entry("timeout: parameter", `{"scrape_timeout":"5s"}`, nil, "__scrape_timeout__", "5s"),
		Entry("timeout: annotation", `{}`, map[string]string{"prometheus.io/scrape-timeout": "20s"}, "__scrape_timeout__", "20s"),
		Entry("timeout: both", `{"scrape_timeout":"5s"}`, map[string]string{"prometheus.io/scrape-timeout": "20s"}, "__scrape_timeout__", "5s"),
		Entry("labels: parameter", `{"labels":{"team":"payments"}}`, nil, "team", "payments"),
		Entry("labels: a name starting with one underscore", `{"labels":{"_x":"y"}}`, nil, "_x", "y"),
	)

	DescribeTable("port: chooses the route on that port, from a parameter, an annotation or both",
		func(params string, annotations map[string]string, want string) {
			app.Annotations = annotations
			Expect(targetWith(app, params)).To(Equal(want))
		},
		Entry("default: the first route", `{}`, nil, "my-app.example.com"),
		Entry("parameter", `{"port":9090}`, nil, "my-app-admin.example.com"),
		Entry("parameter written as a number with a fraction of zero", `{"port":9090.0}`, nil, "my-app-admin.example.com"),
		Entry("annotation", `{}`, map[string]string{"prometheus.io/port": "9090"}, "my-app-admin.example.com"),
		Entry("both: the parameter wins", `{"port":8080}`, map[string]string{"prometheus.io/port": "9090"}, "my-app.example.com"),
	)

	Describe("the port rule", func() {
		It("takes a route whose destinations name no port as on 8080", func() {
			app.Routes[0].Port = 0
			Expect(targetWith(app, `{"port":8080}`)).To(Equal("my-app.example.com"))
		})

		It("does not take a route whose destinations on the web process use several ports", func() {
			app.Routes = []targets.Route{
				{Host: "both", Domain: "example.com", Protocol: "http1", Port: 8080},
				{Host: "both", Domain: "example.com", Protocol: "http1", Port: 9090},
				{Host: "admin", Domain: "example.com", Protocol: "http1", Port: 9090},
			}
			Expect(targetWith(app, `{"port":9090}`)).To(Equal("admin.example.com"))
			bind, _ := targets.ParseParameters(json.RawMessage(`{"port":8080}`))
			Expect(bind.CheckApp(app)).To(MatchError(ContainSubstring(`"port": no route of the app reaches that port alone`)))
		})

		It("prefers, among the routes on that port, one whose path ends in metrics", func() {
			app.Routes = append(app.Routes, targets.Route{Host: "m", Domain: "example.com", Path: "/metrics", Protocol: "http1", Port: 9090})
			Expect(targetWith(app, `{"port":9090}`)).To(Equal("m.example.com"))
		})

		It("ignores internal and tcp routes on that port", func() {
			app.Routes = append(app.Routes,
				targets.Route{Host: "i", Domain: "apps.internal", Protocol: "http1", Internal: true, Port: 7070},
				targets.Route{Domain: "tcp.example.com", Protocol: "tcp", Port: 7070})
			bind, _ := targets.ParseParameters(json.RawMessage(`{"port":7070}`))
			err := bind.CheckApp(app)
			Expect(err).To(MatchError(ContainSubstring("the app's HTTP routes reach port 8080, 9090")))
			var perr *targets.ParametersError
			Expect(errors.As(err, &perr)).To(BeTrue())
		})

		It("accepts a bind port a route serves", func() {
			bind, _ := targets.ParseParameters(json.RawMessage(`{"port":9090}`))
			Expect(bind.CheckApp(app)).To(Succeed())
		})

		It("falls back to the usual route and reports a bound port no route serves any more", func() {
			bind, _ := targets.ParseParameters(json.RawMessage(`{"port":9090}`))
			app.Routes = app.Routes[:1]
			settings, ignored := targets.Resolve(app, bind)
			Expect(ignored).To(ConsistOf(HaveField("Key", "port")))
			Expect(targets.GroupsWith(app, targets.Options{Settings: settings})[0].Targets).To(Equal([]string{"my-app.example.com"}))
		})

		It("falls back to an annotated port when the bound one is not served", func() {
			bind, _ := targets.ParseParameters(json.RawMessage(`{"port":7070}`))
			app.Annotations = map[string]string{"prometheus.io/port": "9090"}
			settings, _ := targets.Resolve(app, bind)
			Expect(settings.Port).To(Equal(9090))
		})

		It("reports an annotated port no route serves, and keeps the usual route", func() {
			app.Annotations = map[string]string{"prometheus.io/port": "7070"}
			Expect(targetWith(app, `{}`)).To(Equal("my-app.example.com"))
			_, ignored := labelsWith(app, `{}`)
			Expect(ignored).To(ConsistOf(targets.InvalidSetting{Key: "prometheus.io/port", Annotation: true,
				Reason: "no route of the app reaches that port alone on its web process (the app's HTTP routes reach port 8080, 9090; " +
					"a route with destinations on several ports reaches none of them alone): map a route to a destination with that port, or leave the port unset"}))
		})
	})

	DescribeTable("scrape interval and timeout: always written together, the timeout at most the interval",
		func(params string, annotations map[string]string, interval, timeout string) {
			app.Annotations = annotations
			labels, _ := labelsWith(app, params)
			Expect(labels).To(HaveKeyWithValue("__scrape_interval__", interval))
			Expect(labels).To(HaveKeyWithValue("__scrape_timeout__", timeout))
		},
		Entry("both given", `{"scrape_interval":"30s","scrape_timeout":"30s"}`, nil, "30s", "30s"),
		Entry("interval alone: timeout 10s", `{"scrape_interval":"30s"}`, nil, "30s", "10s"),
		Entry("interval alone at its minimum: timeout 10s", `{"scrape_interval":"10s"}`, nil, "10s", "10s"),
		Entry("timeout alone: interval 1m", `{"scrape_timeout":"5s"}`, nil, "1m", "5s"),
		Entry("timeout alone over 1m: interval equal to it", `{"scrape_timeout":"90s"}`, nil, "1m30s", "1m30s"),
		Entry("interval from a parameter, timeout from an annotation: the pair comes from the parameter",
			`{"scrape_interval":"15s"}`, map[string]string{"prometheus.io/scrape-timeout": "14s"}, "15s", "10s"),
		Entry("annotations: both", `{}`, map[string]string{"prometheus.io/scrape-interval": "2m", "prometheus.io/scrape-timeout": "1m"}, "2m", "1m"),
		Entry("annotations: a timeout over the interval is ignored, the interval kept",
			`{}`, map[string]string{"prometheus.io/scrape-interval": "20s", "prometheus.io/scrape-timeout": "30s"}, "20s", "10s"),
		Entry("annotations: a bad interval is ignored, the timeout kept",
			`{}`, map[string]string{"prometheus.io/scrape-interval": "fast", "prometheus.io/scrape-timeout": "30s"}, "1m", "30s"),
	)

	DescribeTable("invalid bind parameters: one error naming each bad key and its accepted form",
		func(params string, key, form string) {
			perr := parametersError(params)
			Expect(perr.Invalid).To(ContainElement(HaveField("Key", key)))
			Expect(perr.Error()).To(HavePrefix("invalid bind parameters: "))
			Expect(perr.Error()).To(ContainSubstring(`"` + key + `": ` + form))
		},
		Entry("unknown key", `{"paht":"/x"}`, "paht", "not a parameter; the parameters are path, port, scrape_interval, scrape_timeout, job and labels"),
		Entry("path: wrong type", `{"path":1}`, "path", "expected an absolute path such as /admin/metrics"),
		Entry("path: relative", `{"path":"metrics"}`, "path", "expected an absolute path"),
		Entry("path: a query", `{"path":"/metrics?x=1"}`, "path", "expected an absolute path such as /admin/metrics, without query or fragment"),
		Entry("path: a fragment", `{"path":"/metrics#x"}`, "path", "expected an absolute path such as /admin/metrics, without query or fragment"),
		Entry("path: a space", `{"path":"/a b"}`, "path", "expected an absolute path"),
		Entry("path: empty", `{"path":""}`, "path", "expected an absolute path"),
		Entry("port: wrong type", `{"port":"9090"}`, "port", "expected an integer from 1 to 65535"),
		Entry("port: 0", `{"port":0}`, "port", "expected an integer from 1 to 65535"),
		Entry("port: too large", `{"port":65536}`, "port", "expected an integer from 1 to 65535"),
		Entry("port: a fraction", `{"port":80.5}`, "port", "expected an integer from 1 to 65535"),
		Entry("interval: wrong type", `{"scrape_interval":30}`, "scrape_interval", "expected a Prometheus duration from 10s to 2m"),
		Entry("interval: not a duration", `{"scrape_interval":"30 s"}`, "scrape_interval", "expected a Prometheus duration"),
		Entry("interval: Go's form", `{"scrape_interval":"1.5m"}`, "scrape_interval", "expected a Prometheus duration"),
		Entry("interval: too short", `{"scrape_interval":"5s"}`, "scrape_interval", "expected a Prometheus duration from 10s to 2m"),
		Entry("interval: too long", `{"scrape_interval":"3m"}`, "scrape_interval", "expected a Prometheus duration from 10s to 2m"),
		Entry("interval: 0", `{"scrape_interval":"0"}`, "scrape_interval", "expected a Prometheus duration from 10s to 2m"),
		Entry("interval: overflows", `{"scrape_interval":"9999999999999y"}`, "scrape_interval", "expected a Prometheus duration from 10s to 2m"),
		Entry("timeout: too short", `{"scrape_timeout":"500ms"}`, "scrape_timeout", "expected a Prometheus duration from 1s to 2m"),
		Entry("timeout: too long", `{"scrape_timeout":"121s"}`, "scrape_timeout", "expected a Prometheus duration from 1s to 2m"),
		Entry("timeout over the interval", `{"scrape_interval":"30s","scrape_timeout":"31s"}`, "scrape_timeout",
			"exceeds scrape_interval (Prometheus drops such a target); expected a Prometheus duration from 1s to 2m"),
		Entry("job: wrong type", `{"job":["a"]}`, "job", "expected a string of 1 to 256 characters"),
		Entry("job: empty", `{"job":""}`, "job", "expected a string of 1 to 256 characters"),
		Entry("labels: wrong type", `{"labels":"team=x"}`, "labels", "expected an object of at most 10 extra target labels"),
		Entry("labels: a value not a string", `{"labels":{"team":1}}`, "labels", "expected an object"),
	)

	DescribeTable("refused label names",
		func(name string) {
			perr := parametersError(`{"labels":{` + mustJSON(name) + `:"v"}}`)
			Expect(perr.Invalid).To(ConsistOf(HaveField("Key", "labels")))
		},
		Entry("job", "job"),
		Entry("instance", "instance"),
		Entry("org", "org"),
		Entry("space", "space"),
		Entry("a name starting __", "__metrics_path__"),
		Entry("a scrape parameter", "__param_cf_app_guid"),
		Entry("__ alone", "__"),
		Entry("a leading digit", "1team"),
		Entry("a dash", "my-team"),
		Entry("a dot", "team.name"),
		Entry("empty", ""),
		Entry("not ASCII", "équipe"),
	)

	It("refuses more than 10 labels and values over 256 characters", func() {
		labels := map[string]string{}
		for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
			labels[name] = "v"
		}
		Expect(targets.ParseParameters(json.RawMessage(`{"labels":` + mustJSON(labels) + `}`))).Error().NotTo(HaveOccurred())
		labels["k"] = "v"
		Expect(parametersError(`{"labels":` + mustJSON(labels) + `}`).Invalid).To(ConsistOf(HaveField("Key", "labels")))
		long := string(make([]byte, 257))
		Expect(parametersError(`{"labels":{"a":` + mustJSON(long) + `}}`).Invalid).To(ConsistOf(HaveField("Key", "labels")))
	})

	It("names every bad key in one error, sorted, without repeating a value", func() {
		perr := parametersError(`{"port":"secret-value","job":"","zzz":1,"path":"secret-path?x"}`)
		Expect(perr.Invalid).To(HaveEach(HaveField("Annotation", false)))
		Expect(perr.Invalid).To(HaveLen(4))
		Expect([]string{perr.Invalid[0].Key, perr.Invalid[1].Key, perr.Invalid[2].Key, perr.Invalid[3].Key}).
			To(Equal([]string{"job", "path", "port", "zzz"}))
		Expect(perr.Error()).NotTo(ContainSubstring("secret"))
	})

	DescribeTable("parameters that are not an object",
		func(params string) {
			perr := parametersError(params)
			Expect(perr.Invalid).To(ConsistOf(HaveField("Key", "")))
		},
		Entry("an array", `[]`),
		Entry("a string", `"path"`),
		Entry("invalid JSON", `{"path":`),
	)

	DescribeTable("no parameters",
		func(params string) {
			Expect(targets.ParseParameters(json.RawMessage(params))).To(Equal(targets.Settings{}))
		},
		Entry("absent", ``),
		Entry("null", `null`),
		Entry("an empty object", `{}`),
	)

	It("parses every parameter at once", func() {
		Expect(targets.ParseParameters(json.RawMessage(`{"path":"/m","port":9090,"scrape_interval":"1m","scrape_timeout":"15s","job":"j","labels":{"team":"t"}}`))).
			To(Equal(targets.Settings{Path: "/m", Port: 9090, ScrapeInterval: time.Minute, ScrapeTimeout: 15 * time.Second,
				Job: "j", Labels: map[string]string{"team": "t"}}))
	})

	Describe("annotations", func() {
		It("ignores an invalid value, reports it, and keeps the other settings right", func() {
			app.Annotations = map[string]string{
				"prometheus.io/path": "metrics?x", "prometheus.io/port": "nine", "prometheus.io/job": "shop",
				"prometheus.io/scrape-interval": "1s", "prometheus.io/scrape-timeout": "5s",
				"prometheus.io/other": "x", "team": "y",
			}
			labels, ignored := labelsWith(app, `{}`)
			Expect(labels).To(HaveKeyWithValue("job", "shop"))
			Expect(labels).To(HaveKeyWithValue("__scrape_timeout__", "5s"))
			Expect(labels).To(HaveKeyWithValue("__scrape_interval__", "1m"))
			Expect(labels).NotTo(HaveKey("__metrics_path__"))
			Expect(ignored).To(HaveEach(HaveField("Annotation", true)))
			Expect(ignored).To(ConsistOf(
				HaveField("Key", "prometheus.io/path"), HaveField("Key", "prometheus.io/port"),
				HaveField("Key", "prometheus.io/scrape-interval")))
		})

		DescribeTable("a port annotation that is not a plain number",
			func(value string) {
				app.Annotations = map[string]string{"prometheus.io/port": value}
				_, ignored := labelsWith(app, `{}`)
				Expect(ignored).To(ConsistOf(HaveField("Key", "prometheus.io/port")))
			},
			Entry("a sign", "+9090"),
			Entry("spaces", " 9090"),
			Entry("a fraction", "9090.0"),
			Entry("empty", ""),
			Entry("zero", "0"),
			Entry("too large", "70000"),
		)

		It("are not needed: an app without them has no settings", func() {
			settings, ignored := targets.Resolve(app, targets.Settings{})
			Expect(settings).To(Equal(targets.Settings{}))
			Expect(ignored).To(BeEmpty())
		})
	})

	Describe("extra labels", func() {
		It("never replace the labels the renderer writes, even when set by hand", func() {
			settings := targets.Settings{Labels: map[string]string{"instance": "x", "__param_cf_app_guid": "y", "team": "t"}}
			labels := targets.GroupsWith(app, targets.Options{Settings: settings})[0].Labels
			Expect(labels).To(HaveKeyWithValue("instance", appGUID+":0"))
			Expect(labels).To(HaveKeyWithValue("__param_cf_app_guid", appGUID))
			Expect(labels).To(HaveKeyWithValue("team", "t"))
		})
	})

	Describe("several bindings of one app", func() {
		parse := func(guid, params string) targets.BindingSettings {
			s, err := targets.ParseParameters(json.RawMessage(params))
			Expect(err).NotTo(HaveOccurred())
			return targets.BindingSettings{BindingGUID: guid, Settings: s}
		}

		DescribeTable("agree when no setting is set differently",
			func(first, second string, want targets.Settings) {
				Expect(targets.Combine([]targets.BindingSettings{parse("b1", first), parse("b2", second)})).To(Equal(want))
			},
			Entry("neither sets anything", `{}`, `{}`, targets.Settings{}),
			Entry("the same parameters", `{"path":"/m","port":9090}`, `{"port":9090,"path":"/m"}`, targets.Settings{Path: "/m", Port: 9090}),
			Entry("one sets nothing", `{"path":"/m"}`, `{}`, targets.Settings{Path: "/m"}),
			Entry("they set different keys", `{"path":"/m"}`, `{"job":"j"}`, targets.Settings{Path: "/m", Job: "j"}),
			Entry("equal durations written differently", `{"scrape_interval":"1m"}`, `{"scrape_interval":"60s"}`,
				targets.Settings{ScrapeInterval: time.Minute, ScrapeTimeout: 10 * time.Second}),
		)

		DescribeTable("conflict when two set one setting differently",
			func(first, second string, keys []string) {
				settings, err := targets.Combine([]targets.BindingSettings{parse("b1", first), parse("b2", second)})
				var conflict *targets.ConflictError
				Expect(errors.As(err, &conflict)).To(BeTrue())
				Expect(conflict.Keys).To(Equal(keys))
				Expect(conflict.Binding).To(Equal("b1"))
				Expect(conflict.Other).To(Equal("b2"))
				Expect(err.Error()).To(ContainSubstring("binding b1 of the same app"))
				Expect(err.Error()).To(ContainSubstring("bind with the same parameters, or unbind binding b1 first"))
				kept, _ := targets.ParseParameters(json.RawMessage(first))
				Expect(settings).To(Equal(kept.Over(settings)), "the oldest binding's settings are kept")
				Expect(settings.Over(kept)).To(Equal(settings))
			},
			Entry("path", `{"path":"/a"}`, `{"path":"/b"}`, []string{"path"}),
			Entry("port", `{"port":8080}`, `{"port":9090}`, []string{"port"}),
			Entry("interval", `{"scrape_interval":"30s"}`, `{"scrape_interval":"1m"}`, []string{"scrape_interval/scrape_timeout"}),
			Entry("timeout", `{"scrape_interval":"30s","scrape_timeout":"5s"}`, `{"scrape_interval":"30s"}`, []string{"scrape_interval/scrape_timeout"}),
			Entry("job", `{"job":"a"}`, `{"job":"b"}`, []string{"job"}),
			Entry("labels", `{"labels":{"a":"1"}}`, `{"labels":{"a":"1","b":"2"}}`, []string{"labels"}),
			Entry("several", `{"path":"/a","job":"a"}`, `{"path":"/b","job":"b"}`, []string{"path", "job"}),
		)

		It("names the binding that set the disputed setting", func() {
			_, err := targets.Combine([]targets.BindingSettings{parse("b1", `{"path":"/a"}`), parse("b2", `{"job":"j"}`), parse("b3", `{"job":"k"}`)})
			var conflict *targets.ConflictError
			Expect(errors.As(err, &conflict)).To(BeTrue())
			Expect(*conflict).To(Equal(targets.ConflictError{Binding: "b2", Other: "b3", Keys: []string{"job"}}))
		})

		It("gives precedence to the oldest binding, whatever the order given, then to the lower guid", func() {
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			older, newer, twin := parse("b9", `{"path":"/old"}`), parse("b1", `{"path":"/new"}`), parse("b8", `{"path":"/twin"}`)
			older.Created, newer.Created, twin.Created = t0, t0.Add(time.Second), t0
			settings, err := targets.Combine([]targets.BindingSettings{newer, older, twin})
			Expect(settings.Path).To(Equal("/twin"))
			var conflict *targets.ConflictError
			Expect(errors.As(err, &conflict)).To(BeTrue())
			Expect(*conflict).To(Equal(targets.ConflictError{Binding: "b8", Other: "b9", Keys: []string{"path"}}))
		})
	})
})

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return string(b)
}

var _ = Describe("Settings.IsZero", func() {
	It("is true of settings that set nothing, empty labels included", func() {
		Expect(targets.Settings{}.IsZero()).To(BeTrue())
		Expect(targets.Settings{Labels: map[string]string{}}.IsZero()).To(BeTrue())
	})

	DescribeTable("is false of settings that set anything",
		func(params string) {
			s, err := targets.ParseParameters(json.RawMessage(params))
			Expect(err).NotTo(HaveOccurred())
			Expect(s.IsZero()).To(BeFalse())
		},
		Entry("path", `{"path": "/m"}`),
		Entry("port", `{"port": 9090}`),
		Entry("scrape interval", `{"scrape_interval": "30s"}`),
		Entry("scrape timeout", `{"scrape_timeout": "5s"}`),
		Entry("job", `{"job": "j"}`),
		Entry("labels", `{"labels": {"team": "a"}}`),
	)
})
