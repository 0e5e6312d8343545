package cfapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/targets"
	"github.com/cloudfoundry/go-cfclient/v3/client"
	cfconfig "github.com/cloudfoundry/go-cfclient/v3/config"
	"github.com/cloudfoundry/go-cfclient/v3/resource"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures New. Give either Username and Password (the
// password grant) or ClientID and ClientSecret (client credentials).
type Config struct {
	// API is the CF API root URL (API_ENDPOINT).
	API string
	// Username and Password are a CF user's (UAA_USERNAME, UAA_PASSWORD).
	Username string
	Password string
	// ClientID and ClientSecret are a UAA client's (CF_CLIENT_ID,
	// CF_CLIENT_SECRET); used when Username is empty.
	ClientID     string
	ClientSecret string
	// PlanID is the broker catalog id of our plan (PLAN_ID).
	PlanID string
	// HTTPClient supplies the base transport and the overall timeout of one
	// request, retries included (default 2 minutes). It is not modified.
	HTTPClient *http.Client
	// Registerer receives the client's metrics; nil leaves them unregistered.
	Registerer prometheus.Registerer
	// MaxAttempts bounds the attempts of one GET (default 4).
	MaxAttempts int
	// RetryBaseDelay is the first backoff delay, doubled on each further
	// retry (default 250ms).
	RetryBaseDelay time.Duration
	// RetryMaxDelay caps a backoff delay and a Retry-After wait (default 10s).
	RetryMaxDelay time.Duration
	// AttemptTimeout bounds one attempt, so that a hung connection is
	// retried (default 30s).
	AttemptTimeout time.Duration
}

// ConfigFor is the client configuration for the CF settings a program read, with
// the plan the client lists bindings of and the registry of its metrics.
func ConfigFor(c config.CF, planID string, reg prometheus.Registerer) Config {
	return Config{
		API: c.API, Username: c.Username, Password: c.Password,
		ClientID: c.ClientID, ClientSecret: c.ClientSecret,
		PlanID: planID, Registerer: reg,
	}
}

const (
	userAgent      = "cf-app-discovery"
	defaultTimeout = 2 * time.Minute
	// perPage is the CF API's largest page: listings cost requests per 5000
	// resources.
	perPage = 5000
	// maxPages stops a listing whose pagination never ends.
	maxPages = 1000
	// maxRequestLine keeps guid filters well under the 8 KB request line the
	// CF API's front proxy accepts (it answers 414 above).
	maxRequestLine = 7168
	// maxGUIDsPerFilter bounds one guid filter, as the cf CLI does.
	maxGUIDsPerFilter = 100
	// maxFilterBatches: Apps for more guids than fit in this many filter
	// batches lists everything visible instead, which costs requests per
	// 5000 resources rather than per 100 guids.
	maxFilterBatches = 3
	// concurrency bounds the requests one call has in flight.
	concurrency = 4
)

// Client reads apps and service bindings from the CF API v3 for the
// broker and the reconciler. go-cfclient provides authentication: it
// discovers UAA, fetches a token once and renews it; requests are made
// through its authenticated HTTP client, whose transport counts, times and
// retries them. Its methods are safe for concurrent use.
type Client struct {
	cf     *client.Client
	api    string
	planID string

	// reauth serialises renewing a refused token. go-cfclient renews it
	// inside a request by replacing its token source without a lock, so a
	// request that may do so runs alone: others hold the read lock.
	reauth sync.RWMutex

	mu        sync.Mutex
	planGUIDs []string
}

// New discovers the token endpoint from the API root and, for the
// password grant, fetches a token. Its metrics go to c.Registerer.
func New(ctx context.Context, c Config) (*Client, error) {
	if c.API == "" {
		return nil, errors.New("CF API URL is required")
	}
	var auth cfconfig.Option
	switch {
	case c.Username != "" || c.Password != "":
		auth = cfconfig.UserPassword(c.Username, c.Password)
	case c.ClientID != "" && c.ClientSecret != "":
		auth = cfconfig.ClientCredentials(c.ClientID, c.ClientSecret)
	default:
		return nil, errors.New("CF API credentials are required: a username and password, or a client id and secret")
	}
	metrics, err := newCFMetrics(c.Registerer)
	if err != nil {
		return nil, err
	}
	base, timeout := http.DefaultTransport, defaultTimeout
	var jar http.CookieJar
	if c.HTTPClient != nil {
		if c.HTTPClient.Transport != nil {
			base = c.HTTPClient.Transport
		}
		if c.HTTPClient.Timeout > 0 {
			timeout = c.HTTPClient.Timeout
		}
		jar = c.HTTPClient.Jar
	}
	transport := &cfTransport{
		base:           base,
		metrics:        metrics,
		attempts:       positive(c.MaxAttempts, 4),
		baseDelay:      positive(c.RetryBaseDelay, 250*time.Millisecond),
		maxDelay:       positive(c.RetryMaxDelay, 10*time.Second),
		attemptTimeout: positive(c.AttemptTimeout, 30*time.Second),
	}
	// go-cfclient sets its own redirect policy and timeout on the client it
	// is given, so it gets one of ours.
	httpClient := &http.Client{Transport: transport, Jar: jar}

	type result struct {
		cfg *cfconfig.Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		// config.New takes no context: it reads the API root and, for the
		// password grant, fetches a token; the timeout bounds both.
		cfg, err := cfconfig.New(c.API, auth, cfconfig.HttpClient(httpClient),
			cfconfig.RequestTimeout(timeout), cfconfig.UserAgent(userAgent))
		done <- result{cfg, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("connecting to the CF API: %w", ctx.Err())
	}
	if r.err != nil {
		return nil, fmt.Errorf("connecting to the CF API at %s: %w: %w", c.API, ErrUnavailable, r.err)
	}
	cf, err := client.New(r.cfg)
	if err != nil {
		return nil, fmt.Errorf("CF API client: %w", err)
	}
	return &Client{cf: cf, api: strings.TrimRight(c.API, "/"), planID: c.PlanID}, nil
}

func positive[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// App describes one app in at most 3 CF requests, made together:
// GET /v3/apps/:guid?include=space.organization, its web process and its
// routes with their domains. An app CF does not show (404 or 403) gives an
// error wrapping ErrAppNotVisible; any other failure wraps ErrUnavailable.
func (c *Client) App(ctx context.Context, appGUID string) (targets.App, error) {
	if err := scrape.CheckGUID("app guid", appGUID); err != nil {
		return targets.App{}, fmt.Errorf("%w: %w", ErrAppNotVisible, err)
	}
	var (
		app       cfAppWithIncluded
		processes []cfProcess
		routes    []cfRoute
		included  []*cfIncluded
	)
	err := together(ctx,
		func(ctx context.Context) error {
			return c.get(ctx, "/v3/apps/"+appGUID+"?include=space.organization", &app)
		},
		func(ctx context.Context) (err error) {
			processes, _, err = listAll[cfProcess](ctx, c, "/v3/processes", false, "app_guids", appGUID, "types", "web")
			return err
		},
		func(ctx context.Context) (err error) {
			routes, included, err = listAll[cfRoute](ctx, c, "/v3/routes", true, "app_guids", appGUID, "include", "domain")
			return err
		},
	)
	if se := (*cfStatusError)(nil); errors.As(err, &se) && se.path == "/v3/apps/:guid" &&
		(se.status == http.StatusNotFound || se.status == http.StatusForbidden) {
		return targets.App{}, fmt.Errorf("app %s: %w (CF answered %d)", appGUID, ErrAppNotVisible, se.status)
	}
	if err != nil {
		return targets.App{}, err
	}
	if app.GUID != appGUID || app.Included == nil {
		return targets.App{}, malformed("/v3/apps/:guid", "the answer is not the app asked for, with its space and org")
	}
	parts := newAppParts()
	parts.addIncluded(app.Included)
	parts.addProcesses(processes)
	if err := parts.addRoutes(routes, included, map[string]bool{appGUID: true}); err != nil {
		return targets.App{}, err
	}
	return parts.describe(app.cfApp)
}

// Binding looks up one service credential binding by guid, with the plan of
// its service instance. An unknown binding gives an error wrapping
// ErrBindingNotFound.
func (c *Client) Binding(ctx context.Context, guid string) (Binding, error) {
	if err := scrape.CheckGUID("binding guid", guid); err != nil {
		return Binding{}, fmt.Errorf("%w: %w", ErrBindingNotFound, err)
	}
	var b struct {
		cfBinding
		Included *cfIncluded `json:"included"`
	}
	err := c.get(ctx, "/v3/service_credential_bindings/"+guid+"?include=service_instance", &b)
	if se := (*cfStatusError)(nil); errors.As(err, &se) && se.status == http.StatusNotFound {
		return Binding{}, fmt.Errorf("binding %s: %w", guid, ErrBindingNotFound)
	}
	if err != nil {
		return Binding{}, err
	}
	if b.GUID != guid {
		return Binding{}, malformed("/v3/service_credential_bindings/:guid", "the answer is not the binding asked for")
	}
	plan := ""
	if b.Included != nil {
		for _, in := range b.Included.ServiceInstances {
			if in.GUID == b.Relationships.ServiceInstance.guid() {
				plan = in.Relationships.ServicePlan.guid()
			}
		}
	}
	return b.binding(plan), nil
}

// AppBindings returns the app bindings of our plan for one app, oldest
// first.
func (c *Client) AppBindings(ctx context.Context, appGUID string) ([]Binding, error) {
	if err := scrape.CheckGUID("app guid", appGUID); err != nil {
		return nil, err
	}
	return c.planBindings(ctx, "app_guids", appGUID)
}

// AppsBindings returns the app bindings of our plan for the given apps,
// oldest first: the same listing as PlanBindings, filtered by app guids in
// batches short enough for the API's front proxy (one request per 100 apps
// and plan). Strings that are not GUIDs are left out.
func (c *Client) AppsBindings(ctx context.Context, appGUIDs []string) ([]Binding, error) {
	var valid []string
	seen := map[string]bool{}
	for _, g := range appGUIDs {
		if scrape.ValidGUID(g) && !seen[g] {
			seen[g] = true
			valid = append(valid, g)
		}
	}
	if len(valid) == 0 {
		return nil, nil
	}
	var out []Binding
	for _, batch := range c.batches(valid) {
		bindings, err := c.planBindings(ctx, "app_guids", strings.Join(batch, ","))
		if err != nil {
			return nil, err
		}
		out = append(out, bindings...)
	}
	slices.SortFunc(out, func(a, b Binding) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.GUID, b.GUID))
	})
	return out, nil
}

