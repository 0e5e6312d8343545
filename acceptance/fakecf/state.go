package fakecf

import (
	"crypto/sha1"
	"fmt"
	"slices"
	"time"
)

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
		created            time.Time
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
	orgs     map[string]*orgRec
	spaces   map[string]*spaceRec
	apps     map[string]*appRec
	procs    map[string]*procRec // key: app guid + "/" + type
	domains  map[string]*domainRec
	routes   map[string]*routeRec
	plans    map[string]*planRec
	bindings map[string]*bindingRec
	visible  map[string]bool // space guids the user sees; nil: all
}

func newState() *state {
	return &state{
		orgs:     map[string]*orgRec{},
		spaces:   map[string]*spaceRec{},
		apps:     map[string]*appRec{},
		procs:    map[string]*procRec{},
		domains:  map[string]*domainRec{},
		routes:   map[string]*routeRec{},
		plans:    map[string]*planRec{},
		bindings: map[string]*bindingRec{},
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
			return fmt.Errorf("fakecf: space %q: no org %q", sp.Name, sp.OrgGUID)
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
// of a.Instances instances.
func (s *Server) AddApp(a App) (App, error) {
	err := s.mutate(func(st *state) error {
		if st.spaces[a.SpaceGUID] == nil {
			return fmt.Errorf("fakecf: app %q: no space %q", a.Name, a.SpaceGUID)
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

func (st *state) setProcess(appGUID, typ string, instances int) {
	key := appGUID + "/" + typ
	guid := appGUID // as in CF, the web process has the app's guid
	if typ != "web" {
		guid = deriveGUID("process", appGUID, typ)
	}
	seq, created := st.next(st.apps[appGUID].CreatedAt)
	if old := st.procs[key]; old != nil {
		seq, created = old.seq, old.created
	}
	st.procs[key] = &procRec{guid: guid, appGUID: appGUID, typ: typ, instances: instances, created: created, seq: seq}
}

func (st *state) app(guid string) (*appRec, error) {
	a := st.apps[guid]
	if a == nil {
		return nil, fmt.Errorf("fakecf: no app %q", guid)
	}
	return a, nil
}

// updateApp replaces an app's record with f applied to a copy.
func (s *Server) updateApp(guid string, f func(a *App)) error {
	return s.mutate(func(st *state) error {
		old, err := st.app(guid)
		if err != nil {
			return err
		}
		a := old.App
		f(&a)
		st.apps[guid] = &appRec{App: a, seq: old.seq}
		return nil
	})
}

// SetProcess sets the instance count of one process type of an app,
// creating the process if needed.
func (s *Server) SetProcess(appGUID, processType string, instances int) error {
	return s.mutate(func(st *state) error {
		if _, err := st.app(appGUID); err != nil {
			return err
		}
		st.setProcess(appGUID, processType, instances)
		return nil
	})
}

// RemoveProcess removes one process of an app (e.g. an app with no web
// process).
func (s *Server) RemoveProcess(appGUID, processType string) error {
	return s.mutate(func(st *state) error {
		if _, err := st.app(appGUID); err != nil {
			return err
		}
		delete(st.procs, appGUID+"/"+processType)
		return nil
	})
}

// Scale sets the instance count of an app's web process.
func (s *Server) Scale(appGUID string, instances int) error {
	return s.SetProcess(appGUID, "web", instances)
}

// StopApp sets an app's state to STOPPED.
func (s *Server) StopApp(appGUID string) error {
	return s.updateApp(appGUID, func(a *App) { a.State = Stopped })
}

// StartApp sets an app's state to STARTED.
func (s *Server) StartApp(appGUID string) error {
	return s.updateApp(appGUID, func(a *App) { a.State = Started })
}

// Rename renames an app.
func (s *Server) Rename(appGUID, name string) error {
	return s.updateApp(appGUID, func(a *App) { a.Name = name })
}

// DeleteApp deletes an app, its processes, its route destinations and its
// bindings, as Cloud Controller does.
func (s *Server) DeleteApp(appGUID string) error {
	return s.mutate(func(st *state) error {
		if _, err := st.app(appGUID); err != nil {
			return err
		}
		delete(st.apps, appGUID)
		for key, p := range st.procs {
			if p.appGUID == appGUID {
				delete(st.procs, key)
			}
		}
		for guid, r := range st.routes {
			if slices.ContainsFunc(r.Destinations, func(d Destination) bool { return d.AppGUID == appGUID }) {
				nr := r.Route
				nr.Destinations = slices.DeleteFunc(slices.Clone(r.Destinations), func(d Destination) bool { return d.AppGUID == appGUID })
				st.routes[guid] = &routeRec{Route: nr, seq: r.seq}
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
			return fmt.Errorf("fakecf: route %q: no domain %q", r.Host, r.DomainGUID)
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
			return fmt.Errorf("fakecf: route %q: no space %q", r.Host, r.SpaceGUID)
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

// RemoveRoute deletes a route.
func (s *Server) RemoveRoute(guid string) error {
	return s.mutate(func(st *state) error {
		if st.routes[guid] == nil {
			return fmt.Errorf("fakecf: no route %q", guid)
		}
		delete(st.routes, guid)
		return nil
	})
}

// MapRoute adds a destination (an app's process) to a route.
func (s *Server) MapRoute(routeGUID, appGUID, processType string) error {
	return s.mutate(func(st *state) error {
		r := st.routes[routeGUID]
		if r == nil {
			return fmt.Errorf("fakecf: no route %q", routeGUID)
		}
		d, err := st.destination(routeGUID, Destination{AppGUID: appGUID, ProcessType: processType})
		if err != nil {
			return err
		}
		nr := r.Route
		nr.Destinations = append(slices.Clone(r.Destinations), d)
		st.routes[routeGUID] = &routeRec{Route: nr, seq: r.seq}
		return nil
	})
}

// UnmapRoute removes every destination of an app from a route.
func (s *Server) UnmapRoute(routeGUID, appGUID string) error {
	return s.mutate(func(st *state) error {
		r := st.routes[routeGUID]
		if r == nil {
			return fmt.Errorf("fakecf: no route %q", routeGUID)
		}
		nr := r.Route
		nr.Destinations = slices.DeleteFunc(slices.Clone(r.Destinations), func(d Destination) bool { return d.AppGUID == appGUID })
		st.routes[routeGUID] = &routeRec{Route: nr, seq: r.seq}
		return nil
	})
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
			return fmt.Errorf("fakecf: binding: no plan %q", b.PlanGUID)
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
			return fmt.Errorf("fakecf: no binding %q", guid)
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
			return fmt.Errorf("fakecf: no binding %q", guid)
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
