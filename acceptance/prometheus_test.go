package acceptance_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	gomegatypes "github.com/onsi/gomega/types"
	"gopkg.in/yaml.v3"
)

// The suite runs two Prometheus servers side by side: Debian's 2.x and the
// 3.x that scripts/test-tools.sh builds from the Go module. Each scrapes
// with the paas-apps job of its example configuration in docs/prometheus,
// reads the same synced target files and scrapes through the same
// paas-proxy; every spec that looks at Prometheus checks both, through the
// API only (a build from the Go module has no web UI). The http_sd specs
// run two more, with the job of the http_sd examples (httpsd_test.go).

// promServer is one Prometheus the suite runs.
type promServer struct {
	version string // as its build information gives it, e.g. 3.16.0
	url     string
}

// userAgent is the User-Agent its scrapes carry.
func (p *promServer) userAgent() string {
	return "Prometheus/" + p.version
}

// jobVariant is a scrape job a spec adds beside the documented one: it
// scrapes the targets of one app under the job label job, with changes
// made to the documented job's settings (a nil value removes a key).
type jobVariant struct {
	app, job string
	changes  map[string]any
}

func startPrometheuses() {
	two, three := prometheusBinaries()
	w.proms = []*promServer{
		startPrometheus(two, filesJob("prometheus-2.yml"), nil),
		startPrometheus(three, filesJob("prometheus.yml"), prometheus3Variants),
	}
}

// prometheusBinaries returns the paths of Debian's Prometheus 2.x and of
// the 3.x scripts/test-tools.sh builds, and fails when one is missing.
func prometheusBinaries() (two, three string) {
	two, err := exec.LookPath("prometheus")
	if err != nil {
		Fail("the acceptance suite needs Prometheus 2.x: `make test` installs Debian's prometheus package")
	}
	out, err := exec.Command("../scripts/test-tools.sh", "--no-build", "prometheus").Output()
	if err != nil {
		Fail(fmt.Sprintf("the acceptance suite needs Prometheus 3 (%v): %s", err, exitMessage(err)))
	}
	return two, strings.TrimSpace(string(out))
}

// appsJob returns the paas-apps job of docs/prometheus/<example>,
// scraping through the suite's paas-proxy.
func appsJob(example string) map[string]any {
	apps := documentedJob(example, "paas-apps")
	apps["proxy_url"] = "http://127.0.0.1:" + w.proxyPort
	return apps
}

// filesJob returns the paas-apps job of the file_sd example
// docs/prometheus/<example>, reading the suite's synced target files.
func filesJob(example string) map[string]any {
	apps := appsJob(example)
	ExpectWithOffset(1, apps).To(HaveKey("file_sd_configs"))
	apps["file_sd_configs"] = []any{map[string]any{"files": []string{w.targetsDir + "/*.json"}, "refresh_interval": "1s"}}
	return apps
}

