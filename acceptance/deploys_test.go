package acceptance_test

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/targets"
)

// A rolling or canary deploy runs two web processes of one app, each
// numbering its instances from 0. The router's instances say which one
// answered (app_instance_info{process,index}), so these specs see, through
// the real Prometheus servers, which instance every target reaches. The
// world's broker renders in app addressing; the updater runs in the
// addressing of the entry, and the app is unbound at the end so that the
// other specs find the bucket as app addressing writes it.
var _ = Describe("rolling and canary deploys, scraped through paas-proxy and the router", func() {
	DescribeTable("through every step of a rolling deploy, and a paused canary",
		func(mode targets.Addressing, name string) {
			app := pushApp(name, 3)
			binding := bind(app)
			DeferCleanup(func() {
				unbind(binding)
				Expect(w.cf.DeleteApp(app.GUID)).To(Succeed())
			})
			deploy := func(strategy string) func() error {
				return func() error { _, err := w.cf.Deploy(app.GUID, strategy); return err }
			}
			step := func() error { _, err := w.cf.StepDeployment(app.GUID); return err }
			steps := []struct {
				what      string
				act       []func() error
				instances []int // of the web processes, oldest first
			}{
				{"a rolling deploy starts", []func() error{deploy(fakecf.Rolling)}, []int{3, 1}},
				{"it moves one instance over", []func() error{step}, []int{2, 2}},
				{"it ends: the old process is destroyed", []func() error{
					func() error { _, err := w.cf.FinishDeployment(app.GUID); return err },
				}, []int{3}},
				{"a canary pauses", []func() error{deploy(fakecf.Canary), step}, []int{3, 1}},
			}
			// Every step changes what the targets reach, in either
			// addressing, so no step passes on the scrapes of the one before.
			for _, s := range steps {
				By(s.what)
				for _, act := range s.act {
					Expect(act()).To(Succeed())
				}
				processes, err := w.cf.WebProcesses(app.GUID)
				Expect(err).NotTo(HaveOccurred())
				var counts []int
				for _, p := range processes {
					counts = append(counts, p.Instances)
				}
				Expect(counts).To(Equal(s.instances))

				reconcile("INSTANCE_ADDRESSING=" + string(mode))
				Eventually(everyPrometheus(reached(name), ConsistOf(wantReached(mode, app.GUID, processes))), settle, "200ms").
					Should(Succeed())
			}
		},
		Entry("process addressing: every running instance of every web process, once",
			targets.ProcessAddressing, "stock"),
		Entry("app addressing: one target per index of the largest web process, reaching one of the instances with that index",
			targets.AppAddressing, "stock-app-addressed"),
	)
})

// reached is, for everyPrometheus, each of job's targets as "<instance
// label> <health> <instances answering>", where the instances are those
// the target's app_instance_info named ("<process_guid>:<index>", sorted)
// in the last two seconds: two scrapes, so that a target reaching one
// instance then another shows both. A scraped instance whose series no
// target carries shows as "<instance label> none <instances>".
func reached(job string) func(*promServer) []string {
	return func(p *promServer) []string {
		answered := map[string][]string{}
		for _, s := range p.series(`app_instance_info{job="` + job + `"}[2s]`) {
			answered[s["instance"]] = append(answered[s["instance"]], s["process"]+":"+s["index"])
		}
		var out []string
		for _, t := range p.targets(job) {
			label := t.Labels["instance"]
			sort.Strings(answered[label])
			out = append(out, fmt.Sprintf("%s %s %s", label, t.Health, strings.Join(answered[label], ",")))
			delete(answered, label)
		}
		for label, in := range answered {
			out = append(out, fmt.Sprintf("%s none %s", label, strings.Join(in, ",")))
		}
		sort.Strings(out)
		return out
	}
}

// wantReached is what reached should give for an app whose web processes
// (oldest first, as the CF API lists them) are processes, as README's
// "Rolling and canary deploys" describes each addressing. In process
// addressing with several processes, every instance of every process has
// a target of its own: the newest process's are "<app_guid>:<index>", the
// others' "<process_guid>:<index>" ("<app_guid>:<index>:old" for the
// app's first process, whose guid is the app's). Otherwise one target per
// index below the largest instance count, "<app_guid>:<index>", which the
// router sends to the newest process that has that index.
func wantReached(mode targets.Addressing, appGUID string, processes []fakecf.Process) []string {
	var out []string
	newest := processes[len(processes)-1]
	if mode == targets.ProcessAddressing && len(processes) > 1 {
		for _, p := range processes {
			for i := range p.Instances {
				label := fmt.Sprintf("%s:%d", p.GUID, i)
				switch p.GUID {
				case newest.GUID:
					label = fmt.Sprintf("%s:%d", appGUID, i)
				case appGUID:
					label += ":old"
				}
				out = append(out, fmt.Sprintf("%s up %s:%d", label, p.GUID, i))
			}
		}
		return out
	}
	largest := 0
	for _, p := range processes {
		largest = max(largest, p.Instances)
	}
	for i := range largest {
		for j := len(processes) - 1; j >= 0; j-- {
			if p := processes[j]; i < p.Instances {
				out = append(out, fmt.Sprintf("%s:%d up %s:%d", appGUID, i, p.GUID, i))
				break
			}
		}
	}
	return out
}

// series returns the label sets of the instant query q's series.
func (p *promServer) series(q string) []map[string]string {
	var body struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if p.get("/api/v1/query?query="+url.QueryEscape(q), &body) != nil {
		return nil
	}
	var out []map[string]string
	for _, r := range body.Data.Result {
		out = append(out, r.Metric)
	}
	return out
}
