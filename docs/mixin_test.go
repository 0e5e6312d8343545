package docs_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gopkg.in/yaml.v3"
)

// The monitoring mixin: the alert and recording rules in docs/prometheus
// and the Grafana dashboards in docs/prometheus/dashboards. These specs
// hold it to the code: every expression parses in both Prometheus versions
// the examples are written for, and names only metrics the programs
// register.

var (
	mixinRuleFiles = []string{"prometheus/alerts.yml", "prometheus/rules.yml"}
	dashboardFiles = "prometheus/dashboards/*.json"
)

// pendingMetrics are metrics the mixin already uses that other branches are
// adding to the programs, with the branch: docs/metrics.md does not list
// them yet. Once it lists one, a spec fails until it is removed from here.
var pendingMetrics = map[string]string{}

// prometheusSeries are the series Prometheus itself writes for every
// target it scrapes, which the mixin may name too.
var prometheusSeries = []string{"up", "scrape_duration_seconds"}

// grafanaSchemaVersion is the dashboard schema of current Grafana's
// classic JSON model, the one Grafana imports and provisions from files.
const grafanaSchemaVersion = 42

// grafanaVariables are the global variables the dashboards use, with a
// value Grafana could give them: Prometheus parses the result.
var grafanaVariables = map[string]string{
	"__rate_interval": "2m",
	"__interval":      "30s",
	"__range":         "6h",
}

var variablePattern = regexp.MustCompile(`\$(?:\{(\w+)\}|(\w+))`)

// expression is one PromQL expression of the mixin.
type expression struct {
	where  string // file and rule, or dashboard file, panel and target
	promql string // as Prometheus gets it: Grafana's variables replaced
}

// panel is the part of a Grafana panel the specs read.
type panel struct {
	ID         int              `json:"id"`
	Type       string           `json:"type"`
	Title      string           `json:"title"`
	Datasource *datasourceRef   `json:"datasource"`
	GridPos    map[string]int   `json:"gridPos"`
	Panels     []panel          `json:"panels"` // a collapsed row's
	Targets    []map[string]any `json:"targets"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dashboard is the part of a Grafana dashboard the specs read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// readDashboards reads every dashboard of the mixin, by file name.
func readDashboards() map[string]dashboard {
	paths, err := filepath.Glob(dashboardFiles)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	ExpectWithOffset(1, paths).NotTo(BeEmpty())
	out := map[string]dashboard{}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		var d dashboard
		ExpectWithOffset(1, json.Unmarshal(data, &d)).To(Succeed(), path)
		out[filepath.Base(path)] = d
	}
	return out
}

// visiblePanels returns the panels that show data: rows are left out, the
// panels of collapsed rows are in.
func visiblePanels(panels []panel) []panel {
	var out []panel
	for _, p := range panels {
		if p.Type == "row" {
			out = append(out, visiblePanels(p.Panels)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

// dashboardExpressions returns the PromQL of every target of every panel.
func dashboardExpressions() []expression {
	var out []expression
	for file, d := range readDashboards() {
		for _, p := range visiblePanels(d.Panels) {
			for _, t := range p.Targets {
				promql, _ := t["expr"].(string)
				where := fmt.Sprintf("%s: panel %q, target %v", file, p.Title, t["refId"])
				out = append(out, expression{where: where, promql: interpolate(promql)})
			}
		}
	}
	return out
}

// interpolate replaces Grafana's global variables in promql as Grafana does
// before it sends a query. Other variables are left as they are.
func interpolate(promql string) string {
	return variablePattern.ReplaceAllStringFunc(promql, func(v string) string {
		m := variablePattern.FindStringSubmatch(v)
		if value, ok := grafanaVariables[m[1]+m[2]]; ok {
			return value
		}
		return v
	})
}

// ruleFile is the part of a Prometheus rule file the specs read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// ruleExpressions returns the expression of every rule of the mixin, and
// the names its recording rules record.
func ruleExpressions() (exprs []expression, recorded []string) {
	for _, path := range mixinRuleFiles {
		data, err := os.ReadFile(path)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		var f ruleFile
		ExpectWithOffset(1, yaml.Unmarshal(data, &f)).To(Succeed(), path)
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, expression{where: fmt.Sprintf("%s: %s%s", path, r.Record, r.Alert), promql: r.Expr})
				if r.Record != "" {
					recorded = append(recorded, r.Record)
				}
			}
		}
	}
	return exprs, recorded
}

// documentedMetrics returns the metric names docs/metrics.md lists.
func documentedMetrics() []string {
	data, err := os.ReadFile(metricsDoc)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	var names []string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ := strings.Cut(rest, "`")
			names = append(names, name)
		}
	}
	return names
}

