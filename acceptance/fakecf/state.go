package fakecf

import (
	"cmp"
	"crypto/sha1"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ErrNotFound is returned (wrapped) when a method names a resource the fake
// does not hold.
var ErrNotFound = errors.New("not found")

// ErrInvalidState is returned (wrapped) when an action does not apply to a
// resource in its current state, e.g. continuing a deployment that is not
// paused, as Cloud Controller refuses it.
var ErrInvalidState = errors.New("invalid state")

// epoch is the created_at of the first resource without one; later ones
// follow a second apart, so the default order is the order of creation.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// GUID returns a deterministic GUID for the n-th resource of a kind, for
// tests that need stable, valid GUIDs: GUID("app", 7).
func GUID(kind string, n int) string {
	return deriveGUID(kind, fmt.Sprint(n))
}

func deriveGUID(parts ...string) string {
	h := sha1.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	b := h.Sum(nil)
	b[6] = b[6]&0x0f | 0x50 // version 5
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Records are immutable once stored: a mutation stores a new record, so
// that snapshots being served keep theirs. raw is the rendered JSON, filled
// when a snapshot is built.
type (
	orgRec struct {
		Org
		seq uint64
		raw []byte
	}
	spaceRec struct {
		Space
		seq uint64
		raw []byte
	}
	appRec struct {
		App
		seq uint64
		raw []byte
	}
	procRec struct {
		guid, appGUID, typ string
		instances          int
		created, updated   time.Time
		seq                uint64
		raw                []byte
	}
	domainRec struct {
		Domain
		created time.Time
		seq     uint64
		raw     []byte
	}
	routeRec struct {
		Route
		seq uint64
		raw []byte
	}
	planRec struct {
		ServicePlan
		created time.Time
		seq     uint64
		raw     []byte
	}
	bindingRec struct {
		Binding
		seq uint64
		raw []byte
	}
)

type state struct {
	seq      uint64
	now      func() time.Time
	orgs     map[string]*orgRec
	spaces   map[string]*spaceRec
	apps     map[string]*appRec
	procs    map[string][]*procRec // by app guid, oldest first
	domains  map[string]*domainRec
	routes   map[string]*routeRec
	plans    map[string]*planRec
	bindings map[string]*bindingRec
	deploys  map[string]*deployRec
	events   []*eventRec // oldest first
	// eventSeq and deploySeq number events and deployments, apart from
	// seq so that recording them leaves other resources' times alone.
	eventSeq, deploySeq uint64
	visible             map[string]bool // space guids the user sees; nil: all
}

func newState(now func() time.Time) *state {
	return &state{
		now:      now,
		orgs:     map[string]*orgRec{},
		spaces:   map[string]*spaceRec{},
		apps:     map[string]*appRec{},
		procs:    map[string][]*procRec{},
		domains:  map[string]*domainRec{},
		routes:   map[string]*routeRec{},
		plans:    map[string]*planRec{},
		bindings: map[string]*bindingRec{},
		deploys:  map[string]*deployRec{},
	}
}

// next returns a sequence number and the created_at to use when t is zero.
func (st *state) next(t time.Time) (uint64, time.Time) {
	st.seq++
	if t.IsZero() {
		t = epoch.Add(time.Duration(st.seq) * time.Second)
	}
	return st.seq, t.UTC().Truncate(time.Second)
}

// mutate runs f on the state under the lock and drops the snapshot.
func (s *Server) mutate(f func(st *state) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap = nil
	return f(s.st)
}

// AddOrg adds (or replaces) an org. An empty GUID is derived from the name.
func (s *Server) AddOrg(o Org) Org {
	_ = s.mutate(func(st *state) error {
		if o.GUID == "" {
			o.GUID = deriveGUID("org", o.Name)
		}
		var seq uint64
		seq, o.CreatedAt = st.next(o.CreatedAt)
		st.orgs[o.GUID] = &orgRec{Org: o, seq: seq}
		return nil
	})
	return o
}

// AddSpace adds (or replaces) a space of an existing org.
func (s *Server) AddSpace(sp Space) (Space, error) {
	err := s.mutate(func(st *state) error {
		if st.orgs[sp.OrgGUID] == nil {
			return fmt.Errorf("fakecf: space %q: org %q: %w", sp.Name, sp.OrgGUID, ErrNotFound)
		}
		if sp.GUID == "" {
			sp.GUID = deriveGUID("space", sp.OrgGUID, sp.Name)
		}
		var seq uint64
		seq, sp.CreatedAt = st.next(sp.CreatedAt)
		st.spaces[sp.GUID] = &spaceRec{Space: sp, seq: seq}
		return nil
	})
	return sp, err
}

// AddApp adds (or replaces) an app in an existing space, with a web process
// of a.Instances instances. Like the other Add methods it seeds the fake and
// records no audit event.
func (s *Server) AddApp(a App) (App, error) {
	err := s.mutate(func(st *state) error {
		if st.spaces[a.SpaceGUID] == nil {
			return fmt.Errorf("fakecf: app %q: space %q: %w", a.Name, a.SpaceGUID, ErrNotFound)
		}
		if a.GUID == "" {
			a.GUID = deriveGUID("app", a.SpaceGUID, a.Name)
		}
		if a.State == "" {
			a.State = Started
		}
		var seq uint64
		seq, a.CreatedAt = st.next(a.CreatedAt)
		st.apps[a.GUID] = &appRec{App: a, seq: seq}
		st.setProcess(a.GUID, "web", a.Instances)
		return nil
	})
	return a, err
}

// byCreation orders processes as Cloud Controller lists them.
func byCreation(a, b *procRec) int {
	if c := a.created.Compare(b.created); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// processesOf returns an app's processes of one type, oldest first.
func (st *state) processesOf(appGUID, typ string) []*procRec {
	var out []*procRec
	for _, p := range st.procs[appGUID] {
		if p.typ == typ {
			out = append(out, p)
		}
	}
	return out
}

// newestProcess is the process of a type that Cloud Controller acts on
// (the newest web process while a deployment runs), or nil.
func (st *state) newestProcess(appGUID, typ string) *procRec {
	ps := st.processesOf(appGUID, typ)
	if len(ps) == 0 {
		return nil
	}
	return ps[len(ps)-1]
}

// putProcess stores p, replacing the record with its guid.
func (st *state) putProcess(p *procRec) {
	ps := slices.DeleteFunc(slices.Clone(st.procs[p.appGUID]), func(o *procRec) bool { return o.guid == p.guid })
	ps = append(ps, p)
	slices.SortFunc(ps, byCreation)
	st.procs[p.appGUID] = ps
}

// dropProcess removes one process of an app.
func (st *state) dropProcess(appGUID, guid string) {
	ps := slices.DeleteFunc(slices.Clone(st.procs[appGUID]), func(o *procRec) bool { return o.guid == guid })
	if len(ps) == 0 {
		delete(st.procs, appGUID)
		return
	}
	st.procs[appGUID] = ps
}

// setProcess sets the instances of the app's (newest) process of a type,
// creating it when the app has none, and reports whether it did. As in CF,
// an app's first web process has the app's guid.
func (st *state) setProcess(appGUID, typ string, instances int) (*procRec, bool) {
	if old := st.newestProcess(appGUID, typ); old != nil {
		p := *old
		p.instances, p.updated, p.raw = instances, st.now().UTC(), nil
		st.putProcess(&p)
		return &p, false
	}
	guid := appGUID
	if typ != "web" {
		guid = deriveGUID("process", appGUID, typ)
	}
	seq, created := st.next(st.apps[appGUID].CreatedAt)
	p := &procRec{guid: guid, appGUID: appGUID, typ: typ, instances: instances, created: created, updated: created, seq: seq}
	st.putProcess(p)
	return p, true
}

func (st *state) app(guid string) (*appRec, error) {
	a := st.apps[guid]
	if a == nil {
		return nil, fmt.Errorf("fakecf: app %q: %w", guid, ErrNotFound)
	}
	return a, nil
}

// updateApp replaces an app's record with f applied to a copy, then
// records the event typ (none when typ is empty) with the data f returns.
func (s *Server) updateApp(guid, typ string, f func(a *App) map[string]any) error {
	return s.mutate(func(st *state) error {
		old, err := st.app(guid)
		if err != nil {
			return err
		}
		a := old.App
		data := f(&a)
		rec := &appRec{App: a, seq: old.seq}
		st.apps[guid] = rec
		if typ != "" {
			st.recordAppEvent(typ, rec, data)
		}
		return nil
	})
}

// SetProcess sets the instance count of one process type of an app (its
// newest web process for "web"), creating the process if needed. It records
// audit.app.process.scale, or audit.app.process.create for a new process.
func (s *Server) SetProcess(appGUID, processType string, instances int) error {
	return s.mutate(func(st *state) error {
		a, err := st.app(appGUID)
		if err != nil {
			return err
		}
		if processType == "web" {
			if err := st.refuseWhileDeploying(appGUID, "scale the web process"); err != nil {
				return err
			}
		}
		p, created := st.setProcess(appGUID, processType, instances)
		if created {
			st.recordAppEvent(EventProcessCreate, a, processData(p))
			return nil
		}
		data := processData(p)
		data["request"] = map[string]any{"instances": instances}
		st.recordAppEvent(EventProcessScale, a, data)
		return nil
	})
}

// RemoveProcess removes every process of a type from an app (e.g. to leave
// an app with no web process), recording audit.app.process.delete for each.
func (s *Server) RemoveProcess(appGUID, processType string) error {
	return s.mutate(func(st *state) error {
		a, err := st.app(appGUID)
		if err != nil {
			return err
		}
		for _, p := range st.processesOf(appGUID, processType) {
			st.dropProcess(appGUID, p.guid)
			st.recordAppEvent(EventProcessDelete, a, processData(p))
		}
		return nil
	})
}

// Scale sets the instance count of an app's web process, as `cf scale -i`
// does (audit.app.process.scale). Like Cloud Controller it refuses while a
// deployment of the app runs.
func (s *Server) Scale(appGUID string, instances int) error {
	return s.SetProcess(appGUID, "web", instances)
}

// StopApp sets an app's state to STOPPED (audit.app.stop).
func (s *Server) StopApp(appGUID string) error {
	return s.updateApp(appGUID, EventStop, func(a *App) map[string]any {
		a.State = Stopped
		return nil
	})
}

// StartApp sets an app's state to STARTED (audit.app.start).
func (s *Server) StartApp(appGUID string) error {
	return s.updateApp(appGUID, EventStart, func(a *App) map[string]any {
		a.State = Started
		return nil
	})
}

// RestartApp restarts an app, starting it if it was stopped, as `cf
// restart` without a strategy does (audit.app.restart).
func (s *Server) RestartApp(appGUID string) error {
	return s.updateApp(appGUID, EventRestart, func(a *App) map[string]any {
		a.State = Started
		return nil
	})
}

// SetAnnotations sets an app's annotations as a PATCH of its metadata does, an
// empty value removing one (audit.app.update).
func (s *Server) SetAnnotations(appGUID string, annotations map[string]string) error {
	return s.updateApp(appGUID, EventUpdate, func(a *App) map[string]any {
		merged := maps.Clone(a.Annotations)
		if merged == nil {
			merged = map[string]string{}
		}
		for k, v := range annotations {
			if v == "" {
				delete(merged, k)
			} else {
				merged[k] = v
			}
		}
		a.Annotations = merged
		return map[string]any{"request": map[string]any{"metadata": map[string]any{"annotations": annotations}}}
	})
}

// Rename renames an app (audit.app.update).
func (s *Server) Rename(appGUID, name string) error {
	return s.updateApp(appGUID, EventUpdate, func(a *App) map[string]any {
		a.Name = name
		return map[string]any{"request": map[string]any{"name": name}}
	})
}

// DeleteApp deletes an app, its processes, deployments, route destinations
// and bindings, recording what Cloud Controller does: audit.app.unmap-route
// for each destination, audit.app.process.delete for each process, then
// audit.app.delete-request. (Cloud Controller also records the deletion of
// each binding, package and droplet; the fake does not.)
func (s *Server) DeleteApp(appGUID string) error {
	return s.mutate(func(st *state) error {
		a, err := st.app(appGUID)
		if err != nil {
			return err
		}
		for _, r := range ordered(st.routes, func(r *routeRec) (time.Time, uint64) { return r.CreatedAt, r.seq }) {
			st.unmap(r, a)
		}
		for _, p := range st.procs[appGUID] {
			st.recordAppEvent(EventProcessDelete, a, processData(p))
		}
		st.recordAppEvent(EventDeleteRequest, a, nil)
		delete(st.apps, appGUID)
		delete(st.procs, appGUID)
		for guid, d := range st.deploys {
			if d.AppGUID == appGUID {
				delete(st.deploys, guid)
			}
		}
		for guid, b := range st.bindings {
			if b.AppGUID == appGUID {
				delete(st.bindings, guid)
			}
		}
		return nil
	})
}

// AddDomain adds (or replaces) a shared domain.
func (s *Server) AddDomain(d Domain) Domain {
	_ = s.mutate(func(st *state) error {
		if d.GUID == "" {
			d.GUID = deriveGUID("domain", d.Name)
		}
		seq, created := st.next(time.Time{})
		st.domains[d.GUID] = &domainRec{Domain: d, created: created, seq: seq}
		return nil
	})
	return d
}

// AddRoute adds (or replaces) a route on an existing domain.
func (s *Server) AddRoute(r Route) (Route, error) {
	err := s.mutate(func(st *state) error {
		if st.domains[r.DomainGUID] == nil {
			return fmt.Errorf("fakecf: route %q: domain %q: %w", r.Host, r.DomainGUID, ErrNotFound)
		}
		if r.Protocol == "" {
			r.Protocol = HTTP1
		}
		if r.GUID == "" {
			r.GUID = deriveGUID("route", r.Host, r.DomainGUID, r.Path, fmt.Sprint(r.Port))
		}
		r.Destinations = slices.Clone(r.Destinations)
		for i := range r.Destinations {
			d, err := st.destination(r.GUID, r.Destinations[i])
			if err != nil {
				return err
			}
			r.Destinations[i] = d
		}
		if r.SpaceGUID == "" && len(r.Destinations) > 0 {
			r.SpaceGUID = st.apps[r.Destinations[0].AppGUID].SpaceGUID
		}
		if st.spaces[r.SpaceGUID] == nil {
			return fmt.Errorf("fakecf: route %q: space %q: %w", r.Host, r.SpaceGUID, ErrNotFound)
		}
		var seq uint64
		seq, r.CreatedAt = st.next(r.CreatedAt)
		st.routes[r.GUID] = &routeRec{Route: r, seq: seq}
		return nil
	})
	return r, err
}

func (st *state) destination(routeGUID string, d Destination) (Destination, error) {
	if _, err := st.app(d.AppGUID); err != nil {
		return d, err
	}
	if d.ProcessType == "" {
		d.ProcessType = "web"
	}
	if d.GUID == "" {
		d.GUID = deriveGUID("destination", routeGUID, d.AppGUID, d.ProcessType)
	}
	return d, nil
}

// RemoveRoute deletes a route, as `cf delete-route` does. Cloud Controller
// records audit.route.delete-request, whose target is the route: no event
// names the apps it was mapped to.
func (s *Server) RemoveRoute(guid string) error {
	return s.mutate(func(st *state) error {
		r := st.routes[guid]
		if r == nil {
			return fmt.Errorf("fakecf: route %q: %w", guid, ErrNotFound)
		}
		delete(st.routes, guid)
		sp := st.spaces[r.SpaceGUID]
		st.record(eventRec{
			typ: EventRouteDeleteRequest, targetGUID: r.GUID, targetType: "route", targetName: r.Host,
			spaceGUID: sp.GUID, orgGUID: sp.OrgGUID,
			data: map[string]any{"request": map[string]any{"recursive": true}},
		})
		return nil
	})
}

// MapRoute adds a destination (an app's process) to a route
// (audit.app.map-route).
func (s *Server) MapRoute(routeGUID, appGUID, processType string) error {
	return s.mutate(func(st *state) error {
		r := st.routes[routeGUID]
		if r == nil {
			return fmt.Errorf("fakecf: route %q: %w", routeGUID, ErrNotFound)
		}
		d, err := st.destination(routeGUID, Destination{AppGUID: appGUID, ProcessType: processType})
		if err != nil {
			return err
		}
		nr := r.Route
		nr.Destinations = append(slices.Clone(r.Destinations), d)
		st.routes[routeGUID] = &routeRec{Route: nr, seq: r.seq}
		st.recordAppEvent(EventMapRoute, st.apps[appGUID], destinationData(nr, d))
		return nil
	})
}

// UnmapRoute removes every destination of an app from a route
// (audit.app.unmap-route for each).
func (s *Server) UnmapRoute(routeGUID, appGUID string) error {
	return s.mutate(func(st *state) error {
		r := st.routes[routeGUID]
		if r == nil {
			return fmt.Errorf("fakecf: route %q: %w", routeGUID, ErrNotFound)
		}
		a, err := st.app(appGUID)
		if err != nil {
			return err
		}
		st.unmap(r, a)
		return nil
	})
}

// unmap removes the app's destinations from a route, recording each.
func (st *state) unmap(r *routeRec, a *appRec) {
	nr := r.Route
	nr.Destinations = nil
	for _, d := range r.Destinations {
		if d.AppGUID == a.GUID {
			st.recordAppEvent(EventUnmapRoute, a, destinationData(r.Route, d))
			continue
		}
		nr.Destinations = append(nr.Destinations, d)
	}
	if len(nr.Destinations) != len(r.Destinations) {
		st.routes[r.GUID] = &routeRec{Route: nr, seq: r.seq}
	}
}

// AddServicePlan adds (or replaces) a service plan.
func (s *Server) AddServicePlan(p ServicePlan) ServicePlan {
	_ = s.mutate(func(st *state) error {
		if p.GUID == "" {
			p.GUID = deriveGUID("plan", p.BrokerCatalogID, p.Name)
		}
		seq, created := st.next(time.Time{})
		st.plans[p.GUID] = &planRec{ServicePlan: p, created: created, seq: seq}
		return nil
	})
	return p
}

// AddBinding adds (or replaces) a service credential binding of an
// existing plan (and app, for an app binding).
func (s *Server) AddBinding(b Binding) (Binding, error) {
	err := s.mutate(func(st *state) error {
		if st.plans[b.PlanGUID] == nil {
			return fmt.Errorf("fakecf: binding: plan %q: %w", b.PlanGUID, ErrNotFound)
		}
		if b.Type == "" {
			b.Type = AppBinding
		}
		if b.Type == AppBinding {
			a, err := st.app(b.AppGUID)
			if err != nil {
				return err
			}
			b.SpaceGUID = a.SpaceGUID
		}
		if b.ServiceInstanceGUID == "" {
			b.ServiceInstanceGUID = deriveGUID("service-instance", b.PlanGUID, b.SpaceGUID)
		}
		if b.GUID == "" {
			b.GUID = deriveGUID("binding", b.ServiceInstanceGUID, b.AppGUID)
		}
		if b.LastOperation.Type == "" {
			b.LastOperation.Type = OpCreate
		}
		if b.LastOperation.State == "" {
			b.LastOperation.State = OpSucceeded
		}
		var seq uint64
		seq, b.CreatedAt = st.next(b.CreatedAt)
		st.bindings[b.GUID] = &bindingRec{Binding: b, seq: seq}
		return nil
	})
	return b, err
}

// SetBindingLastOperation sets a binding's last operation, e.g.
// {OpDelete, OpInProgress} while Cloud Controller unbinds it.
func (s *Server) SetBindingLastOperation(guid string, op LastOperation) error {
	return s.mutate(func(st *state) error {
		old := st.bindings[guid]
		if old == nil {
			return fmt.Errorf("fakecf: binding %q: %w", guid, ErrNotFound)
		}
		b := old.Binding
		b.LastOperation = op
		st.bindings[guid] = &bindingRec{Binding: b, seq: old.seq}
		return nil
	})
}

// DeleteBinding deletes a binding.
func (s *Server) DeleteBinding(guid string) error {
	return s.mutate(func(st *state) error {
		if st.bindings[guid] == nil {
			return fmt.Errorf("fakecf: binding %q: %w", guid, ErrNotFound)
		}
		delete(st.bindings, guid)
		return nil
	})
}

// RestrictToSpaces makes only resources in these spaces visible to the API
// user, as for a Space Auditor of them; others answer 404 or are left out
// of listings. With no argument nothing in any space is visible.
func (s *Server) RestrictToSpaces(spaceGUIDs ...string) {
	_ = s.mutate(func(st *state) error {
		st.visible = map[string]bool{}
		for _, g := range spaceGUIDs {
			st.visible[g] = true
		}
		return nil
	})
}

// Unrestrict makes every resource visible again (an admin reader).
func (s *Server) Unrestrict() {
	_ = s.mutate(func(st *state) error {
		st.visible = nil
		return nil
	})
}
