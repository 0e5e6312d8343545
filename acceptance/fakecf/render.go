package fakecf

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The JSON shapes below follow the CF API v3 reference for each resource.

type link struct {
	Href   string `json:"href"`
	Method string `json:"method,omitempty"`
}

type toOne struct {
	Data *guidRef `json:"data"`
}

type guidRef struct {
	GUID string `json:"guid"`
}

func one(guid string) toOne {
	if guid == "" {
		return toOne{}
	}
	return toOne{Data: &guidRef{GUID: guid}}
}

type metadata struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

var emptyMetadata = metadata{Labels: map[string]string{}, Annotations: map[string]string{}}

func stamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed shapes of strings and numbers are marshalled
	}
	return b
}

func renderOrg(base string, o Org) []byte {
	self := base + "/v3/organizations/" + o.GUID
	return mustJSON(map[string]any{
		"guid": o.GUID, "created_at": stamp(o.CreatedAt), "updated_at": stamp(o.CreatedAt),
		"name": o.Name, "suspended": false,
		"relationships": map[string]any{"quota": one(deriveGUID("org-quota", "default"))},
		"metadata":      emptyMetadata,
		"links": map[string]link{
			"self": {Href: self}, "domains": {Href: self + "/domains"},
			"default_domain": {Href: self + "/domains/default"},
			"quota":          {Href: base + "/v3/organization_quotas/" + deriveGUID("org-quota", "default")},
		},
	})
}

func renderSpace(base string, sp Space) []byte {
	self := base + "/v3/spaces/" + sp.GUID
	return mustJSON(map[string]any{
		"guid": sp.GUID, "created_at": stamp(sp.CreatedAt), "updated_at": stamp(sp.CreatedAt),
		"name":          sp.Name,
		"relationships": map[string]any{"organization": one(sp.OrgGUID), "quota": one("")},
		"metadata":      emptyMetadata,
		"links": map[string]link{
			"self": {Href: self}, "features": {Href: self + "/features"},
			"organization":   {Href: base + "/v3/organizations/" + sp.OrgGUID},
			"apply_manifest": {Href: self + "/actions/apply_manifest", Method: "POST"},
		},
	})
}

func appMetadata(a App) metadata {
	if len(a.Annotations) == 0 {
		return emptyMetadata
	}
	return metadata{Labels: map[string]string{}, Annotations: a.Annotations}
}

func renderApp(base string, a App) []byte {
	self := base + "/v3/apps/" + a.GUID
	return mustJSON(map[string]any{
		"guid": a.GUID, "created_at": stamp(a.CreatedAt), "updated_at": stamp(a.CreatedAt),
		"name": a.Name, "state": a.State,
		"lifecycle": map[string]any{"type": "buildpack", "data": map[string]any{
			"buildpacks": []string{"go_buildpack"}, "stack": "cflinuxfs4",
		}},
		"relationships": map[string]any{"space": one(a.SpaceGUID)},
		"metadata":      appMetadata(a),
		"links": map[string]link{
			"self": {Href: self}, "space": {Href: base + "/v3/spaces/" + a.SpaceGUID},
			"processes": {Href: self + "/processes"}, "packages": {Href: self + "/packages"},
			"environment_variables": {Href: self + "/environment_variables"},
			"current_droplet":       {Href: self + "/droplets/current"}, "droplets": {Href: self + "/droplets"},
			"tasks": {Href: self + "/tasks"}, "revisions": {Href: self + "/revisions"},
			"deployed_revisions": {Href: self + "/revisions/deployed"}, "features": {Href: self + "/features"},
			"start": {Href: self + "/actions/start", Method: "POST"},
			"stop":  {Href: self + "/actions/stop", Method: "POST"},
		},
	})
}

func renderProcess(base string, p *procRec, spaceGUID string) []byte {
	self := base + "/v3/processes/" + p.guid
	healthCheck := map[string]any{"type": "port", "data": map[string]any{"timeout": nil, "invocation_timeout": nil}}
	if p.typ != "web" {
		healthCheck = map[string]any{"type": "process", "data": map[string]any{"timeout": nil}}
	}
	return mustJSON(map[string]any{
		"guid": p.guid, "created_at": stamp(p.created), "updated_at": stamp(p.updated),
		"type": p.typ, "version": deriveGUID("process-version", p.guid),
		// Cloud Controller redacts the command in lists for most roles.
		"command":   "[PRIVATE DATA HIDDEN IN LISTS]",
		"instances": p.instances, "memory_in_mb": 256, "disk_in_mb": 1024,
		"log_rate_limit_in_bytes_per_second": -1,
		"health_check":                       healthCheck,
		"readiness_health_check":             map[string]any{"type": "process", "data": map[string]any{"invocation_timeout": nil, "interval": nil}},
		"relationships":                      map[string]any{"app": one(p.appGUID), "revision": one("")},
		"metadata":                           emptyMetadata,
		"links": map[string]link{
			"self": {Href: self}, "scale": {Href: self + "/actions/scale", Method: "POST"},
			"app": {Href: base + "/v3/apps/" + p.appGUID}, "space": {Href: base + "/v3/spaces/" + spaceGUID},
			"stats": {Href: self + "/stats"},
		},
	})
}

