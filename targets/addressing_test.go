package targets_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/targets"
)

const (
	oldProcess   = "00000000-0000-4000-8000-0000000000a1"
	newProcess   = "00000000-0000-4000-8000-0000000000b2"
	thirdProcess = "00000000-0000-4000-8000-0000000000c3"
)

var deployStart = time.Date(2026, 12, 5, 14, 0, 0, 0, time.UTC)

// deploying is the sample app with the given web processes: the old one
// created long ago, the new one at deployStart. A count of -1 leaves the
// process out (it was destroyed, or not created yet).
func deploying(old, new int) targets.App {
	app := sampleApp()
	app.Processes = nil
	if old >= 0 {
		app.Processes = append(app.Processes, targets.Process{GUID: oldProcess, Instances: old, CreatedAt: deployStart.Add(-24 * time.Hour)})
	}
	if new >= 0 {
		app.Processes = append(app.Processes, targets.Process{GUID: newProcess, Instances: new, CreatedAt: deployStart})
	}
	return app
}

// summary describes each group by what addresses it: "<instance label>
// <process instance param or ->", with guids shortened to app, old, new and
// third.
func summary(groups []targets.TargetGroup) []string {
	short := strings.NewReplacer(appGUID, "app", oldProcess, "old", newProcess, "new", thirdProcess, "third")
	var out []string
	for _, g := range groups {
		param, ok := g.Labels["__param_cf_process_instance"]
		if !ok {
			param = "-"
		}
		out = append(out, short.Replace(g.Labels["instance"]+" "+param))
	}
	return out
}

// expectDistinctLabelSets fails when two groups have the same labels once
// Prometheus has dropped those starting with "__" (__param_* become the
// scrape's query): their samples would land in the same series.
func expectDistinctLabelSets(groups []targets.TargetGroup) {
	seen := map[string]bool{}
	for _, g := range groups {
		kept := map[string]string{}
		for name, value := range g.Labels {
			if !strings.HasPrefix(name, "__") {
				kept[name] = value
			}
		}
		key := fmt.Sprint(kept) // fmt prints maps sorted by key
		ExpectWithOffset(1, seen).NotTo(HaveKey(key), "two groups share the labels %s", key)
		seen[key] = true
	}
}

