package cfapi

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unique"

	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"golang.org/x/sync/errgroup"

	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/targets"
)

const (
	// maxRequestLine keeps guid filters well under the 8 KB request line the
	// CF API's front proxy accepts (it answers 414 above).
	maxRequestLine = 7168
	// maxGUIDsPerFilter bounds one guid filter, as the cf CLI does.
	maxGUIDsPerFilter = 100
	// maxFilterBatches: Apps for more guids than fit in this many filter
	// batches lists everything visible instead, which costs requests per
	// 5000 resources rather than per 100 guids.
	maxFilterBatches = 3
)

// App describes one app in 3 CF requests, made together:
// GET /v3/apps/:guid?include=space.organization, its web processes and its
// routes with their domains. An app CF does not show (404 or 403) gives an
// error wrapping ErrAppNotVisible; any other failure wraps ErrUnavailable.
func (c *Client) App(ctx context.Context, appGUID string) (targets.App, error) {
	if err := scrape.CheckGUID("app guid", appGUID); err != nil {
		return targets.App{}, fmt.Errorf("%w: %w", ErrAppNotVisible, err)
	}
	want := map[string]bool{appGUID: true}
	var (
		shown struct {
			appResource
			Included *resource.AppIncluded `json:"included"`
		}
		processes []webProcess
		routes    []appRoute
		routesInc *included
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return c.get(gctx, "/v3/apps/"+appGUID+"?include=space.organization", decodeInto(&shown))
	})
	g.Go(func() (err error) {
		processes, _, err = listAll(gctx, c, "/v3/processes", keepWebProcess(want), "app_guids", appGUID, "types", "web")
		return err
	})
	g.Go(func() (err error) {
		routes, routesInc, err = listAll(gctx, c, "/v3/routes", keepRoute(want), "app_guids", appGUID, "include", "domain")
		return err
	})
	err := g.Wait()
	if status := statusOf(err, "/v3/apps/:guid"); status == http.StatusNotFound || status == http.StatusForbidden {
		return targets.App{}, fmt.Errorf("app %s: %w (CF answered %d)", appGUID, ErrAppNotVisible, status)
	}
	if err != nil {
		return targets.App{}, err
	}
	if shown.GUID != appGUID || shown.Included == nil {
		return targets.App{}, malformed("/v3/apps/:guid", "the answer is not the app asked for, with its space and org")
	}
	parts := newAppParts()
	for _, s := range shown.Included.Spaces {
		parts.included.addSpace(s)
	}
	for _, o := range shown.Included.Organizations {
		parts.included.addOrg(o)
	}
	parts.included.merge(routesInc)
	parts.addProcesses(processes)
	if err := parts.addRoutes(routes); err != nil {
		return targets.App{}, err
	}
	return parts.describe(appOf(&shown.appResource))
}

