package targets

import (
	"bytes"
	"encoding/json"
	"strings"
)

// TargetGroup is one Prometheus file_sd target group. It has only the two
// keys Prometheus accepts.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

const venerableSuffix = "-venerable"

// Job is the Prometheus job name of an app: its name with one trailing
// "-venerable" removed, so that blue-green deploys keep their job.
func Job(appName string) string {
	return strings.TrimSuffix(appName, venerableSuffix)
}

// ChooseRoute picks the route Prometheus scrapes: routes on internal domains
// and tcp routes are ignored; among the rest the first whose path ends in
// "metrics" wins, otherwise the first. ok is false when no route is usable.
func ChooseRoute(routes []Route) (r Route, ok bool) {
	for _, c := range routes {
		if !usable(c) {
			continue
		}
		if strings.HasSuffix(c.Path, "metrics") {
			return c, true
		}
		if !ok {
			r, ok = c, true
		}
	}
	return r, ok
}

func usable(r Route) bool {
	return !r.Internal && r.Protocol != "tcp" && r.Domain != ""
}

// Address is the host Prometheus scrapes for a route: host.domain, or the
// domain alone when the host is empty.
func (r Route) Address() string {
	if r.Host == "" {
		return r.Domain
	}
	return r.Host + "." + r.Domain
}

// MetricsPath is the __metrics_path__ for a route path: the path itself when
// it ends in "metrics", path + "/metrics" when it is not empty (a trailing
// slash kept, so that the bytes are those the Ruby service wrote), and ""
// (use Prometheus' default /metrics) when it is.
func MetricsPath(path string) string {
	switch {
	case path == "":
		return ""
	case strings.HasSuffix(path, "metrics"):
		return path
	default:
		return path + "/metrics"
	}
}

// Groups returns the target groups of app, addressed as addressing says
// (docs/design.md, "Instances"). paasDomain is used to guess a route for an
// app without a usable one.
func Groups(app App, paasDomain string, addressing Addressing) []TargetGroup {
	route, ok := ChooseRoute(app.Routes)
	if !ok {
		route = Route{Host: app.Name, Domain: paasDomain}
	}
	address := route.Address()
	metricsPath := MetricsPath(route.Path)
	instances := addressing.instances(app)
	groups := make([]TargetGroup, 0, len(instances))
	for _, in := range instances {
		labels := in.params.Labels()
		labels["instance"] = in.label
		labels["job"] = Job(app.Name)
		labels["org"] = app.Org
		labels["space"] = app.Space
		if metricsPath != "" {
			labels["__metrics_path__"] = metricsPath
		}
		groups = append(groups, TargetGroup{Targets: []string{address}, Labels: labels})
	}
	return groups
}

// Render returns the bytes of app's target file. Equal inputs give equal
// bytes: labels are written in sorted order, indented as the Ruby service's
// files were, with a trailing newline.
func Render(app App, paasDomain string, addressing Addressing) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	// Encoding plain strings, slices and string maps cannot fail.
	_ = enc.Encode(Groups(app, paasDomain, addressing))
	return buf.Bytes()
}