var _ = Describe("Addressing", func() {
	DescribeTable("ParseAddressing",
		func(value string, want targets.Addressing, ok bool) {
			got, err := targets.ParseAddressing(value)
			if !ok {
				Expect(err).To(MatchError(`must be app or process, got "` + value + `"`))
				return
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(Equal(want))
		},
		Entry("unset: app", "", targets.AppAddressing, true),
		Entry("app", "app", targets.AppAddressing, true),
		Entry("process", "process", targets.ProcessAddressing, true),
		Entry("case matters", "Process", targets.Addressing(""), false),
		Entry("anything else", "instance", targets.Addressing(""), false),
	)

	DescribeTable("a rolling deploy, step by step",
		func(old, new int, app, process []string) {
			for mode, want := range map[targets.Addressing][]string{targets.AppAddressing: app, targets.ProcessAddressing: process} {
				groups := targets.GroupsWith(deploying(old, new), targets.Options{PaaSDomain: "paas.example", Addressing: mode})
				Expect(summary(groups)).To(Equal(want), "addressing %s", mode)
				expectDistinctLabelSets(groups)
			}
		},
		Entry("before: old 3",
			3, -1,
			[]string{"app:0 -", "app:1 -", "app:2 -"},
			[]string{"app:0 -", "app:1 -", "app:2 -"}),
		Entry("old 3, new 1: the new process takes the app's labels",
			3, 1,
			[]string{"app:0 -", "app:1 -", "app:2 -"},
			[]string{"app:0 new:0", "old:0 old:0", "old:1 old:1", "old:2 old:2"}),
		Entry("old 2, new 2",
			2, 2,
			[]string{"app:0 -", "app:1 -"},
			[]string{"app:0 new:0", "app:1 new:1", "old:0 old:0", "old:1 old:1"}),
		Entry("old 1, new 3",
			1, 3,
			[]string{"app:0 -", "app:1 -", "app:2 -"},
			[]string{"app:0 new:0", "app:1 new:1", "app:2 new:2", "old:0 old:0"}),
		Entry("old 0, new 3: the old process is about to go",
			0, 3,
			[]string{"app:0 -", "app:1 -", "app:2 -"},
			[]string{"app:0 new:0", "app:1 new:1", "app:2 new:2"}),
		Entry("after: new 3 only, the survivor keeps the app's labels",
			-1, 3,
			[]string{"app:0 -", "app:1 -", "app:2 -"},
			[]string{"app:0 -", "app:1 -", "app:2 -"}),
	)

	DescribeTable("the first deploy of an app, whose first web process has the app's guid (as CF gives it)",
		func(old, new int, app, process []string) {
			for mode, want := range map[targets.Addressing][]string{targets.AppAddressing: app, targets.ProcessAddressing: process} {
				a := deploying(old, new)
				for i := range a.Processes {
					if a.Processes[i].GUID == oldProcess {
						a.Processes[i].GUID = appGUID
					}
				}
				groups := targets.GroupsWith(a, targets.Options{PaaSDomain: "paas.example", Addressing: mode})
				Expect(summary(groups)).To(Equal(want), "addressing %s", mode)
				expectDistinctLabelSets(groups)
			}
		},
		Entry("before: 2 instances",
			2, -1,
			[]string{"app:0 -", "app:1 -"},
			[]string{"app:0 -", "app:1 -"}),
		Entry("old 2, new 1: the old instances are marked old",
			2, 1,
			[]string{"app:0 -", "app:1 -"},
			[]string{"app:0 new:0", "app:0:old app:0", "app:1:old app:1"}),
		Entry("old 1, new 2",
			1, 2,
			[]string{"app:0 -", "app:1 -"},
			[]string{"app:0 new:0", "app:1 new:1", "app:0:old app:0"}),
		Entry("after: new 2 only",
			-1, 2,
			[]string{"app:0 -", "app:1 -"},
			[]string{"app:0 -", "app:1 -"}),
	)

	DescribeTable("a canary deploy",
		func(old, new int, app, process []string) {
			for mode, want := range map[targets.Addressing][]string{targets.AppAddressing: app, targets.ProcessAddressing: process} {
				groups := targets.GroupsWith(deploying(old, new), targets.Options{PaaSDomain: "paas.example", Addressing: mode})
				Expect(summary(groups)).To(Equal(want), "addressing %s", mode)
				expectDistinctLabelSets(groups)
			}
		},
		Entry("paused after its first instance: both processes scraped in process addressing",
			2, 1,
			[]string{"app:0 -", "app:1 -"},
			[]string{"app:0 new:0", "old:0 old:0", "old:1 old:1"}),
		Entry("cancelled: the old process alone again",
			2, -1,
			[]string{"app:0 -", "app:1 -"},
			[]string{"app:0 -", "app:1 -"}),
	)

	It("takes the zero Addressing for app addressing", func() {
		app := deploying(2, 1)
		Expect(targets.RenderWith(app, targets.Options{PaaSDomain: "paas.example"})).
			To(Equal(targets.RenderWith(app, targets.Options{PaaSDomain: "paas.example", Addressing: targets.AppAddressing})))
	})

	It("writes the process instance parameter sorted among the labels", func() {
		app := deploying(1, 1)
		app.Processes[0].Instances = 0
		Expect(string(targets.RenderWith(app, targets.Options{PaaSDomain: "paas.example", Addressing: targets.ProcessAddressing}))).To(Equal(`[
  {
    "targets": [
      "my-app.example.com"
    ],
    "labels": {
      "__param_cf_app_guid": "` + appGUID + `",
      "__param_cf_app_instance": "` + appGUID + `:0",
      "__param_cf_app_instance_index": "0",
      "__param_cf_process_instance": "` + newProcess + `:0",
      "instance": "` + appGUID + `:0",
      "job": "my-app",
      "org": "my-org",
      "space": "my-space"
    }
  }
]
`))
	})

	Context("when an app has a single web process", func() {
		It("renders the same bytes in both modes", func() {
			app := deploying(3, -1)
			Expect(targets.RenderWith(app, targets.Options{PaaSDomain: "paas.example", Addressing: targets.ProcessAddressing})).
				To(Equal(targets.Render(app, "paas.example")))
		})
	})

	Context("in process addressing", func() {
		It("keeps every other label of app addressing in each group", func() {
			for _, g := range targets.GroupsWith(deploying(1, 1), targets.Options{PaaSDomain: "paas.example", Addressing: targets.ProcessAddressing}) {
				index := g.Labels["__param_cf_app_instance_index"]
				Expect(g.Labels).To(HaveKeyWithValue("__param_cf_app_guid", appGUID))
				Expect(g.Labels).To(HaveKeyWithValue("__param_cf_app_instance", appGUID+":"+index))
				Expect(g.Labels).To(HaveKeyWithValue("job", "my-app"))
				Expect(g.Labels).To(HaveKeyWithValue("org", "my-org"))
				Expect(g.Labels).To(HaveKeyWithValue("space", "my-space"))
				Expect(g.Targets).To(Equal([]string{"my-app.example.com"}))
			}
		})

		It("takes the newest process by created_at, whatever the order it is given in", func() {
			app := deploying(2, 1)
			reversed := app
			reversed.Processes = []targets.Process{app.Processes[1], app.Processes[0]}
			Expect(targets.RenderWith(reversed, targets.Options{PaaSDomain: "paas.example", Addressing: targets.ProcessAddressing})).
				To(Equal(targets.RenderWith(app, targets.Options{PaaSDomain: "paas.example", Addressing: targets.ProcessAddressing})))
			Expect(summary(targets.GroupsWith(reversed, targets.Options{PaaSDomain: "paas.example", Addressing: targets.ProcessAddressing}))[0]).To(Equal("app:0 new:0"))
		})

		It("breaks a created_at tie by guid, so the choice is stable", func() {
			app := deploying(1, 1)
			app.Processes[0].CreatedAt = app.Processes[1].CreatedAt
			Expect(summary(targets.GroupsWith(app, targets.Options{PaaSDomain: "paas.example", Addressing: targets.ProcessAddressing}))).
				To(Equal([]string{"app:0 new:0", "old:0 old:0"}))
		})

		It("names every older process's instances by process when a deployment replaced another", func() {
			app := deploying(1, 1)
			app.Processes = append(app.Processes, targets.Process{GUID: thirdProcess, Instances: 1, CreatedAt: deployStart.Add(time.Minute)})
			groups := targets.GroupsWith(app, targets.Options{PaaSDomain: "paas.example", Addressing: targets.ProcessAddressing})
			Expect(summary(groups)).To(Equal([]string{"app:0 third:0", "new:0 new:0", "old:0 old:0"}))
			expectDistinctLabelSets(groups)
		})
	})
})
