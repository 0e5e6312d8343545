package acceptance_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/httpsd"
)

// A Prometheus host without the bucket sync: a Prometheus 2.x and a 3 run
// with only the paas-apps job of the http_sd examples in docs/prometheus,
// asking the suite's broker for their targets every 2 s (the broker
// refreshes its view every second) and scraping through the suite's
// paas-proxy. The targets' hosts resolve nowhere: a target is up only when
// its scrapes went through paas-proxy to the router.
var _ = Describe("http_sd: Prometheus hosts that ask the broker for their targets", Ordered, func() {
	var (
		proms       []*promServer
		shop, stock fakecf.App
		shopBinding string
	)

	BeforeAll(func() {
		two, three := prometheusBinaries()
		proms = []*promServer{
			startPrometheus(two, brokerJob("prometheus-httpsd-2.yml"), nil),
			startPrometheus(three, brokerJob("prometheus-httpsd.yml"), nil),
		}
		shop = pushApp("sd-shop", 2)
		stock = pushApp("sd-stock", 1)
	})

	It("discovers the instances of bound apps and scrapes each through paas-proxy", func() {
		shopBinding = bind(shop)
		bind(stock)
		Eventually(every(proms, upInstances("sd-shop"), Equal(instances(shop.GUID, 2))), settle).Should(Succeed())
		Eventually(every(proms, upInstances("sd-stock"), Equal(instances(stock.GUID, 1))), settle).Should(Succeed())
		for _, p := range proms {
			Expect(p.targets("sd-shop")).To(HaveEach(And(
				HaveField("Labels", And(HaveKeyWithValue("org", "tenant-org"), HaveKeyWithValue("space", "tenant-space"))),
				HaveField("ScrapeURL", MatchRegexp(`^http://sd-shop\.apps\.example\.com(:80)?/metrics\?cf_app_guid=`+shop.GUID)),
			)), "Prometheus %s", p.version)
		}
		Eventually(every(proms, values(`app_instance_info{job="sd-shop",name="sd-shop"}`), Equal([]string{"1", "1"})), settle).Should(Succeed())
	})

	It("follows a scale once the updater has written it", func() {
		Expect(w.cf.Scale(shop.GUID, 3)).To(Succeed())
		reconcile()
		Eventually(every(proms, upInstances("sd-shop"), Equal(instances(shop.GUID, 3))), settle).Should(Succeed())
	})

	It("keeps every target while the bucket fails: the broker answers its last good view", func() {
		code, lastGood, _ := sdAnswer()
		Expect(code).To(Equal(http.StatusOK))
		Expect(sdInstances(lastGood, "sd-shop")).To(Equal(instances(shop.GUID, 3)))

		failures := func() (float64, error) {
			return metricValue(w.brokerURL+"/metrics", "cf_app_discovery_httpsd_refresh_errors_total", nil)
		}
		before, err := failures()
		Expect(err).NotTo(HaveOccurred())
		w.s3Faults.set(&s3Fault{mode: "500"})
		failing := time.Now()
		DeferCleanup(w.s3Faults.set, (*s3Fault)(nil))
		Eventually(failures, settle).Should(BeNumerically(">", before), "a refresh of the view failed")

		// What each Prometheus does with the answers it gets from now on
		// shows once a scrape pool sync has followed a refresh made after
		// the failure. Discovery hands its groups to the scrape manager at
		// most every 5 s, and the scrape manager syncs its pools at most
		// every 5 s: of two syncs after a refresh, the second saw it.
		Eventually(sdRefreshes.grown(sdRefreshes.now(proms), 1), settle).Should(Succeed())
		Eventually(poolSyncs.grown(poolSyncs.now(proms), 2), settle).Should(Succeed())
		every(proms, upInstances("sd-shop"), Equal(instances(shop.GUID, 3)))(Default)
		every(proms, upInstances("sd-stock"), Equal(instances(stock.GUID, 1)))(Default)

		code, during, age := sdAnswer()
		Expect(code).To(Equal(http.StatusOK))
		Expect(during).To(MatchJSON(lastGood))
		// The view last read the bucket before it failed (the header is in
		// whole seconds).
		Expect(strconv.Atoi(age)).To(BeNumerically(">=", int(time.Since(failing).Seconds())-1), "the view says how old it is")
	})

	It("drops an unbound app at the next refresh, and keeps the others", func() {
		unbind(shopBinding)
		Eventually(every(proms, targetsOf("sd-shop"), BeEmpty()), settle).Should(Succeed())
		Eventually(every(proms, upInstances("sd-stock"), Equal(instances(stock.GUID, 1))), settle).Should(Succeed())
	})
})