var _ = Describe("the monitoring mixin", func() {
	var promtool2, promtool3 string

	BeforeEach(func() {
		promtool2, promtool3 = promtools()
	})

	It("has rule files that Prometheus 2.x and 3 load", func() {
		for _, promtool := range []string{promtool2, promtool3} {
			out, err := exec.Command(promtool, append([]string{"check", "rules"}, mixinRuleFiles...)...).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "%s:\n%s", promtool, out)
		}
	})

	It("has rules that pass their unit tests (testdata/rules_test.yml) in Prometheus 2.x and 3", func() {
		for _, promtool := range []string{promtool2, promtool3} {
			out, err := exec.Command(promtool, "test", "rules", "testdata/rules_test.yml").CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "%s:\n%s", promtool, out)
		}
	})

	It("has dashboard queries that Prometheus 2.x and 3 parse", func() {
		// Each query becomes a recording rule, alone in a group named
		// after its panel, so that promtool's errors say which it is.
		type rule struct {
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		}
		type group struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		}
		var groups []group
		for _, e := range dashboardExpressions() {
			groups = append(groups, group{Name: e.where, Rules: []rule{{Record: "dashboard_query", Expr: e.promql}}})
		}
		Expect(groups).NotTo(BeEmpty())
		data, err := yaml.Marshal(map[string]any{"groups": groups})
		Expect(err).NotTo(HaveOccurred())
		path := filepath.Join(GinkgoT().TempDir(), "dashboards.yml")
		Expect(os.WriteFile(path, data, 0o644)).To(Succeed())
		for _, promtool := range []string{promtool2, promtool3} {
			out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "%s:\n%s", promtool, out)
		}
	})

	It("names only metrics the programs register, its own recording rules and Prometheus' series", func() {
		rules, recorded := ruleExpressions()
		exprs := append(rules, dashboardExpressions()...)
		documented := documentedMetrics()
		metrics := registered()
		isHistogram := func(name string) bool { return metrics[name] != nil && metrics[name].histogram }

		// Prometheus 3's own parser, through its API, says which series
		// each expression selects.
		prom := startPrometheus(testTool("prometheus", "Prometheus 3"))
		var problems []string
		used := map[string]bool{}
		for _, e := range exprs {
			names, err := selectedMetrics(prom, e.promql)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", e.where, err))
				continue
			}
			for _, name := range names {
				used[name] = true
				switch {
				case slices.Contains(recorded, name), slices.Contains(prometheusSeries, name), pendingMetrics[name] != "":
				case slices.Contains(documented, name) && isHistogram(name):
					problems = append(problems, fmt.Sprintf("%s: %s is a histogram: select its _bucket, _sum or _count", e.where, name))
				case slices.Contains(documented, name):
				case slices.ContainsFunc([]string{"_bucket", "_sum", "_count"}, func(suffix string) bool {
					base, ok := strings.CutSuffix(name, suffix)
					return ok && slices.Contains(documented, base) && isHistogram(base)
				}):
				default:
					problems = append(problems, fmt.Sprintf("%s: %s is not in docs/metrics.md", e.where, name))
				}
			}
		}
		for name := range pendingMetrics {
			if !used[name] {
				problems = append(problems, fmt.Sprintf("no rule or panel uses %s: remove it from pendingMetrics", name))
			}
		}
		Expect(problems).To(BeEmpty())
	})

	It("waits only for metrics docs/metrics.md does not list yet", func() {
		documented := documentedMetrics()
		for name, branch := range pendingMetrics {
			Expect(documented).NotTo(ContainElement(name),
				"%s (branch %s) is in docs/metrics.md now: remove it from pendingMetrics", name, branch)
		}
	})

	It("has dashboards of the current Grafana schema, each query on the ${datasource} variable", func() {
		uids := map[string]string{}
		for file, d := range readDashboards() {
			Expect(d.SchemaVersion).To(Equal(grafanaSchemaVersion), file)
			Expect(d.Title).NotTo(BeEmpty(), file)
			Expect(d.UID).NotTo(BeEmpty(), file)
			Expect(uids).NotTo(HaveKey(d.UID), "%s has the uid of %s", file, uids[d.UID])
			uids[d.UID] = file

			variables := map[string]bool{}
			for _, v := range d.Templating.List {
				variables[v.Name] = true
				if v.Name == "datasource" {
					Expect(v.Type).To(Equal("datasource"), file)
					Expect(v.Query).To(Equal("prometheus"), file)
				}
			}
			Expect(variables).To(HaveKey("datasource"), "%s has no datasource variable", file)

			ids := map[int]bool{}
			for _, p := range d.Panels {
				Expect(ids).NotTo(HaveKey(p.ID), "%s: panel id %d twice", file, p.ID)
				ids[p.ID] = true
				for _, nested := range p.Panels {
					Expect(ids).NotTo(HaveKey(nested.ID), "%s: panel id %d twice", file, nested.ID)
					ids[nested.ID] = true
				}
			}
			for _, p := range visiblePanels(d.Panels) {
				where := fmt.Sprintf("%s: panel %q", file, p.Title)
				Expect(p.Title).NotTo(BeEmpty(), where)
				Expect(p.GridPos["w"]).To(BeNumerically(">", 0), where)
				Expect(p.GridPos["h"]).To(BeNumerically(">", 0), where)
				Expect(p.GridPos["x"]+p.GridPos["w"]).To(BeNumerically("<=", 24), where)
				Expect(p.Datasource).To(Equal(&datasourceRef{Type: "prometheus", UID: "${datasource}"}), where)
				Expect(p.Targets).NotTo(BeEmpty(), where)
				for _, t := range p.Targets {
					Expect(t["datasource"]).To(Equal(map[string]any{"type": "prometheus", "uid": "${datasource}"}), where)
					expr, _ := t["expr"].(string)
					Expect(expr).NotTo(BeEmpty(), where)
					for _, m := range variablePattern.FindAllStringSubmatch(expr, -1) {
						name := m[1] + m[2]
						_, global := grafanaVariables[name]
						Expect(global || variables[name]).To(BeTrue(), "%s: no variable %s", where, m[0])
					}
				}
			}
		}
	})
})