func renderDomain(base string, d *domainRec) []byte {
	self := base + "/v3/domains/" + d.GUID
	protocols := []string{"http"}
	var routerGroup any
	if d.TCP {
		protocols = []string{"tcp"}
		routerGroup = guidRef{GUID: deriveGUID("router-group", "default-tcp")}
	}
	return mustJSON(map[string]any{
		"guid": d.GUID, "created_at": stamp(d.created), "updated_at": stamp(d.created),
		"name": d.Name, "internal": d.Internal, "router_group": routerGroup,
		"supported_protocols": protocols,
		"relationships": map[string]any{
			"organization":         one(""),
			"shared_organizations": map[string]any{"data": []guidRef{}},
		},
		"metadata": emptyMetadata,
		"links": map[string]link{
			"self": {Href: self}, "route_reservations": {Href: self + "/route_reservations"},
		},
	})
}

type destinationJSON struct {
	GUID string `json:"guid"`
	App  struct {
		GUID    string `json:"guid"`
		Process struct {
			Type string `json:"type"`
		} `json:"process"`
	} `json:"app"`
	Weight   *int   `json:"weight"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol"`
}

func renderRoute(base string, r Route, domain string) []byte {
	self := base + "/v3/routes/" + r.GUID
	url := domain
	if r.Host != "" {
		url = r.Host + "." + domain
	}
	var port any
	if r.Protocol == TCP {
		port = r.Port
		url += ":" + strconv.Itoa(r.Port)
	}
	url += r.Path
	dests := make([]destinationJSON, 0, len(r.Destinations))
	for _, d := range r.Destinations {
		var dj destinationJSON
		dj.GUID = d.GUID
		dj.App.GUID = d.AppGUID
		dj.App.Process.Type = d.ProcessType
		dj.Port = cmp.Or(d.Port, 8080)
		dj.Protocol = r.Protocol
		dests = append(dests, dj)
	}
	return mustJSON(map[string]any{
		"guid": r.GUID, "created_at": stamp(r.CreatedAt), "updated_at": stamp(r.CreatedAt),
		"protocol": r.Protocol, "host": r.Host, "path": r.Path, "port": port, "url": url,
		"destinations": dests, "options": map[string]any{},
		"metadata": emptyMetadata,
		"relationships": map[string]any{
			"space": one(r.SpaceGUID), "domain": one(r.DomainGUID),
		},
		"links": map[string]link{
			"self": {Href: self}, "space": {Href: base + "/v3/spaces/" + r.SpaceGUID},
			"domain":       {Href: base + "/v3/domains/" + r.DomainGUID},
			"destinations": {Href: self + "/destinations"},
		},
	})
}

func renderPlan(base string, p *planRec) []byte {
	self := base + "/v3/service_plans/" + p.GUID
	offering := deriveGUID("service-offering", "fake")
	return mustJSON(map[string]any{
		"guid": p.GUID, "created_at": stamp(p.created), "updated_at": stamp(p.created),
		"name": p.Name, "description": p.Name, "visibility_type": "public",
		"available": true, "free": true, "costs": []any{},
		"maintenance_info": map[string]any{},
		"broker_catalog": map[string]any{
			"id": p.BrokerCatalogID, "metadata": map[string]any{}, "maximum_polling_duration": nil,
			"features": map[string]any{"plan_updateable": false, "bindable": true},
		},
		"schemas": map[string]any{
			"service_instance": map[string]any{"create": map[string]any{}, "update": map[string]any{}},
			"service_binding":  map[string]any{"create": map[string]any{}},
		},
		"relationships": map[string]any{"service_offering": one(offering)},
		"metadata":      emptyMetadata,
		"links": map[string]link{
			"self": {Href: self}, "service_offering": {Href: base + "/v3/service_offerings/" + offering},
			"visibility": {Href: self + "/visibility"},
		},
	})
}