// PlanBindings returns every app binding of our plan that CF shows, oldest
// first: the plan's guids come from
// /v3/service_plans?broker_catalog_ids=PlanID (cached), the bindings from
// /v3/service_credential_bindings 5000 a page.
func (c *Client) PlanBindings(ctx context.Context) ([]Binding, error) {
	return c.planBindings(ctx)
}

func (c *Client) planBindings(ctx context.Context, filter ...string) ([]Binding, error) {
	plans, err := c.plans(ctx)
	if err != nil {
		return nil, err
	}
	var out []Binding
	for _, plan := range plans {
		// One listing per plan guid: a binding names its service instance,
		// not its plan, so the filter is what tells the plan.
		bindings, _, err := listAll[cfBinding](ctx, c, "/v3/service_credential_bindings", false,
			append([]string{"service_plan_guids", plan, "type", "app"}, filter...)...)
		if err != nil {
			return nil, err
		}
		for _, b := range bindings {
			out = append(out, b.binding(plan))
		}
	}
	slices.SortFunc(out, func(a, b Binding) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.GUID, b.GUID))
	})
	return out, nil
}

// plans returns the guids of the service plans with our broker catalog id.
// A plan CF does not show is an error: reconciling against an empty list of
// bindings would drop every target.
func (c *Client) plans(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	cached := c.planGUIDs
	c.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	if c.planID == "" {
		return nil, errors.New("the broker catalog plan id is not configured")
	}
	plans, _, err := listAll[cfPlan](ctx, c, "/v3/service_plans", false, "broker_catalog_ids", c.planID)
	if err != nil {
		return nil, err
	}
	var guids []string
	for _, p := range plans {
		if p.BrokerCatalog.ID == c.planID {
			guids = append(guids, p.GUID)
		}
	}
	if len(guids) == 0 {
		return nil, fmt.Errorf("%w: no service plan with broker catalog id %q is visible", ErrUnavailable, c.planID)
	}
	c.mu.Lock()
	c.planGUIDs = guids
	c.mu.Unlock()
	return guids, nil
}

