package targets_test

import (
	"reflect"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("InputsDigest", func() {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	app := func() targets.App {
		return targets.App{
			GUID: "a", Name: "n", State: "STARTED", Org: "o", Space: "s",
			Processes:   []targets.Process{{GUID: "p", Instances: 2, CreatedAt: t0}},
			Routes:      []targets.Route{{Host: "h", Domain: "d", Path: "/p", Protocol: "http1", Port: 8080}},
			Annotations: map[string]string{"k": "v"},
		}
	}
	options := func() targets.Options {
		return targets.Options{PaaSDomain: "paas", Addressing: targets.AppAddressing, Settings: targets.Settings{
			Path: "/m", Port: 8080, ScrapeInterval: time.Minute, ScrapeTimeout: time.Second, Job: "j",
			Labels: map[string]string{"l": "v"},
		}}
	}

	It("is the same for the same inputs, whatever the order of their maps", func() {
		a, o := app(), options()
		a.Annotations = map[string]string{"x": "1", "y": "2", "z": "3"}
		b := app()
		b.Annotations = map[string]string{"z": "3", "y": "2", "x": "1"}
		Expect(targets.InputsDigest(a, o)).To(Equal(targets.InputsDigest(b, o)))
	})

	It("covers every field the rendering reads", func() {
		// A field added to these types must be added to InputsDigest, and
		// a case below: a file rendered from it would otherwise not follow
		// its changes.
		Expect(reflect.TypeFor[targets.App]().NumField()).To(Equal(8))
		Expect(reflect.TypeFor[targets.Process]().NumField()).To(Equal(3))
		Expect(reflect.TypeFor[targets.Route]().NumField()).To(Equal(6))
		Expect(reflect.TypeFor[targets.Options]().NumField()).To(Equal(3))
		Expect(reflect.TypeFor[targets.Settings]().NumField()).To(Equal(6))
	})

	DescribeTable("changes with each of them",
		func(change func(a *targets.App, o *targets.Options)) {
			a, o := app(), options()
			before := targets.InputsDigest(a, o)
			change(&a, &o)
			Expect(targets.InputsDigest(a, o)).NotTo(Equal(before))
		},
		Entry("guid", func(a *targets.App, _ *targets.Options) { a.GUID = "b" }),
		Entry("name", func(a *targets.App, _ *targets.Options) { a.Name = "m" }),
		Entry("state", func(a *targets.App, _ *targets.Options) { a.State = "STOPPED" }),
		Entry("org", func(a *targets.App, _ *targets.Options) { a.Org = "p" }),
		Entry("space", func(a *targets.App, _ *targets.Options) { a.Space = "t" }),
		Entry("a process more", func(a *targets.App, _ *targets.Options) {
			a.Processes = append(a.Processes, targets.Process{GUID: "q", Instances: 1, CreatedAt: t0})
		}),
		Entry("process guid", func(a *targets.App, _ *targets.Options) { a.Processes[0].GUID = "q" }),
		Entry("instances", func(a *targets.App, _ *targets.Options) { a.Processes[0].Instances = 3 }),
		Entry("process creation", func(a *targets.App, _ *targets.Options) { a.Processes[0].CreatedAt = t0.Add(time.Second) }),
		Entry("a route less", func(a *targets.App, _ *targets.Options) { a.Routes = nil }),
		Entry("route host", func(a *targets.App, _ *targets.Options) { a.Routes[0].Host = "i" }),
		Entry("route domain", func(a *targets.App, _ *targets.Options) { a.Routes[0].Domain = "e" }),
		Entry("route path", func(a *targets.App, _ *targets.Options) { a.Routes[0].Path = "/q" }),
		Entry("route protocol", func(a *targets.App, _ *targets.Options) { a.Routes[0].Protocol = "tcp" }),
		Entry("internal route", func(a *targets.App, _ *targets.Options) { a.Routes[0].Internal = true }),
		Entry("route port", func(a *targets.App, _ *targets.Options) { a.Routes[0].Port = 9090 }),
		Entry("annotation value", func(a *targets.App, _ *targets.Options) { a.Annotations["k"] = "w" }),
		Entry("annotation key", func(a *targets.App, _ *targets.Options) { a.Annotations = map[string]string{"kk": "v"} }),
		Entry("paas domain", func(_ *targets.App, o *targets.Options) { o.PaaSDomain = "other" }),
		Entry("addressing", func(_ *targets.App, o *targets.Options) { o.Addressing = targets.ProcessAddressing }),
		Entry("settings path", func(_ *targets.App, o *targets.Options) { o.Settings.Path = "/n" }),
		Entry("settings port", func(_ *targets.App, o *targets.Options) { o.Settings.Port = 9090 }),
		Entry("scrape interval", func(_ *targets.App, o *targets.Options) { o.Settings.ScrapeInterval = 2 * time.Minute }),
		Entry("scrape timeout", func(_ *targets.App, o *targets.Options) { o.Settings.ScrapeTimeout = 2 * time.Second }),
		Entry("job", func(_ *targets.App, o *targets.Options) { o.Settings.Job = "k" }),
		Entry("labels", func(_ *targets.App, o *targets.Options) { o.Settings.Labels = map[string]string{"l": "w"} }),
		Entry("strings split differently", func(a *targets.App, _ *targets.Options) { a.Name, a.State = "nS", "TARTED" }),
	)
})