// startPrometheus runs the Prometheus at path with the scrape job apps
// and the variants of it.
func startPrometheus(path string, apps map[string]any, variants []jobVariant) *promServer {
	jobs := []any{apps}
	for _, v := range variants {
		job := maps.Clone(apps)
		job["job_name"] = v.job
		relabel, _ := job["relabel_configs"].([]any)
		job["relabel_configs"] = append(slices.Clone(relabel),
			map[string]any{"source_labels": []string{"job"}, "regex": v.app, "action": "keep"},
			map[string]any{"target_label": "job", "replacement": v.job})
		for k, value := range v.changes {
			if value == nil {
				delete(job, k)
			} else {
				job[k] = value
			}
		}
		jobs = append(jobs, job)
	}
	config, err := yaml.Marshal(map[string]any{
		"global":         map[string]any{"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
		"scrape_configs": jobs,
	})
	Expect(err).NotTo(HaveOccurred())
	dir := GinkgoT().TempDir()
	Expect(os.WriteFile(filepath.Join(dir, "prometheus.yml"), config, 0o644)).To(Succeed())
	port := freePort()
	start(path, io.Discard, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address=127.0.0.1:"+port)
	p := &promServer{url: "http://127.0.0.1:" + port}
	waitHealthy(p.url + "/-/ready")
	var info struct {
		Data struct {
			Version string `json:"version"`
		} `json:"data"`
	}
	Expect(p.get("/api/v1/status/buildinfo", &info)).To(Succeed())
	p.version = info.Data.Version
	Expect(p.version).NotTo(BeEmpty())
	return p
}

// documentedJob returns the scrape job named name in the example
// configuration docs/prometheus/<example>.
func documentedJob(example, name string) map[string]any {
	data, err := os.ReadFile(filepath.Join("..", "docs", "prometheus", example))
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	var doc struct {
		ScrapeConfigs []map[string]any `yaml:"scrape_configs"`
	}
	ExpectWithOffset(1, yaml.Unmarshal(data, &doc)).To(Succeed())
	for _, job := range doc.ScrapeConfigs {
		if job["job_name"] == name {
			return job
		}
	}
	Fail(fmt.Sprintf("docs/prometheus/%s has no job %s", example, name))
	return nil
}

// prometheus3 is the Prometheus 3 the suite runs.
func prometheus3() *promServer {
	for _, p := range w.proms {
		if strings.HasPrefix(p.version, "3.") {
			return p
		}
	}
	Fail("the suite runs no Prometheus 3")
	return nil
}

// get decodes the JSON answer of Prometheus' API to path into v.
func (p *promServer) get(path string, v any) error {
	resp, err := http.Get(p.url + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// promTarget is one target as Prometheus' API reports it.
type promTarget struct {
	Labels    map[string]string `json:"labels"`
	Health    string            `json:"health"`
	ScrapeURL string            `json:"scrapeUrl"`
	LastError string            `json:"lastError"`
	// ScrapeInterval and ScrapeTimeout are the target's own, e.g. "10s".
	ScrapeInterval string `json:"scrapeInterval"`
	ScrapeTimeout  string `json:"scrapeTimeout"`
}

// targets returns the Prometheus' active targets whose job is job.
func (p *promServer) targets(job string) []promTarget {
	var body struct {
		Data struct {
			ActiveTargets []promTarget `json:"activeTargets"`
		} `json:"data"`
	}
	if p.get("/api/v1/targets?state=active", &body) != nil {
		return nil
	}
	var out []promTarget
	for _, t := range body.Data.ActiveTargets {
		if t.Labels["job"] == job {
			out = append(out, t)
		}
	}
	return out
}

// values returns the values of the instant query q's samples, sorted.
func (p *promServer) values(q string) []string {
	var body struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if p.get("/api/v1/query?query="+url.QueryEscape(q), &body) != nil {
		return nil
	}
	var out []string
	for _, r := range body.Data.Result {
		if len(r.Value) == 2 {
			v, _ := r.Value[1].(string)
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// everyPrometheus returns a function for Eventually that checks, on every
// Prometheus the suite runs with file_sd, what actual reports against
// matcher.
func everyPrometheus[T any](actual func(*promServer) T, matcher gomegatypes.GomegaMatcher) func(Gomega) {
	return every(w.proms, actual, matcher)
}

// every is everyPrometheus for the Prometheus servers proms.
func every[T any](proms []*promServer, actual func(*promServer) T, matcher gomegatypes.GomegaMatcher) func(Gomega) {
	return func(g Gomega) {
		for _, p := range proms {
			g.Expect(actual(p)).To(matcher, "Prometheus %s", p.version)
		}
	}
}

// targetsOf is, for everyPrometheus, the targets whose job is job.
func targetsOf(job string) func(*promServer) []promTarget {
	return func(p *promServer) []promTarget { return p.targets(job) }
}

// upInstances is, for everyPrometheus, the instance labels of job's
// targets that Prometheus scraped successfully, sorted.
func upInstances(job string) func(*promServer) []string {
	return func(p *promServer) []string {
		var out []string
		for _, t := range p.targets(job) {
			if t.Health == "up" {
				out = append(out, t.Labels["instance"])
			}
		}
		sort.Strings(out)
		return out
	}
}

// values is, for everyPrometheus, the values of the query q's samples.
func values(q string) func(*promServer) []string {
	return func(p *promServer) []string { return p.values(q) }
}

// exitMessage is what a failed command said on stderr.
func exitMessage(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return strings.TrimSpace(string(exit.Stderr))
	}
	return ""
}
