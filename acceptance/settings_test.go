package acceptance_test

import (
	"context"
	"net/http"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/store"
)

// A tenant's settings as both Prometheus servers see them: bind parameters
// sent through Cloud Controller as `cf bind-service -c` sends them, and app
// annotations (`cf set-annotation`) that the next reconcile reads. The
// suite's jobs scrape every second with a 900ms timeout, so an interval or
// timeout a target reports can only have come from its settings.
var _ = Describe("tenant settings, as Prometheus sees them", func() {
	It("scrapes an app bound with parameters at their path and interval, with their label", func() {
		app := pushApp("ledger", 2)
		DeferCleanup(unbind, bindWith(app, map[string]any{
			"path": "/admin/metrics", "scrape_interval": "10s", "scrape_timeout": "5s",
			"labels": map[string]any{"team": "payments"},
		}))
		Eventually(everyPrometheus(upInstances("ledger"), Equal(instances(app.GUID, 2))), settle).Should(Succeed())
		for _, p := range w.proms {
			Expect(p.targets("ledger")).To(HaveEach(And(
				HaveField("ScrapeURL", MatchRegexp(`^http://ledger\.apps\.example\.com(:80)?/admin/metrics\?cf_app_guid=`+app.GUID)),
				HaveField("ScrapeInterval", "10s"),
				HaveField("ScrapeTimeout", "5s"),
				HaveField("Labels", And(HaveKeyWithValue("team", "payments"), HaveKeyWithValue("org", "tenant-org"))),
			)), "Prometheus %s", p.version)
		}
		// The label is on the series scraped, not only on the target.
		Eventually(everyPrometheus(values(`up{job="ledger",team="payments"}`), Equal([]string{"1", "1"})), settle).Should(Succeed())
	})

	It("follows the app's annotations at the next reconcile, and ignores a bad one without spoiling the rest", func() {
		// Annotated after the bind, so only the reconcile can write them.
		app := pushApp("invoices", 1)
		DeferCleanup(unbind, bind(app))
		Expect(w.cf.SetAnnotations(app.GUID, map[string]string{
			"prometheus.io/path": "/ops/metrics", "prometheus.io/job": "billing",
		})).To(Succeed())
		reconcile()
		Eventually(everyPrometheus(upScrapeURLs("billing"), ConsistOf(
			MatchRegexp(`^http://invoices\.apps\.example\.com(:80)?/ops/metrics\?cf_app_guid=`+app.GUID),
		)), settle).Should(Succeed())
		Eventually(everyPrometheus(targetsOf("invoices"), BeEmpty()), settle).Should(Succeed())

		// A relative path: the route's path applies again, the job
		// annotation still does.
		Expect(w.cf.SetAnnotations(app.GUID, map[string]string{"prometheus.io/path": "ops/metrics"})).To(Succeed())
		reconcile()
		Eventually(everyPrometheus(upScrapeURLs("billing"), ConsistOf(
			MatchRegexp(`^http://invoices\.apps\.example\.com(:80)?/metrics\?cf_app_guid=`+app.GUID),
		)), settle).Should(Succeed())
		for _, p := range w.proms {
			Expect(p.targets("billing")).To(ConsistOf(HaveField("Labels", And(
				HaveKeyWithValue("instance", app.GUID+":0"),
				HaveKeyWithValue("org", "tenant-org"), HaveKeyWithValue("space", "tenant-space"),
			))), "Prometheus %s", p.version)
		}
		Expect(logLines("invalid-annotation", app.GUID, `"key":"prometheus.io/path"`)).NotTo(BeEmpty())
	})

	DescribeTable("refuses a bind with invalid parameters, naming each bad key and its accepted form, and writes nothing",
		func(parameters map[string]any, reasons map[string]string) {
			app := pushApp("refused", 1)
			before := bucketContents()
			binding := newBinding()
			r := w.cc.BindWithParameters(instanceID, binding, app.GUID, parameters)
			Expect(r.Status).To(Equal(http.StatusBadRequest), r.Raw)
			Expect(r.Body).To(HaveKeyWithValue("description", HavePrefix("invalid bind parameters: ")))
			for key, reason := range reasons {
				Expect(r.Body["description"]).To(ContainSubstring(`"`+key+`": `+reason), key)
			}
			record, _ := store.BindingKey(binding)
			_, _, err := w.st.Get(context.Background(), record)
			Expect(err).To(MatchError(store.ErrNotFound), "a binding record")
			Expect(targetKeys()).NotTo(ContainElement(ContainSubstring(app.GUID)), "a target file")
			Expect(bucketContents()).To(Equal(before))
		},
		Entry("a relative path, an interval that is no duration, an unknown key",
			map[string]any{"path": "admin/metrics", "scrape_interval": "fast", "colour": "blue"},
			map[string]string{"path": "expected an absolute path", "scrape_interval": "expected a Prometheus duration",
				"colour": "not a parameter"}),
		Entry("a timeout over the interval",
			map[string]any{"scrape_interval": "10s", "scrape_timeout": "20s"},
			map[string]string{"scrape_timeout": "exceeds scrape_interval"}),
		Entry("a label name Prometheus keeps for itself",
			map[string]any{"labels": map[string]any{"__address__": "elsewhere"}},
			map[string]string{"labels": "expected an object of at most 10 extra target labels"}),
		Entry("a port no route of the app serves",
			map[string]any{"port": 9090},
			map[string]string{"port": "no route of the app reaches that port"}),
	)

	It("refuses a second binding whose parameters disagree with the first's, saying how to resolve it", func() {
		app := pushApp("receipts", 1)
		first := bindWith(app, map[string]any{"path": "/admin/metrics"})
		DeferCleanup(unbind, first)
		before := bucketContents()
		r := w.cc.BindWithParameters(instanceID, newBinding(), app.GUID, map[string]any{"path": "/ops/metrics"})
		Expect(r.Status).To(Equal(http.StatusBadRequest), r.Raw)
		Expect(r.Body["description"]).To(And(ContainSubstring("path"), ContainSubstring("unbind binding "+first)))
		Expect(bucketContents()).To(Equal(before))
	})
})

// bindWith binds app with bind parameters as Cloud Controller does and
// syncs the targets.
func bindWith(app fakecf.App, parameters map[string]any) string {
	binding := newBinding()
	r := w.cc.BindWithParameters(instanceID, binding, app.GUID, parameters)
	ExpectWithOffset(1, r.Status).To(Equal(http.StatusCreated), r.Raw)
	syncTargets()
	return binding
}

// upScrapeURLs is, for everyPrometheus, the scrape URLs of job's targets
// that Prometheus scraped successfully.
func upScrapeURLs(job string) func(*promServer) []string {
	return func(p *promServer) []string {
		var out []string
		for _, t := range p.targets(job) {
			if t.Health == "up" {
				out = append(out, t.ScrapeURL)
			}
		}
		return out
	}
}

// bucketContents is every record and target file in the bucket, with its
// ETag.
func bucketContents() map[string]string {
	out := map[string]string{}
	for _, prefix := range []string{store.ActivePrefix, store.InactivePrefix, store.BindingPrefix, store.InstancePrefix} {
		objects, err := w.st.List(context.Background(), prefix)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		for _, o := range objects {
			out[o.Key] = o.ETag
		}
	}
	return out
}

// logLines are the programs' log lines that contain every one of parts.
func logLines(parts ...string) []string {
	var out []string
	for line := range strings.Lines(w.logs.String()) {
		if !slices.ContainsFunc(parts, func(part string) bool { return !strings.Contains(line, part) }) {
			out = append(out, line)
		}
	}
	return out
}