func renderBinding(base string, b Binding) []byte {
	self := base + "/v3/service_credential_bindings/" + b.GUID
	rel := map[string]any{"service_instance": one(b.ServiceInstanceGUID)}
	links := map[string]link{
		"self": {Href: self}, "details": {Href: self + "/details"},
		"parameters":       {Href: self + "/parameters"},
		"service_instance": {Href: base + "/v3/service_instances/" + b.ServiceInstanceGUID},
	}
	var name any
	if b.Type == AppBinding {
		rel["app"] = one(b.AppGUID)
		links["app"] = link{Href: base + "/v3/apps/" + b.AppGUID}
	} else {
		name = "key-" + b.GUID[:8]
	}
	return mustJSON(map[string]any{
		"guid": b.GUID, "created_at": stamp(b.CreatedAt), "updated_at": stamp(b.CreatedAt),
		"name": name, "type": b.Type,
		"last_operation": map[string]any{
			"type": b.LastOperation.Type, "state": b.LastOperation.State, "description": "",
			"created_at": stamp(b.CreatedAt), "updated_at": stamp(b.CreatedAt),
		},
		"metadata": emptyMetadata, "relationships": rel, "links": links,
	})
}

type instRec struct {
	guid, spaceGUID, planGUID string
	created                   time.Time
	raw                       []byte
}

func renderInstance(base string, in *instRec) []byte {
	self := base + "/v3/service_instances/" + in.guid
	return mustJSON(map[string]any{
		"guid": in.guid, "created_at": stamp(in.created), "updated_at": stamp(in.created),
		"name": "prometheus-" + in.guid[:8], "type": "managed", "tags": []string{},
		"last_operation": map[string]any{
			"type": "create", "state": "succeeded", "description": "",
			"created_at": stamp(in.created), "updated_at": stamp(in.created),
		},
		"dashboard_url": nil, "upgrade_available": false, "maintenance_info": map[string]any{},
		"relationships": map[string]any{"space": one(in.spaceGUID), "service_plan": one(in.planGUID)},
		"metadata":      emptyMetadata,
		"links": map[string]link{
			"self": {Href: self}, "space": {Href: base + "/v3/spaces/" + in.spaceGUID},
			"service_plan":                {Href: base + "/v3/service_plans/" + in.planGUID},
			"service_credential_bindings": {Href: base + "/v3/service_credential_bindings?service_instance_guids=" + in.guid},
		},
	})
}

// snapshot is an immutable, sorted, pre-rendered view of the state, built
// once per change and shared by every request until the next change.
type snapshot struct {
	visible   map[string]bool
	orgs      []*orgRec
	spaces    []*spaceRec
	apps      []*appRec
	procs     []*procRec
	domains   []*domainRec
	routes    []*routeRec
	plans     []*planRec
	bindings  []*bindingRec
	instances []*instRec
	deploys   []*deployRec
	events    []*eventRec // oldest first

	orgByGUID      map[string]*orgRec
	spaceByGUID    map[string]*spaceRec
	appByGUID      map[string]*appRec
	procByGUID     map[string]*procRec
	domainByGUID   map[string]*domainRec
	routeByGUID    map[string]*routeRec
	planByGUID     map[string]*planRec
	bindingByGUID  map[string]*bindingRec
	instanceByGUID map[string]*instRec
	deployByGUID   map[string]*deployRec
	eventByGUID    map[string]*eventRec
}

// sees reports whether the API user can see resources of a space.
func (sn *snapshot) sees(spaceGUID string) bool {
	return sn.visible == nil || sn.visible[spaceGUID]
}

// Warm renders the answers for the current state now rather than on the
// next request, so that a test or benchmark does not time it.
func (s *Server) Warm() {
	s.snapshot()
}

func (s *Server) snapshot() *snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap == nil {
		s.snap = s.st.build(s.URL())
	}
	return s.snap
}

// ordered sorts records by creation time, then by order of insertion, the
// default order of Cloud Controller's listings.
func ordered[R any](m map[string]R, key func(R) (time.Time, uint64)) []R {
	type keyed struct {
		r    R
		t    time.Time
		seq  uint64
		guid string
	}
	ks := make([]keyed, 0, len(m))
	for guid, r := range m {
		t, seq := key(r)
		ks = append(ks, keyed{r, t, seq, guid})
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		if c := cmp.Compare(a.seq, b.seq); c != 0 {
			return c
		}
		return cmp.Compare(a.guid, b.guid)
	})
	out := make([]R, len(ks))
	for i, k := range ks {
		out[i] = k.r
	}
	return out
}