// Apps describes the visible apps among guids, keyed by guid; an app CF
// does not return is missing from the map, as is any string that is not a
// GUID. Few guids are looked up with guid filters, in batches that keep
// the request line short; many are found by listing every visible app, web
// process and route 5000 a page, so the cost grows with pages, not apps.
// Any failure gives an error and no map.
func (c *Client) Apps(ctx context.Context, guids []string) (map[string]targets.App, error) {
	want := map[string]bool{}
	var ordered []string
	for _, g := range guids {
		if scrape.ValidGUID(g) && !want[g] {
			want[g] = true
			ordered = append(ordered, g)
		}
	}
	if len(ordered) == 0 {
		return map[string]targets.App{}, nil
	}
	batches := c.batches(ordered)
	if len(batches) > maxFilterBatches {
		batches = [][]string{nil}
	}
	type slot struct {
		apps      []cfApp
		appsInc   []*cfIncluded
		processes []cfProcess
		routes    []cfRoute
		routesInc []*cfIncluded
	}
	slots := make([]slot, len(batches))
	var fns []func(context.Context) error
	for i, batch := range batches {
		s := &slots[i]
		appFilter, appGUIDs := []string{}, []string{}
		if batch != nil {
			appFilter = []string{"guids", strings.Join(batch, ",")}
			appGUIDs = []string{"app_guids", strings.Join(batch, ",")}
		}
		fns = append(fns,
			func(ctx context.Context) (err error) {
				s.apps, s.appsInc, err = listAll[cfApp](ctx, c, "/v3/apps", true, append(appFilter, "include", "space.organization")...)
				return err
			},
			func(ctx context.Context) (err error) {
				s.processes, _, err = listAll[cfProcess](ctx, c, "/v3/processes", false, append(appGUIDs, "types", "web")...)
				return err
			},
			func(ctx context.Context) (err error) {
				s.routes, s.routesInc, err = listAll[cfRoute](ctx, c, "/v3/routes", true, append(appGUIDs, "include", "domain")...)
				return err
			})
	}
	if err := together(ctx, fns...); err != nil {
		return nil, err
	}
	parts := newAppParts()
	var apps []cfApp
	for _, s := range slots {
		for _, inc := range s.appsInc {
			parts.addIncluded(inc)
		}
		parts.addProcesses(s.processes)
		if err := parts.addRoutes(s.routes, s.routesInc, want); err != nil {
			return nil, err
		}
		apps = append(apps, s.apps...)
	}
	out := make(map[string]targets.App, len(ordered))
	for _, a := range apps {
		if !want[a.GUID] {
			continue
		}
		app, err := parts.describe(a)
		if err != nil {
			return nil, err
		}
		out[a.GUID] = app
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

// listURL adds the paging parameters to a path and query.
func (c *Client) listURL(pathAndQuery string, page int) string {
	return c.api + pathAndQuery + "&per_page=" + strconv.Itoa(perPage) + "&page=" + strconv.Itoa(page)
}

// appParts gathers what describes apps, from one or many answers.
type appParts struct {
	spaces    map[string]cfSpace
	orgs      map[string]cfOrg
	processes map[string][]targets.Process
	routes    map[string][]appRoute
}

type appRoute struct {
	targets.Route
	guid    string
	created time.Time
}

func newAppParts() *appParts {
	return &appParts{
		spaces:    map[string]cfSpace{},
		orgs:      map[string]cfOrg{},
		processes: map[string][]targets.Process{},
		routes:    map[string][]appRoute{},
	}
}

// addIncluded keeps included spaces and orgs once each: they repeat
// across pages.
func (p *appParts) addIncluded(inc *cfIncluded) {
	if inc == nil {
		return
	}
	for _, s := range inc.Spaces {
		p.spaces[s.GUID] = s
	}
	for _, o := range inc.Organizations {
		p.orgs[o.GUID] = o
	}
}

// addProcesses keeps every web process of each app: while a deployment
// runs, an app has two or more.
func (p *appParts) addProcesses(processes []cfProcess) {
	for _, proc := range processes {
		if proc.Type == "web" {
			app := proc.Relationships.App.guid()
			p.processes[app] = append(p.processes[app], targets.Process{GUID: proc.GUID, Instances: proc.Instances, CreatedAt: proc.CreatedAt})
		}
	}
}

// addRoutes keeps, for each wanted app, the routes with a destination on
// its web process.
func (p *appParts) addRoutes(routes []cfRoute, included []*cfIncluded, want map[string]bool) error {
	domains := map[string]cfDomain{}
	for _, inc := range included {
		if inc == nil {
			continue
		}
		for _, d := range inc.Domains {
			domains[d.GUID] = d
		}
	}
	for _, r := range routes {
		var apps []string
		for _, d := range r.Destinations {
			process := "web" // Cloud Controller's default process type
			if d.App.Process != nil && d.App.Process.Type != "" {
				process = d.App.Process.Type
			}
			if process == "web" && want[d.App.GUID] && !slices.Contains(apps, d.App.GUID) {
				apps = append(apps, d.App.GUID)
			}
		}
		if len(apps) == 0 {
			continue
		}
		domain, ok := domains[r.Relationships.Domain.guid()]
		if !ok {
			return malformed("/v3/routes", "route "+r.GUID+" has no included domain")
		}
		route := appRoute{
			Route: targets.Route{Host: r.Host, Domain: domain.Name, Path: r.Path, Protocol: r.Protocol, Internal: domain.Internal},
			guid:  r.GUID, created: r.CreatedAt,
		}
		for _, app := range apps {
			p.routes[app] = append(p.routes[app], route)
		}
	}
	return nil
}

// describe builds the targets.App for one app of a listing.
func (p *appParts) describe(a cfApp) (targets.App, error) {
	space, ok := p.spaces[a.Relationships.Space.guid()]
	if !ok {
		return targets.App{}, malformed("/v3/apps", "app "+a.GUID+" has no included space")
	}
	org, ok := p.orgs[space.Relationships.Organization.guid()]
	if !ok {
		return targets.App{}, malformed("/v3/apps", "space "+space.GUID+" has no included org")
	}
	routes := slices.Clone(p.routes[a.GUID])
	slices.SortFunc(routes, func(x, y appRoute) int {
		return cmp.Or(x.created.Compare(y.created), cmp.Compare(x.guid, y.guid))
	})
	processes := slices.Clone(p.processes[a.GUID])
	slices.SortFunc(processes, func(x, y targets.Process) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), cmp.Compare(x.GUID, y.GUID))
	})
	app := targets.App{
		GUID: a.GUID, Name: a.Name, State: a.State, Processes: processes,
		Org: org.Name, Space: space.Name, Annotations: a.Metadata.Annotations,
	}
	for _, r := range routes {
		app.Routes = append(app.Routes, r.Route)
	}
	return app, nil
}