// brokerJob returns the paas-apps job of the http_sd example
// docs/prometheus/<example>, asking the suite's broker with its SD
// credentials every 2 s.
func brokerJob(example string) map[string]any {
	apps := appsJob(example)
	ExpectWithOffset(1, apps).NotTo(HaveKey("file_sd_configs"))
	ExpectWithOffset(1, apps["http_sd_configs"]).To(HaveLen(1))
	sd := apps["http_sd_configs"].([]any)[0].(map[string]any)
	sd["url"] = w.brokerURL + httpsd.Path
	sd["refresh_interval"] = "2s"
	passwordFile := filepath.Join(GinkgoT().TempDir(), "sd-password")
	ExpectWithOffset(1, os.WriteFile(passwordFile, []byte(sdPassword), 0o600)).To(Succeed())
	auth := sd["basic_auth"].(map[string]any)
	auth["username"] = sdUsername
	auth["password_file"] = passwordFile
	return apps
}

// sdAnswer asks the broker's http_sd endpoint as Prometheus does, and
// returns the status, the body and the view's age header.
func sdAnswer() (code int, body []byte, age string) {
	req, err := http.NewRequest(http.MethodGet, w.brokerURL+httpsd.Path, nil)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	req.SetBasicAuth(sdUsername, sdPassword)
	resp, err := http.DefaultClient.Do(req)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return resp.StatusCode, body, resp.Header.Get(httpsd.AgeHeader)
}

// sdInstances returns the instance labels of the groups of job in an
// http_sd answer, sorted.
func sdInstances(answer []byte, job string) []string {
	var groups []struct {
		Labels map[string]string `json:"labels"`
	}
	ExpectWithOffset(1, json.Unmarshal(answer, &groups)).To(Succeed())
	var out []string
	for _, g := range groups {
		if g.Labels["job"] == job {
			out = append(out, g.Labels["instance"])
		}
	}
	sort.Strings(out)
	return out
}

// selfMetric is one of Prometheus' own counters.
type selfMetric struct {
	name   string
	labels map[string]string
}

var (
	// sdRefreshes counts the target groups discovery received: one per
	// successful refresh of the http_sd job.
	sdRefreshes = selfMetric{"prometheus_sd_received_updates_total", map[string]string{"name": "scrape"}}
	// poolSyncs counts the syncs of the paas-apps scrape pool with the
	// groups discovery handed over.
	poolSyncs = selfMetric{"prometheus_target_scrape_pool_sync_total", map[string]string{"scrape_job": "paas-apps"}}
)

func (m selfMetric) of(p *promServer) (float64, error) {
	return metricValue(p.url+"/metrics", m.name, m.labels)
}

// now returns the counter's value on each of proms.
func (m selfMetric) now(proms []*promServer) map[*promServer]float64 {
	out := map[*promServer]float64{}
	for _, p := range proms {
		v, err := m.of(p)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		out[p] = v
	}
	return out
}

// grown returns a function for Eventually that checks that the counter
// has grown by at least n on each Prometheus since the values from.
func (m selfMetric) grown(from map[*promServer]float64, n float64) func(Gomega) {
	return func(g Gomega) {
		for p, v := range from {
			g.Expect(m.of(p)).To(BeNumerically(">=", v+n), "Prometheus %s: %s", p.version, m.name)
		}
	}
}

// metricValue returns the sum of the samples of the counter or gauge name
// on the /metrics page at url that carry labels (0 when there is none).
func metricValue(url, name string, labels map[string]string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, m := range families[name].GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		matches := true
		for k, v := range labels {
			matches = matches && got[k] == v
		}
		if matches {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum, nil
}