func (st *state) build(base string) *snapshot {
	sn := &snapshot{
		visible:        st.visible,
		orgByGUID:      make(map[string]*orgRec, len(st.orgs)),
		spaceByGUID:    make(map[string]*spaceRec, len(st.spaces)),
		appByGUID:      make(map[string]*appRec, len(st.apps)),
		procByGUID:     make(map[string]*procRec, len(st.procs)),
		domainByGUID:   make(map[string]*domainRec, len(st.domains)),
		routeByGUID:    make(map[string]*routeRec, len(st.routes)),
		planByGUID:     make(map[string]*planRec, len(st.plans)),
		bindingByGUID:  make(map[string]*bindingRec, len(st.bindings)),
		instanceByGUID: map[string]*instRec{},
		deployByGUID:   make(map[string]*deployRec, len(st.deploys)),
		eventByGUID:    make(map[string]*eventRec, len(st.events)),
		events:         slices.Clone(st.events),
	}
	if st.visible != nil {
		sn.visible = make(map[string]bool, len(st.visible))
		for k, v := range st.visible {
			sn.visible[k] = v
		}
	}
	// Rendering is most of the work: each kind renders on its own.
	var wg sync.WaitGroup
	wg.Go(func() {
		for guid, r := range st.orgs {
			if r.raw == nil {
				r.raw = renderOrg(base, r.Org)
			}
			sn.orgByGUID[guid] = r
		}
	})
	wg.Go(func() {
		for guid, r := range st.spaces {
			if r.raw == nil {
				r.raw = renderSpace(base, r.Space)
			}
			sn.spaceByGUID[guid] = r
		}
	})
	wg.Go(func() {
		for guid, r := range st.apps {
			if r.raw == nil {
				r.raw = renderApp(base, r.App)
			}
			sn.appByGUID[guid] = r
		}
	})
	wg.Go(func() {
		for _, ps := range st.procs {
			for _, r := range ps {
				if r.raw == nil {
					r.raw = renderProcess(base, r, st.apps[r.appGUID].SpaceGUID)
				}
				sn.procByGUID[r.guid] = r
			}
		}
	})
	wg.Go(func() {
		for guid, r := range st.deploys {
			if r.raw == nil {
				r.raw = renderDeployment(base, r.Deployment)
			}
			sn.deployByGUID[guid] = r
		}
		for _, r := range sn.events {
			if r.raw == nil {
				r.raw = renderEvent(base, r)
			}
			sn.eventByGUID[r.guid] = r
		}
	})
	wg.Go(func() {
		for guid, r := range st.domains {
			if r.raw == nil {
				r.raw = renderDomain(base, r)
			}
			sn.domainByGUID[guid] = r
		}
	})
	wg.Go(func() {
		for guid, r := range st.routes {
			if r.raw == nil {
				r.raw = renderRoute(base, r.Route, st.domains[r.DomainGUID].Name)
			}
			sn.routeByGUID[guid] = r
		}
	})
	wg.Go(func() {
		for guid, r := range st.plans {
			if r.raw == nil {
				r.raw = renderPlan(base, r)
			}
			sn.planByGUID[guid] = r
		}
	})
	for guid, r := range st.bindings {
		if r.raw == nil {
			r.raw = renderBinding(base, r.Binding)
		}
		sn.bindingByGUID[guid] = r
		in := sn.instanceByGUID[r.ServiceInstanceGUID]
		if in == nil || r.CreatedAt.Before(in.created) {
			sn.instanceByGUID[r.ServiceInstanceGUID] = &instRec{
				guid: r.ServiceInstanceGUID, spaceGUID: r.SpaceGUID, planGUID: r.PlanGUID, created: r.CreatedAt,
			}
		}
	}
	for _, in := range sn.instanceByGUID {
		in.raw = renderInstance(base, in)
	}
	wg.Wait()
	sn.orgs = ordered(sn.orgByGUID, func(r *orgRec) (time.Time, uint64) { return r.CreatedAt, r.seq })
	sn.spaces = ordered(sn.spaceByGUID, func(r *spaceRec) (time.Time, uint64) { return r.CreatedAt, r.seq })
	sn.apps = ordered(sn.appByGUID, func(r *appRec) (time.Time, uint64) { return r.CreatedAt, r.seq })
	sn.procs = ordered(sn.procByGUID, func(r *procRec) (time.Time, uint64) { return r.created, r.seq })
	sn.domains = ordered(sn.domainByGUID, func(r *domainRec) (time.Time, uint64) { return r.created, r.seq })
	sn.routes = ordered(sn.routeByGUID, func(r *routeRec) (time.Time, uint64) { return r.CreatedAt, r.seq })
	sn.plans = ordered(sn.planByGUID, func(r *planRec) (time.Time, uint64) { return r.created, r.seq })
	sn.bindings = ordered(sn.bindingByGUID, func(r *bindingRec) (time.Time, uint64) { return r.CreatedAt, r.seq })
	sn.instances = ordered(sn.instanceByGUID, func(r *instRec) (time.Time, uint64) { return r.created, 0 })
	sn.deploys = ordered(sn.deployByGUID, deploymentTimes)
	return sn
}