// The parts of CF API v3 resources this client reads.
type (
	cfToOne struct {
		Data *struct {
			GUID string `json:"guid"`
		} `json:"data"`
	}
	cfApp struct {
		GUID          string    `json:"guid"`
		Name          string    `json:"name"`
		State         string    `json:"state"`
		CreatedAt     time.Time `json:"created_at"`
		Relationships struct {
			Space cfToOne `json:"space"`
		} `json:"relationships"`
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	cfAppWithIncluded struct {
		cfApp
		Included *cfIncluded `json:"included"`
	}
	cfSpace struct {
		GUID          string `json:"guid"`
		Name          string `json:"name"`
		Relationships struct {
			Organization cfToOne `json:"organization"`
		} `json:"relationships"`
	}
	cfOrg struct {
		GUID string `json:"guid"`
		Name string `json:"name"`
	}
	cfProcess struct {
		GUID          string    `json:"guid"`
		Type          string    `json:"type"`
		Instances     int       `json:"instances"`
		CreatedAt     time.Time `json:"created_at"`
		Relationships struct {
			App cfToOne `json:"app"`
		} `json:"relationships"`
	}
	cfRoute struct {
		GUID         string    `json:"guid"`
		Host         string    `json:"host"`
		Path         string    `json:"path"`
		Protocol     string    `json:"protocol"`
		CreatedAt    time.Time `json:"created_at"`
		Destinations []struct {
			App struct {
				GUID    string `json:"guid"`
				Process *struct {
					Type string `json:"type"`
				} `json:"process"`
			} `json:"app"`
		} `json:"destinations"`
		Relationships struct {
			Domain cfToOne `json:"domain"`
		} `json:"relationships"`
	}
	cfDomain struct {
		GUID     string `json:"guid"`
		Name     string `json:"name"`
		Internal bool   `json:"internal"`
	}
	cfPlan struct {
		GUID          string `json:"guid"`
		BrokerCatalog struct {
			ID string `json:"id"`
		} `json:"broker_catalog"`
	}
	cfServiceInstance struct {
		GUID          string `json:"guid"`
		Relationships struct {
			ServicePlan cfToOne `json:"service_plan"`
		} `json:"relationships"`
	}
	cfBinding struct {
		GUID          string    `json:"guid"`
		Type          string    `json:"type"`
		CreatedAt     time.Time `json:"created_at"`
		LastOperation *struct {
			Type  string `json:"type"`
			State string `json:"state"`
		} `json:"last_operation"`
		Relationships struct {
			App             cfToOne `json:"app"`
			ServiceInstance cfToOne `json:"service_instance"`
		} `json:"relationships"`
	}
	cfIncluded struct {
		Spaces           []cfSpace           `json:"spaces"`
		Organizations    []cfOrg             `json:"organizations"`
		Domains          []cfDomain          `json:"domains"`
		ServiceInstances []cfServiceInstance `json:"service_instances"`
	}
)

func (r cfToOne) guid() string {
	if r.Data == nil {
		return ""
	}
	return r.Data.GUID
}

func (b cfBinding) binding(plan string) Binding {
	deleting := b.LastOperation != nil && b.LastOperation.Type == "delete" && b.LastOperation.State == "in progress"
	return Binding{
		GUID: b.GUID, AppGUID: b.Relationships.App.guid(), PlanGUID: plan,
		CreatedAt: b.CreatedAt, Deleting: deleting,
	}
}

// cfListPage is one page of a CF API v3 listing.
type cfListPage[R any] struct {
	Pagination resource.Pagination `json:"pagination"`
	Resources  []R                 `json:"resources"`
	Included   *cfIncluded         `json:"included"`
}

// errListingChanged means resources were added or removed while a listing
// was paged through, so that a page may have skipped or repeated some.
var errListingChanged = fmt.Errorf("%w: the listing changed while it was read", ErrUnavailable)

// listAll reads every page of a listing filtered by params (name, value
// pairs). With include, every page must carry an "included" object. A
// listing that changes under it is read once more, then given up.
func listAll[R any](ctx context.Context, c *Client, path string, include bool, params ...string) ([]R, []*cfIncluded, error) {
	q := make([]string, 0, len(params)/2)
	for i := 0; i+1 < len(params); i += 2 {
		// Commas stay as they are: they separate the values of a filter,
		// and escaping them would triple a guid filter's separators.
		q = append(q, params[i]+"="+strings.ReplaceAll(url.QueryEscape(params[i+1]), "%2C", ","))
	}
	pathAndQuery := path + "?" + strings.Join(q, "&")
	for try := 0; ; try++ {
		resources, included, err := listOnce[R](ctx, c, path, pathAndQuery, include)
		if errors.Is(err, errListingChanged) && try == 0 {
			continue
		}
		return resources, included, err
	}
}

func listOnce[R any](ctx context.Context, c *Client, path, pathAndQuery string, include bool) ([]R, []*cfIncluded, error) {
	var (
		resources []R
		included  []*cfIncluded
		total     = -1
	)
	for page := 1; ; {
		var p cfListPage[R]
		if err := c.getURL(ctx, c.listURL(pathAndQuery, page), path, &p); err != nil {
			return nil, nil, err
		}
		if include && p.Included == nil {
			return nil, nil, malformed(path, "page "+strconv.Itoa(page)+" has no included resources")
		}
		// Resources created meanwhile join the end of the order and skip
		// nothing; a removal shifts later resources back a place, so that
		// one would be missed.
		if p.Pagination.TotalResults < total {
			return nil, nil, fmt.Errorf("%s: %w", path, errListingChanged)
		}
		total = p.Pagination.TotalResults
		resources = append(resources, p.Resources...)
		included = append(included, p.Included)
		if p.Pagination.Next.Href == "" {
			break
		}
		next, err := url.Parse(p.Pagination.Next.Href)
		if err != nil || next.Query().Get("page") != strconv.Itoa(page+1) || page >= maxPages {
			return nil, nil, malformed(path, "page "+strconv.Itoa(page)+" has an unexpected next link")
		}
		page++
	}
	if len(resources) != total {
		return nil, nil, fmt.Errorf("%s: %w (%d of %d resources read)", path, errListingChanged, len(resources), total)
	}
	return resources, included, nil
}

// get GETs a path and query of the API and decodes the JSON answer into out.
func (c *Client) get(ctx context.Context, pathAndQuery string, out any) error {
	return c.getURL(ctx, c.api+pathAndQuery, endpoint(strings.SplitN(pathAndQuery, "?", 2)[0]), out)
}

func (c *Client) getURL(ctx context.Context, target, endpoint string, out any) error {
	c.reauth.RLock()
	resp, err := c.do(ctx, target)
	c.reauth.RUnlock()
	if errors.Is(err, errTokenRefused) {
		c.reauth.Lock()
		resp, err = c.do(context.WithValue(ctx, mayReauthKey{}, true), target)
		c.reauth.Unlock()
	}
	if err != nil {
		return fmt.Errorf("GET %s: %w: %w", endpoint, ErrUnavailable, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return newStatusError(resp, endpoint)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return malformed(endpoint, err.Error())
	}
	return nil
}

func (c *Client) do(ctx context.Context, target string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	return c.cf.HTTPAuthClient().Do(req)
}

// mayReauthKey marks the context of a request that may let go-cfclient
// renew a refused token (see Client.reauth).
type mayReauthKey struct{}

var (
	// errTokenRefused is a 401 to a request that may not renew the token.
	errTokenRefused = errors.New("CF API refused the access token")
	// errBadCredentials is UAA's 401 to a token request. It is an error,
	// not an answer, so that go-cfclient does not try again (concurrently).
	errBadCredentials = errors.New("UAA refused the credentials")
)

// cfStatusError is an answer other than 200. It wraps ErrUnavailable;
// callers turn the statuses that mean "not there" into their own errors.
type cfStatusError struct {
	path   string
	status int
	detail string
}

func newStatusError(resp *http.Response, path string) error {
	e := &cfStatusError{path: path, status: resp.StatusCode}
	var body resource.CloudFoundryErrors
	if data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16)); err == nil && json.Unmarshal(data, &body) == nil && len(body.Errors) > 0 {
		e.detail = body.Errors[0].Title + ": " + body.Errors[0].Detail
	}
	return e
}