// startPrometheus runs the Prometheus at path on loopback, with nothing to
// scrape, until the spec ends, and returns its URL.
func startPrometheus(path string) string {
	dir := GinkgoT().TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	Expect(os.WriteFile(config, []byte("global: {}\n"), 0o644)).To(Succeed())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	Expect(l.Close()).To(Succeed())

	cmd := exec.Command(path, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
	Expect(cmd.Start()).To(Succeed())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	DeferCleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	base := "http://" + addr
	Eventually(func(g Gomega) {
		select {
		case err := <-exited:
			exited <- err
			StopTrying(fmt.Sprintf("Prometheus exited: %v", err)).Now()
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	}).WithTimeout(30 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return base
}

// selectedMetrics asks the Prometheus at base to parse promql
// (/api/v1/parse_query) and returns the metric name of every series
// selector in its syntax tree.
func selectedMetrics(base, promql string) ([]string, error) {
	resp, err := http.PostForm(base+"/api/v1/parse_query", url.Values{"query": {promql}})
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   any    `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return nil, fmt.Errorf("parse_query answered %s: %w", resp.Status, err)
	}
	if answer.Status != "success" {
		return nil, fmt.Errorf("%s", answer.Error)
	}
	var names []string
	var walk func(node any) error
	walk = func(node any) error {
		switch n := node.(type) {
		case []any:
			for _, child := range n {
				if err := walk(child); err != nil {
					return err
				}
			}
		case map[string]any:
			if n["type"] == "vectorSelector" || n["type"] == "matrixSelector" {
				name, err := selectorName(n)
				if err != nil {
					return err
				}
				names = append(names, name)
			}
			for _, child := range n {
				if err := walk(child); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return names, walk(answer.Data)
}

// selectorName is the metric a series selector of parse_query's syntax tree
// selects: its __name__ matcher, which must be an equality.
func selectorName(selector map[string]any) (string, error) {
	matchers, _ := selector["matchers"].([]any)
	for _, m := range matchers {
		matcher, _ := m.(map[string]any)
		if matcher["name"] != "__name__" {
			continue
		}
		if matcher["type"] != "=" {
			return "", fmt.Errorf("a selector matches metric names with %v %q: name each metric", matcher["type"], matcher["value"])
		}
		name, _ := matcher["value"].(string)
		return name, nil
	}
	return "", fmt.Errorf("a selector names no metric: %v", matchers)
}
