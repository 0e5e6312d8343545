package targets

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
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

// chooseRoute is ChooseRoute among the routes that serve port (any route
// when port is 0). With no such route it falls back to ChooseRoute: Resolve
// reports a port no route serves.
func chooseRoute(routes []Route, port int) (Route, bool) {
	if port != 0 {
		if r, ok := ChooseRoute(routesOnPort(routes, port)); ok {
			return r, true
		}
	}
	return ChooseRoute(routes)
}

// routeID tells the routes of a CF API listing apart: CF keeps host,
// domain and path unique among HTTP routes.
type routeID struct{ host, domain, path string }

// routesOnPort returns the usable routes whose destinations on the app's
// web process all have port. A route with destinations on several ports
// is balanced among them by the router, so it serves none alone.
func routesOnPort(routes []Route, port int) []Route {
	ports := map[routeID]map[int]bool{}
	for _, r := range routes {
		id := routeID{r.Host, r.Domain, r.Path}
		if ports[id] == nil {
			ports[id] = map[int]bool{}
		}
		ports[id][r.port()] = true
	}
	var out []Route
	for _, r := range routes {
		if usable(r) && r.port() == port && len(ports[routeID{r.Host, r.Domain, r.Path}]) == 1 {
			out = append(out, r)
		}
	}
	return out
}

func servesPort(routes []Route, port int) bool {
	return len(routesOnPort(routes, port)) > 0
}

// portNotServed is the reason given for a port no route serves.
func portNotServed(routes []Route) string {
	var ports []int
	for _, r := range routes {
		if usable(r) && !slices.Contains(ports, r.port()) {
			ports = append(ports, r.port())
		}
	}
	slices.Sort(ports)
	reached := "the app has no HTTP route"
	if len(ports) > 0 {
		reached = "the app's HTTP routes reach port " + joinPorts(ports)
	}
	return "no route of the app reaches that port alone on its web process (" + reached +
		"; a route with destinations on several ports reaches none of them alone): " +
		"map a route to a destination with that port, or leave the port unset"
}

func joinPorts(ports []int) string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = strconv.Itoa(p)
	}
	return strings.Join(out, ", ")
}

func (r Route) port() int {
	if r.Port == 0 {
		return DefaultPort
	}
	return r.Port
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

// Options are what an app's target groups depend on besides the app.
type Options struct {
	// PaaSDomain is used to guess a route for an app without a usable one.
	PaaSDomain string
	// Settings are the tenant's settings for the app, as Resolve gives
	// them.
	Settings Settings
	// Addressing is how the groups name the app's instances (the zero
	// value is AppAddressing).
	Addressing Addressing
}

// Groups returns the target groups of app without tenant settings, in app
// addressing.
func Groups(app App, paasDomain string) []TargetGroup {
	return GroupsWith(app, Options{PaaSDomain: paasDomain})
}

// GroupsWith returns the target groups of app, addressed as o.Addressing
// says (docs/design.md, "Instances"), with o's settings applied.
func GroupsWith(app App, o Options) []TargetGroup {
	route, ok := chooseRoute(app.Routes, o.Settings.Port)
	if !ok {
		route = Route{Host: app.Name, Domain: o.PaaSDomain}
	}
	address := route.Address()
	metricsPath := MetricsPath(route.Path)
	instances := o.Addressing.instances(app)
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
	applySettings(groups, o.Settings)
	return groups
}

// applySettings writes a tenant's settings into every group.
func applySettings(groups []TargetGroup, s Settings) {
	for _, g := range groups {
		s.apply(g.Labels)
	}
}

// Render returns the bytes of app's target file without tenant settings, in
// app addressing.
func Render(app App, paasDomain string) []byte {
	return RenderWith(app, Options{PaaSDomain: paasDomain})
}

// RenderWith returns the bytes of app's target file. Equal inputs give
// equal bytes: labels are written in sorted order, indented as the Ruby
// service's files were, with a trailing newline. What it reads, InputsDigest
// digests.
func RenderWith(app App, o Options) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	// Encoding plain strings, slices and string maps cannot fail.
	_ = enc.Encode(GroupsWith(app, o))
	return buf.Bytes()
}

// InputsDigest is a digest of everything RenderWith renders app's file from:
// it changes whenever RenderWith's output could, so that a caller holding a
// file rendered from inputs with the same digest need not render it again.
// It covers each field of the app, its processes and routes, and of the
// options, in order, strings with their lengths, maps in key order. (A
// field added to them must be added here: a test counts them.)
func InputsDigest(app App, o Options) [sha256.Size]byte {
	var d digest
	d.str(app.GUID)
	d.str(app.Name)
	d.str(app.State)
	d.num(int64(len(app.Processes)))
	for _, p := range app.Processes {
		d.str(p.GUID)
		d.num(int64(p.Instances))
		d.num(p.CreatedAt.UnixNano())
	}
	d.str(app.Org)
	d.str(app.Space)
	d.num(int64(len(app.Routes)))
	for _, r := range app.Routes {
		d.str(r.Host)
		d.str(r.Domain)
		d.str(r.Path)
		d.str(r.Protocol)
		d.flag(r.Internal)
		d.num(int64(r.Port))
	}
	d.strings(app.Annotations)
	d.str(o.PaaSDomain)
	d.str(string(o.Addressing))
	s := o.Settings
	d.str(s.Path)
	d.num(int64(s.Port))
	d.num(int64(s.ScrapeInterval))
	d.num(int64(s.ScrapeTimeout))
	d.str(s.Job)
	d.strings(s.Labels)
	return sha256.Sum256(d.buf)
}

// digest is the unambiguous byte form of what InputsDigest hashes.
type digest struct{ buf []byte }

func (d *digest) num(n int64) { d.buf = binary.AppendVarint(d.buf, n) }

func (d *digest) str(s string) {
	d.num(int64(len(s)))
	d.buf = append(d.buf, s...)
}

func (d *digest) flag(b bool) {
	if b {
		d.num(1)
	} else {
		d.num(0)
	}
}

func (d *digest) strings(m map[string]string) {
	d.num(int64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		d.str(k)
		d.str(m[k])
	}
}