func (e *cfStatusError) Error() string {
	msg := fmt.Sprintf("%v: GET %s answered %d", ErrUnavailable, e.path, e.status)
	if e.detail != "" {
		msg += " (" + e.detail + ")"
	}
	return msg
}

func (e *cfStatusError) Unwrap() error { return ErrUnavailable }

func malformed(path, why string) error {
	return fmt.Errorf("%w: GET %s: malformed answer: %s", ErrUnavailable, path, why)
}

// endpoint is the metric label of a URL path: GUIDs become ":guid".
func endpoint(path string) string {
	segments := strings.Split(path, "/")
	for i, s := range segments {
		if scrape.ValidGUID(s) {
			segments[i] = ":guid"
		}
	}
	return strings.Join(segments, "/")
}

// together runs fns at most `concurrency` at a time and returns the first
// error, cancelling the others.
func together(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		slots = make(chan struct{}, concurrency)
	)
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				once.Do(func() { first = ctx.Err() })
				return
			}
			defer func() { <-slots }()
			if err := fn(ctx); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return first
}

// cfMetrics count and time every HTTP attempt to the CF API and UAA.
type cfMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newCFMetrics(reg prometheus.Registerer) (*cfMetrics, error) {
	m := &cfMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cf_app_discovery_cf_requests_total",
			Help: "HTTP requests to the CF API and UAA, retries included, by endpoint and status code (\"error\" when no answer came).",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cf_app_discovery_cf_request_duration_seconds",
			Help:    "Time to the response headers of HTTP requests to the CF API and UAA, by endpoint.",
			Buckets: prometheus.DefBuckets,
		}, []string{"endpoint"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the equal collector already registered
// (several clients may share a registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// cfTransport sits under go-cfclient's authenticating transport. It
// measures every attempt and retries idempotent requests on 429, 5xx and
// network errors with bounded, jittered exponential backoff, honouring
// Retry-After up to maxDelay.
type cfTransport struct {
	base           http.RoundTripper
	metrics        *cfMetrics
	attempts       int
	baseDelay      time.Duration
	maxDelay       time.Duration
	attemptTimeout time.Duration
}

// RoundTrip implements http.RoundTripper.
func (t *cfTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return t.attempt(req)
	}
	for n := 1; ; n++ {
		resp, err := t.attempt(req)
		if n >= t.attempts || !retryable(resp, err) || req.Context().Err() != nil {
			return resp, err
		}
		delay := t.backoff(n)
		if resp != nil {
			if after, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
				delay = min(after, t.maxDelay)
			}
			drain(resp)
		}
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		}
	}
}

