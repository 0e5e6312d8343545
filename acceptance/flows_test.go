package acceptance_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/store"
)

const settle = "30s"

var _ = Describe("the whole chain, as tenants and operators see it", func() {
	It("1. binds as Cloud Controller does: every instance is up with the right labels", func() {
		app := pushApp("orders", 2)
		bind(app)
		Eventually(everyPrometheus(upInstances("orders"), Equal(instances(app.GUID, 2))), settle).Should(Succeed())
		for _, p := range w.proms {
			Expect(p.targets("orders")).To(HaveEach(And(
				HaveField("Labels", And(HaveKeyWithValue("org", "tenant-org"), HaveKeyWithValue("space", "tenant-space"),
					HaveKeyWithValue("job", "orders"))),
				HaveField("ScrapeURL", MatchRegexp(`^http://orders\.apps\.example\.com(:80)?/metrics\?cf_app_guid=`+app.GUID)),
			)), "Prometheus %s", p.version)
		}
		for _, instance := range instances(app.GUID, 2) {
			Eventually(everyPrometheus(values(`up{instance="`+instance+`"}`), Equal([]string{"1"})), settle).Should(Succeed())
		}
	})

	It("2. follows scaling: 2 to 3 instances, then to 0", func() {
		app := pushApp("basket", 2)
		bind(app)
		Eventually(everyPrometheus(upInstances("basket"), Equal(instances(app.GUID, 2))), settle).Should(Succeed())
		Expect(w.cf.Scale(app.GUID, 3)).To(Succeed())
		reconcile()
		Eventually(everyPrometheus(upInstances("basket"), Equal(instances(app.GUID, 3))), settle).Should(Succeed())
		Expect(w.cf.Scale(app.GUID, 0)).To(Succeed())
		reconcile()
		Eventually(everyPrometheus(targetsOf("basket"), BeEmpty()), settle).Should(Succeed())
	})

	It("3. takes a stopped app out of Prometheus and brings it back when started", func() {
		app := pushApp("payments", 1)
		bind(app)
		Eventually(everyPrometheus(upInstances("payments"), Equal(instances(app.GUID, 1))), settle).Should(Succeed())
		Expect(w.cf.StopApp(app.GUID)).To(Succeed())
		reconcile()
		Eventually(everyPrometheus(targetsOf("payments"), BeEmpty()), settle).Should(Succeed())
		Expect(w.st.List(context.Background(), store.InactivePrefix)).To(ContainElement(HaveField("Key", "inactive/"+app.GUID+".json")))
		Expect(w.cf.StartApp(app.GUID)).To(Succeed())
		reconcile()
		Eventually(everyPrometheus(upInstances("payments"), Equal(instances(app.GUID, 1))), settle).Should(Succeed())
	})

	It("4. keeps the job through a blue-green deploy and leaves no stale target", func() {
		old := pushApp("catalogue", 2)
		oldBinding := bind(old)
		Eventually(everyPrometheus(upInstances("catalogue"), Equal(instances(old.GUID, 2))), settle).Should(Succeed())

		Expect(w.cf.Rename(old.GUID, "catalogue-venerable")).To(Succeed())
		reconcile()
		fresh := addApp("catalogue", 2)
		_, err := w.cf.AddRoute(fakecf.Route{Host: "catalogue-green", DomainGUID: w.domain.GUID, Destinations: []fakecf.Destination{{AppGUID: fresh.GUID}}})
		Expect(err).NotTo(HaveOccurred())
		bind(fresh)
		Eventually(everyPrometheus(upInstances("catalogue"), ConsistOf(append(instances(old.GUID, 2), instances(fresh.GUID, 2)...))), settle).Should(Succeed())

		// `cf delete catalogue-venerable`: Cloud Controller unbinds, then deletes.
		unbind(oldBinding)
		Expect(w.cf.DeleteApp(old.GUID)).To(Succeed())
		reconcile()
		Eventually(everyPrometheus(targetsOf("catalogue"), HaveLen(2)), settle).Should(Succeed())
		Eventually(everyPrometheus(upInstances("catalogue"), Equal(instances(fresh.GUID, 2))), settle).Should(Succeed())
		Expect(targetKeys()).NotTo(ContainElement(ContainSubstring(old.GUID)), "a stale target file")
	})

	It("5. follows a route change, and guesses the target of an app with no route", func() {
		app := pushApp("search", 1)
		bind(app)
		lonely := addApp("worker", 1)
		bind(lonely)
		Eventually(everyPrometheus(upInstances("search"), Equal(instances(app.GUID, 1))), settle).Should(Succeed())
		Eventually(everyPrometheus(upInstances("worker"), Equal(instances(lonely.GUID, 1))), settle).Should(Succeed())
		for _, p := range w.proms {
			Expect(p.targets("worker")).To(ConsistOf(HaveField("ScrapeURL", MatchRegexp(`^http://worker\.paas\.example(:80)?/metrics\?`))),
				"Prometheus %s", p.version)
		}

		_, err := w.cf.AddRoute(fakecf.Route{Host: "search-ops", DomainGUID: w.domain.GUID, Path: "/ops/metrics",
			Destinations: []fakecf.Destination{{AppGUID: app.GUID}}})
		Expect(err).NotTo(HaveOccurred())
		reconcile()
		upScrapeURL := func(p *promServer) string {
			for _, t := range p.targets("search") {
				if t.Health == "up" {
					return t.ScrapeURL
				}
			}
			return ""
		}
		Eventually(everyPrometheus(upScrapeURL, MatchRegexp(`^http://search-ops\.apps\.example\.com(:80)?/ops/metrics\?`)), settle).Should(Succeed())
	})

	It("6. unbinds, refuses service keys, and keeps an app with another binding", func() {
		app := pushApp("accounts", 1)
		first := bind(app)
		second := bind(app)
		Eventually(everyPrometheus(upInstances("accounts"), Equal(instances(app.GUID, 1))), settle).Should(Succeed())
		// The file Prometheus reads stays, through the unbind and the next
		// reconcile alike.
		synced := filepath.Join(w.targetsDir, app.GUID+".json")
		unbind(first)
		Expect(synced).To(BeAnExistingFile())
		reconcile()
		Expect(synced).To(BeAnExistingFile())
		for _, p := range w.proms {
			Expect(upInstances("accounts")(p)).To(Equal(instances(app.GUID, 1)), "Prometheus %s", p.version)
		}
		unbind(second)
		Eventually(everyPrometheus(targetsOf("accounts"), BeEmpty()), settle).Should(Succeed())

		r := w.cc.CreateServiceKey(instanceID, newBinding())
		Expect(r.Status).To(Equal(http.StatusUnprocessableEntity))
		Expect(r.Body).To(HaveKeyWithValue("error", "RequiresApp"))
	})

	It("7. takes over a bucket written by the Ruby service", func() {
		ctx := context.Background()
		app := pushApp("legacy", 2)
		binding := newBinding()
		_, err := w.cf.AddBinding(fakecf.Binding{GUID: binding, AppGUID: app.GUID, PlanGUID: w.plan.GUID})
		Expect(err).NotTo(HaveOccurred())
		// As the Ruby service wrote it: one instance (it has since scaled),
		// no binding record.
		ruby := `[
  {
    "targets": [
      "legacy.apps.example.com"
    ],
    "labels": {
      "__param_cf_app_guid": "` + app.GUID + `",
      "__param_cf_app_instance_index": "0",
      "__param_cf_app_instance": "` + app.GUID + `:0",
      "instance": "` + app.GUID + `:0",
      "job": "legacy",
      "org": "tenant-org",
      "space": "tenant-space"
    }
  }
]`
		key, _ := store.TargetKey(app.GUID, true)
		_, err = w.st.Put(ctx, key, []byte(ruby), store.Condition{})
		Expect(err).NotTo(HaveOccurred())
		syncTargets()
		Eventually(everyPrometheus(upInstances("legacy"), Equal(instances(app.GUID, 1))), settle).Should(Succeed())

		reconcile()
		Eventually(everyPrometheus(upInstances("legacy"), Equal(instances(app.GUID, 2))), settle).Should(Succeed())
		record, _ := store.BindingKey(binding)
		_, _, err = w.st.Get(ctx, record)
		Expect(err).NotTo(HaveOccurred(), "the binding was adopted")

		unbind(binding)
		Eventually(everyPrometheus(targetsOf("legacy"), BeEmpty()), settle).Should(Succeed())
	})

	It("never writes a credential to a log", func() {
		reconcile()
		logs := w.logs.String()
		Expect(logs).NotTo(BeEmpty())
		for _, secret := range []string{brokerPassword, uaaPassword, awsSecret, sdPassword} {
			Expect(strings.Contains(logs, secret)).To(BeFalse(), "a log line contains a secret")
		}
		Expect(logs).NotTo(MatchRegexp(`(?i)bearer [a-z0-9._-]{16,}`))
	})
})