// Apps describes the visible apps among guids, keyed by guid; an app CF
// does not return is missing from the map, as is any string that is not a
// GUID. Few guids are looked up with guid filters, in batches that keep
// the request line short; many are found by listing every visible app, web
// process and route 5000 a page, so the cost grows with pages, not apps.
// Any failure gives an error and no map.
func (c *Client) Apps(ctx context.Context, guids []string) (map[string]targets.App, error) {
	ordered, want := validGUIDs(guids)
	if len(ordered) == 0 {
		return map[string]targets.App{}, nil
	}
	batches := c.batches(ordered)
	if len(batches) > maxFilterBatches {
		batches = [][]string{nil}
	}
	type slot struct {
		apps      []app
		appsInc   *included
		processes []webProcess
		routes    []appRoute
		routesInc *included
	}
	slots := make([]slot, len(batches))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i, batch := range batches {
		s := &slots[i]
		var appFilter, appGUIDs []string
		if batch != nil {
			appFilter = []string{"guids", strings.Join(batch, ",")}
			appGUIDs = []string{"app_guids", strings.Join(batch, ",")}
		}
		g.Go(func() (err error) {
			s.apps, s.appsInc, err = listAll(gctx, c, "/v3/apps", keepApp(want), append(appFilter, "include", "space.organization")...)
			return err
		})
		g.Go(func() (err error) {
			s.processes, _, err = listAll(gctx, c, "/v3/processes", keepWebProcess(want), append(appGUIDs, "types", "web")...)
			return err
		})
		g.Go(func() (err error) {
			s.routes, s.routesInc, err = listAll(gctx, c, "/v3/routes", keepRoute(want), append(appGUIDs, "include", "domain")...)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// Each listing is dropped once its part is gathered, and what
	// describes an app once it is described: at 50,000 apps, tens of MB
	// that need not wait for the end.
	parts := newAppParts()
	for i := range slots {
		s := &slots[i]
		parts.included.merge(s.appsInc)
		parts.included.merge(s.routesInc)
		parts.addProcesses(s.processes)
		s.appsInc, s.routesInc, s.processes = nil, nil, nil
	}
	for i := range slots {
		s := &slots[i]
		if err := parts.addRoutes(s.routes); err != nil {
			return nil, err
		}
		s.routes = nil
	}
	out := make(map[string]targets.App, len(ordered))
	for i := range slots {
		s := &slots[i]
		for _, a := range s.apps {
			if _, ok := out[a.guid]; ok {
				continue // listed twice: described the same way already
			}
			app, err := parts.describe(a)
			if err != nil {
				return nil, err
			}
			out[a.guid] = app
			parts.forget(a.guid)
		}
		s.apps = nil
	}
	return out, nil
}

// batches splits guids into filter values short enough for every listing
// Apps makes with them.
func (c *Client) batches(guids []string) [][]string {
	longest := 0
	for _, q := range []string{
		"/v3/apps?guids=&include=space.organization",
		"/v3/processes?app_guids=&types=web",
		"/v3/routes?app_guids=&include=domain",
	} {
		longest = max(longest, len(c.listURL(q, perPage)))
	}
	fixed := len("GET ") + longest + len(" HTTP/1.1")
	var out [][]string
	var batch []string
	length := fixed
	for _, g := range guids {
		if len(batch) == maxGUIDsPerFilter || (len(batch) > 0 && length+len(g)+1 > maxRequestLine) {
			out = append(out, batch)
			batch, length = nil, fixed
		}
		batch = append(batch, g)
		length += len(g) + 1
	}
	return append(out, batch)
}

// The fields of the listed resources that describe an app. go-cfclient's
// resource.App, Process and Route decode every field, links and labels
// included: describing 10,000 apps of 12,000 with them allocated 175 MB in
// 1.96 million objects (BenchmarkApps10k, the fake CF API's share
// included), with these 92 MB in 0.41 million. The resources are decoded
// one at a time and dropped, so the difference is garbage rather than
// held memory, but at 50,000 apps it is some 400 MB more of it a call.
type (
	appResource struct {
		GUID          string `json:"guid"`
		Name          string `json:"name"`
		State         string `json:"state"`
		Relationships struct {
			Space resource.ToOneRelationship `json:"space"`
		} `json:"relationships"`
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	processResource struct {
		GUID          string    `json:"guid"`
		Type          string    `json:"type"`
		Instances     int       `json:"instances"`
		CreatedAt     time.Time `json:"created_at"`
		Relationships struct {
			App resource.ToOneRelationship `json:"app"`
		} `json:"relationships"`
	}
	routeResource struct {
		GUID         string    `json:"guid"`
		Host         string    `json:"host"`
		Path         string    `json:"path"`
		Protocol     string    `json:"protocol"`
		CreatedAt    time.Time `json:"created_at"`
		Destinations []struct {
			App struct {
				GUID    string                               `json:"guid"`
				Process *resource.RouteDestinationAppProcess `json:"process"`
			} `json:"app"`
			Port int `json:"port"` // 0 when absent: targets.DefaultPort
		} `json:"destinations"`
		Relationships struct {
			Domain resource.ToOneRelationship `json:"domain"`
		} `json:"relationships"`
	}
)

// What the client keeps of the resources that describe an app.
type (
	app struct {
		guid, name, state, space string
		annotations              map[string]string
	}
	webProcess struct {
		app string
		targets.Process
	}
	appRoute struct {
		guid, host, path, protocol, domain string
		created                            time.Time
		// apps are the wanted apps with a destination on their web
		// process, once per port.
		apps []appPort
	}
	appPort struct {
		app  string
		port int
	}
)

func appOf(a *appResource) app {
	annotations := a.Metadata.Annotations
	if len(annotations) == 0 {
		// Every app carries "annotations": {}, which decodes into a map.
		annotations = nil
	}
	return app{
		guid: a.GUID, name: a.Name, state: intern(a.State),
		space: intern(guidOf(&a.Relationships.Space)), annotations: annotations,
	}
}

// intern returns the one copy kept of a value that many resources of a
// listing repeat (states, protocols, the guids of spaces and domains),
// rather than the copy each resource decoded: at 50,000 apps, megabytes.
func intern(s string) string {
	return unique.Make(s).Value()
}

// keepApp keeps the wanted apps of a listing.
func keepApp(want map[string]bool) func(*appResource) (app, bool) {
	return func(a *appResource) (app, bool) {
		return appOf(a), want[a.GUID]
	}
}

// keepWebProcess keeps every web process of the wanted apps: while a
// deployment runs, an app has two or more.
func keepWebProcess(want map[string]bool) func(*processResource) (webProcess, bool) {
	return func(p *processResource) (webProcess, bool) {
		app := guidOf(&p.Relationships.App)
		if p.Type != "web" || !want[app] {
			return webProcess{}, false
		}
		return webProcess{app: app, Process: targets.Process{GUID: p.GUID, Instances: p.Instances, CreatedAt: p.CreatedAt}}, true
	}
}

// keepRoute keeps the routes with a destination on a wanted app's web
// process.
func keepRoute(want map[string]bool) func(*routeResource) (appRoute, bool) {
	return func(r *routeResource) (appRoute, bool) {
		var apps []appPort
		for _, d := range r.Destinations {
			process := "web" // Cloud Controller's default process type
			if d.App.Process != nil && d.App.Process.Type != "" {
				process = d.App.Process.Type
			}
			if ap := (appPort{d.App.GUID, d.Port}); process == "web" && want[ap.app] && !slices.Contains(apps, ap) {
				apps = append(apps, ap)
			}
		}
		if len(apps) == 0 {
			return appRoute{}, false
		}
		return appRoute{
			guid: r.GUID, host: r.Host, path: r.Path, protocol: intern(r.Protocol),
			domain: intern(guidOf(&r.Relationships.Domain)), created: r.CreatedAt, apps: apps,
		}, true
	}
}

// appParts gathers what describes apps, from one or many answers.
type appParts struct {
	included  *included
	processes map[string][]targets.Process
	routes    map[string][]describedRoute
}

type describedRoute struct {
	targets.Route
	guid    string
	created time.Time
}

func newAppParts() *appParts {
	return &appParts{
		included:  newIncluded(),
		processes: map[string][]targets.Process{},
		routes:    map[string][]describedRoute{},
	}
}

func (p *appParts) addProcesses(processes []webProcess) {
	for _, proc := range processes {
		p.processes[proc.app] = append(p.processes[proc.app], proc.Process)
	}
}

// addRoutes gives each route its domain, which the routes' listing
// included: add that first.
func (p *appParts) addRoutes(routes []appRoute) error {
	for _, r := range routes {
		domain, ok := p.included.domains[r.domain]
		if !ok {
			return malformed("/v3/routes", "route "+r.guid+" has no included domain")
		}
		for _, a := range r.apps {
			route := describedRoute{
				Route: targets.Route{Host: r.host, Domain: domain.name, Path: r.path, Protocol: r.protocol, Internal: domain.internal, Port: a.port},
				guid:  r.guid, created: r.created,
			}
			p.routes[a.app] = append(p.routes[a.app], route)
		}
	}
	return nil
}

// forget drops what describes an app, once described.
func (p *appParts) forget(appGUID string) {
	delete(p.processes, appGUID)
	delete(p.routes, appGUID)
}

// describe builds the targets.App for one app.
func (p *appParts) describe(a app) (targets.App, error) {
	space, ok := p.included.spaces[a.space]
	if !ok {
		return targets.App{}, malformed("/v3/apps", "app "+a.guid+" has no included space")
	}
	org, ok := p.included.orgs[space.org]
	if !ok {
		return targets.App{}, malformed("/v3/apps", "space "+a.space+" has no included org")
	}
	routes := slices.Clone(p.routes[a.guid])
	slices.SortFunc(routes, func(x, y describedRoute) int {
		return cmp.Or(x.created.Compare(y.created), cmp.Compare(x.guid, y.guid), cmp.Compare(x.Port, y.Port))
	})
	processes := slices.Clone(p.processes[a.guid])
	slices.SortFunc(processes, func(x, y targets.Process) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), cmp.Compare(x.GUID, y.GUID))
	})
	for i := range processes {
		if processes[i].GUID == a.guid {
			// CF gives an app's first web process the app's guid: one copy.
			processes[i].GUID = a.guid
		}
	}
	described := targets.App{
		GUID: a.guid, Name: a.name, State: a.state, Processes: processes,
		Org: org, Space: space.name, Annotations: a.annotations,
	}
	for _, r := range routes {
		described.Routes = append(described.Routes, r.Route)
	}
	return described, nil
}