// attempt sends req once, bounded by attemptTimeout, and records it.
func (t *cfTransport) attempt(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.attemptTimeout)
	start := time.Now()
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	label := endpoint(req.URL.Path)
	t.metrics.duration.WithLabelValues(label).Observe(time.Since(start).Seconds())
	if err != nil {
		cancel()
		t.metrics.requests.WithLabelValues(label, "error").Inc()
		return nil, err
	}
	t.metrics.requests.WithLabelValues(label, strconv.Itoa(resp.StatusCode)).Inc()
	if resp.StatusCode == http.StatusUnauthorized {
		switch {
		case strings.HasSuffix(req.URL.Path, "/oauth/token"):
			drain(resp)
			cancel()
			return nil, errBadCredentials
		case strings.HasPrefix(req.Header.Get("Authorization"), "Bearer ") && req.Context().Value(mayReauthKey{}) == nil:
			drain(resp)
			cancel()
			return nil, errTokenRefused
		}
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
}

// cancelOnClose ends an attempt's context once its body is read.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return true
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
}

// backoff is the delay before retry n (1-based): baseDelay doubled per
// retry, capped, with up to half of it random so clients do not retry in
// step.
func (t *cfTransport) backoff(n int) time.Duration {
	d := t.baseDelay << min(n-1, 16)
	d = min(d, t.maxDelay)
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}
