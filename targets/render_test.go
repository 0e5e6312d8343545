package targets_test

import (
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/targets"
)

const appGUID = "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b"

func sampleApp() targets.App {
	return targets.App{
		GUID: appGUID, Name: "my-app", State: "STARTED", Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: 2}},
		Org: "my-org", Space: "my-space",
		Routes: []targets.Route{{Host: "my-app", Domain: "example.com", Protocol: "http1"}},
	}
}

func decode(data []byte) []map[string]any {
	var out []map[string]any
	ExpectWithOffset(1, json.Unmarshal(data, &out)).To(Succeed())
	return out
}

var _ = Describe("Render", func() {
	var app targets.App

	BeforeEach(func() {
		app = sampleApp()
	})

	It("writes one group per instance index with the labels of the target format", func() {
		Expect(targets.Groups(app, "paas.example")).To(Equal([]targets.TargetGroup{
			{Targets: []string{"my-app.example.com"}, Labels: map[string]string{
				"__param_cf_app_guid": appGUID, "__param_cf_app_instance_index": "0",
				"__param_cf_app_instance": appGUID + ":0", "instance": appGUID + ":0",
				"job": "my-app", "org": "my-org", "space": "my-space",
			}},
			{Targets: []string{"my-app.example.com"}, Labels: map[string]string{
				"__param_cf_app_guid": appGUID, "__param_cf_app_instance_index": "1",
				"__param_cf_app_instance": appGUID + ":1", "instance": appGUID + ":1",
				"job": "my-app", "org": "my-org", "space": "my-space",
			}},
		}))
	})

	It("uses the largest instance count among the web processes while a deployment runs", func() {
		app.Processes = []targets.Process{
			{GUID: "00000000-0000-4000-8000-000000000001", Instances: 3},
			{GUID: "00000000-0000-4000-8000-000000000002", Instances: 1},
		}
		Expect(decode(targets.Render(app, "paas.example"))).To(HaveLen(3))
		app.Processes[0].Instances, app.Processes[1].Instances = 1, 3
		Expect(decode(targets.Render(app, "paas.example"))).To(HaveLen(3))
	})

	It("has only the keys targets and labels in every group", func() {
		for _, group := range decode(targets.Render(app, "paas.example")) {
			Expect(group).To(HaveLen(2))
			Expect(group).To(HaveKey("targets"))
			Expect(group).To(HaveKey("labels"))
		}
	})

	It("is byte-stable: the same app gives the same bytes", func() {
		first := targets.Render(app, "paas.example")
		for range 20 {
			Expect(targets.Render(app, "paas.example")).To(Equal(first))
		}
	})

	It("writes labels sorted, indented, with a trailing newline", func() {
		app.Processes[0].Instances = 1
		Expect(string(targets.Render(app, "paas.example"))).To(Equal(`[
  {
    "targets": [
      "my-app.example.com"
    ],
    "labels": {
      "__param_cf_app_guid": "` + appGUID + `",
      "__param_cf_app_instance": "` + appGUID + `:0",
      "__param_cf_app_instance_index": "0",
      "instance": "` + appGUID + `:0",
      "job": "my-app",
      "org": "my-org",
      "space": "my-space"
    }
  }
]
`))
	})

	It("does not escape HTML characters in names", func() {
		app.Space = "a&b<c>"
		Expect(string(targets.Render(app, "paas.example"))).To(ContainSubstring(`"space": "a&b<c>"`))
	})

	Context("when the app is scaled to 0", func() {
		It("writes an empty list", func() {
			app.Processes[0].Instances = 0
			Expect(string(targets.Render(app, "paas.example"))).To(Equal("[]\n"))
		})
	})

	DescribeTable("job name",
		func(name, job string) {
			Expect(targets.Job(name)).To(Equal(job))
		},
		Entry("plain name", "my-app", "my-app"),
		Entry("blue-green old app", "my-app-venerable", "my-app"),
		Entry("only one suffix removed", "my-app-venerable-venerable", "my-app-venerable"),
		Entry("suffix not at the end", "my-app-venerable-2", "my-app-venerable-2"),
		Entry("the suffix alone", "-venerable", ""),
	)

	DescribeTable("__metrics_path__",
		func(path string, want string, present bool) {
			app.Routes = []targets.Route{{Host: "h", Domain: "example.com", Path: path, Protocol: "http1"}}
			labels := targets.Groups(app, "paas.example")[0].Labels
			if present {
				Expect(labels).To(HaveKeyWithValue("__metrics_path__", want))
			} else {
				Expect(labels).NotTo(HaveKey("__metrics_path__"))
			}
		},
		Entry("empty path: absent, Prometheus uses /metrics", "", "", false),
		Entry("path ending in metrics is kept", "/some/path/metrics", "/some/path/metrics", true),
		Entry("path ending in metrics without a slash before it", "/prometheus-metrics", "/prometheus-metrics", true),
		Entry("other path gets /metrics appended", "/some/path", "/some/path/metrics", true),
		Entry("a path ending in a slash gets /metrics appended as it is, as the Ruby service's files have it", "/some/path/", "/some/path//metrics", true),
	)

	DescribeTable("route choice",
		func(routes []targets.Route, target, path string) {
			app.Name = "my-app-venerable"
			app.Routes = routes
			group := targets.Groups(app, "paas.example")[0]
			Expect(group.Targets).To(Equal([]string{target}))
			if path == "" {
				Expect(group.Labels).NotTo(HaveKey("__metrics_path__"))
			} else {
				Expect(group.Labels).To(HaveKeyWithValue("__metrics_path__", path))
			}
		},
		Entry("no routes: guessed from the app name and PAAS_DOMAIN", nil, "my-app-venerable.paas.example", ""),
		Entry("only internal routes: guessed",
			[]targets.Route{{Host: "a", Domain: "apps.internal", Protocol: "http1", Internal: true}},
			"my-app-venerable.paas.example", ""),
		Entry("only tcp routes: guessed",
			[]targets.Route{{Domain: "tcp.example.com", Protocol: "tcp"}},
			"my-app-venerable.paas.example", ""),
		Entry("first route when none ends in metrics",
			[]targets.Route{{Host: "a", Domain: "example.com", Protocol: "http1", Path: "/x"}, {Host: "b", Domain: "example.com", Protocol: "http1"}},
			"a.example.com", "/x/metrics"),
		Entry("a route whose path ends in metrics wins over the first",
			[]targets.Route{{Host: "a", Domain: "example.com", Protocol: "http1"}, {Host: "b", Domain: "example.org", Protocol: "http2", Path: "/metrics"}},
			"b.example.org", "/metrics"),
		Entry("internal and tcp routes are skipped before choosing",
			[]targets.Route{
				{Host: "i", Domain: "apps.internal", Protocol: "http1", Internal: true, Path: "/metrics"},
				{Domain: "tcp.example.com", Protocol: "tcp"},
				{Host: "c", Domain: "example.com", Protocol: "http1"},
			},
			"c.example.com", ""),
		Entry("empty host: the domain alone",
			[]targets.Route{{Host: "", Domain: "example.com", Protocol: "http1"}},
			"example.com", ""),
	)
})
