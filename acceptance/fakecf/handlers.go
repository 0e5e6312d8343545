package fakecf

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// serveV3 dispatches a GET under /v3/ to its list or show handler.
func (s *Server) serveV3(w http.ResponseWriter, r *http.Request, sn *snapshot) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/v3/"), "/"), "/")
	switch {
	case len(parts) == 1:
		s.serveV3List(w, r, sn, parts[0])
	case len(parts) == 2:
		s.serveV3Show(w, r, sn, parts[0], parts[1])
	case len(parts) == 4 && parts[0] == "apps" && parts[2] == "processes":
		s.serveAppProcess(w, r, sn, parts[1], parts[3])
	default:
		writeError(w, http.StatusNotFound, apiError{Code: 10000, Title: "CF-NotFound", Detail: "Unknown request"})
	}
}

func (s *Server) serveV3List(w http.ResponseWriter, r *http.Request, sn *snapshot, kind string) {
	switch kind {
	case "apps":
		serveList(s, w, r, listSpec[*appRec]{
			filters: []string{"guids", "names", "space_guids", "organization_guids"}, includes: []string{"space", "space.organization"},
			items: sn.apps,
			keep: func(q *query, a *appRec) bool {
				return sn.sees(a.SpaceGUID) && q.match("guids", a.GUID) && q.match("names", a.Name) &&
					q.match("space_guids", a.SpaceGUID) && q.match("organization_guids", sn.spaceByGUID[a.SpaceGUID].OrgGUID)
			},
			raw: func(a *appRec) []byte { return a.raw },
			included: func(q *query, page []*appRec) []includedKind {
				spaces := make([]string, len(page))
				for i, a := range page {
					spaces[i] = a.SpaceGUID
				}
				return sn.includeSpaces(q, spaces)
			},
		})
	case "processes":
		serveList(s, w, r, listSpec[*procRec]{
			filters: []string{"guids", "types", "app_guids", "space_guids"},
			items:   sn.procs,
			keep: func(q *query, p *procRec) bool {
				space := sn.appByGUID[p.appGUID].SpaceGUID
				return sn.sees(space) && q.match("guids", p.guid) && q.match("types", p.typ) &&
					q.match("app_guids", p.appGUID) && q.match("space_guids", space)
			},
			raw: func(p *procRec) []byte { return p.raw },
		})
	case "routes":
		serveList(s, w, r, listSpec[*routeRec]{
			filters:  []string{"guids", "app_guids", "domain_guids", "space_guids", "hosts", "paths"},
			includes: []string{"domain", "space", "space.organization"},
			items:    sn.routes,
			keep: func(q *query, rt *routeRec) bool {
				if !sn.sees(rt.SpaceGUID) || !q.match("guids", rt.GUID) || !q.match("domain_guids", rt.DomainGUID) ||
					!q.match("space_guids", rt.SpaceGUID) || !q.match("hosts", rt.Host) || !q.match("paths", rt.Path) {
					return false
				}
				if _, ok := q.filters["app_guids"]; !ok {
					return true
				}
				apps := make([]string, len(rt.Destinations))
				for i, d := range rt.Destinations {
					apps[i] = d.AppGUID
				}
				return q.matchAny("app_guids", apps)
			},
			raw: func(rt *routeRec) []byte { return rt.raw },
			included: func(q *query, page []*routeRec) []includedKind {
				spaces := make([]string, len(page))
				var domains collector
				for i, rt := range page {
					spaces[i] = rt.SpaceGUID
					domains.add(rt.DomainGUID, sn.domainByGUID[rt.DomainGUID].raw)
				}
				kinds := sn.includeSpaces(q, spaces)
				if q.include["domain"] {
					kinds = append([]includedKind{{"domains", domains.raws}}, kinds...)
				}
				return kinds
			},
		})
	case "domains":
		serveList(s, w, r, listSpec[*domainRec]{
			filters: []string{"guids", "names"},
			items:   sn.domains,
			keep: func(q *query, d *domainRec) bool {
				return q.match("guids", d.GUID) && q.match("names", d.Name)
			},
			raw: func(d *domainRec) []byte { return d.raw },
		})
	case "spaces":
		serveList(s, w, r, listSpec[*spaceRec]{
			filters: []string{"guids", "names", "organization_guids"}, includes: []string{"organization"},
			items: sn.spaces,
			keep: func(q *query, sp *spaceRec) bool {
				return sn.sees(sp.GUID) && q.match("guids", sp.GUID) && q.match("names", sp.Name) &&
					q.match("organization_guids", sp.OrgGUID)
			},
			raw: func(sp *spaceRec) []byte { return sp.raw },
			included: func(q *query, page []*spaceRec) []includedKind {
				var orgs collector
				for _, sp := range page {
					orgs.add(sp.OrgGUID, sn.orgByGUID[sp.OrgGUID].raw)
				}
				return []includedKind{{"organizations", orgs.raws}}
			},
		})
	case "organizations":
		serveList(s, w, r, listSpec[*orgRec]{
			filters: []string{"guids", "names"},
			items:   sn.orgs,
			keep: func(q *query, o *orgRec) bool {
				return sn.seesOrg(o.GUID) && q.match("guids", o.GUID) && q.match("names", o.Name)
			},
			raw: func(o *orgRec) []byte { return o.raw },
		})
	case "service_plans":
		serveList(s, w, r, listSpec[*planRec]{
			filters: []string{"guids", "names", "broker_catalog_ids"},
			items:   sn.plans,
			keep: func(q *query, p *planRec) bool {
				return q.match("guids", p.GUID) && q.match("names", p.Name) && q.match("broker_catalog_ids", p.BrokerCatalogID)
			},
			raw: func(p *planRec) []byte { return p.raw },
		})
	case "service_credential_bindings":
		serveList(s, w, r, listSpec[*bindingRec]{
			filters:  []string{"guids", "type", "app_guids", "service_plan_guids", "service_instance_guids"},
			includes: []string{"app", "service_instance"},
			items:    sn.bindings,
			keep: func(q *query, b *bindingRec) bool {
				return sn.sees(b.SpaceGUID) && q.match("guids", b.GUID) && q.match("type", b.Type) &&
					q.match("app_guids", b.AppGUID) && q.match("service_plan_guids", b.PlanGUID) &&
					q.match("service_instance_guids", b.ServiceInstanceGUID)
			},
			raw: func(b *bindingRec) []byte { return b.raw },
			included: func(q *query, page []*bindingRec) []includedKind {
				return sn.includeBindings(q, page)
			},
		})
	case "deployments":
		serveList(s, w, r, listSpec[*deployRec]{
			filters: []string{"app_guids", "states", "status_values", "status_reasons"},
			items:   sn.deploys,
			keep: func(q *query, d *deployRec) bool {
				return sn.sees(sn.spaceOfApp(d.AppGUID)) && q.match("app_guids", d.AppGUID) && q.match("states", d.State) &&
					q.match("status_values", d.StatusValue) && q.match("status_reasons", d.StatusReason)
			},
			raw:   func(d *deployRec) []byte { return d.raw },
			times: func(d *deployRec) (time.Time, time.Time) { return d.CreatedAt, d.UpdatedAt },
		})
	case "audit_events":
		serveList(s, w, r, listSpec[*eventRec]{
			filters: []string{"types", "target_guids", "space_guids", "organization_guids"},
			items:   sn.events,
			keep: func(q *query, e *eventRec) bool {
				return sn.sees(e.spaceGUID) && q.match("types", e.typ) && q.match("target_guids", e.targetGUID) &&
					q.match("space_guids", e.spaceGUID) && q.match("organization_guids", e.orgGUID)
			},
			raw:   func(e *eventRec) []byte { return e.raw },
			times: func(e *eventRec) (time.Time, time.Time) { return e.created, e.created },
		})
	default:
		writeError(w, http.StatusNotFound, apiError{Code: 10000, Title: "CF-NotFound", Detail: "Unknown request"})
	}
}

// spaceOfApp is the space of an app the snapshot holds, or "".
func (sn *snapshot) spaceOfApp(appGUID string) string {
	if a := sn.appByGUID[appGUID]; a != nil {
		return a.SpaceGUID
	}
	return ""
}

func (s *Server) serveV3Show(w http.ResponseWriter, r *http.Request, sn *snapshot, kind, guid string) {
	switch kind {
	case "apps":
		a := sn.appByGUID[guid]
		if a == nil || !sn.sees(a.SpaceGUID) {
			notFound(w, "App")
			return
		}
		serveOne(w, r, a.raw, []string{"space", "space.organization"}, func(q *query) []includedKind {
			return sn.includeSpaces(q, []string{a.SpaceGUID})
		})
	case "processes":
		p := sn.procByGUID[guid]
		if p == nil || !sn.sees(sn.appByGUID[p.appGUID].SpaceGUID) {
			notFound(w, "Process")
			return
		}
		serveOne(w, r, p.raw, nil, nil)
	case "routes":
		rt := sn.routeByGUID[guid]
		if rt == nil || !sn.sees(rt.SpaceGUID) {
			notFound(w, "Route")
			return
		}
		serveOne(w, r, rt.raw, []string{"domain", "space", "space.organization"}, func(q *query) []includedKind {
			kinds := sn.includeSpaces(q, []string{rt.SpaceGUID})
			if q.include["domain"] {
				kinds = append([]includedKind{{"domains", [][]byte{sn.domainByGUID[rt.DomainGUID].raw}}}, kinds...)
			}
			return kinds
		})
	case "domains":
		d := sn.domainByGUID[guid]
		if d == nil {
			notFound(w, "Domain")
			return
		}
		serveOne(w, r, d.raw, nil, nil)
	case "spaces":
		sp := sn.spaceByGUID[guid]
		if sp == nil || !sn.sees(sp.GUID) {
			notFound(w, "Space")
			return
		}
		serveOne(w, r, sp.raw, []string{"organization"}, func(*query) []includedKind {
			return []includedKind{{"organizations", [][]byte{sn.orgByGUID[sp.OrgGUID].raw}}}
		})
	case "organizations":
		o := sn.orgByGUID[guid]
		if o == nil || !sn.seesOrg(guid) {
			notFound(w, "Organization")
			return
		}
		serveOne(w, r, o.raw, nil, nil)
	case "service_plans":
		p := sn.planByGUID[guid]
		if p == nil {
			notFound(w, "Service plan")
			return
		}
		serveOne(w, r, p.raw, nil, nil)
	case "service_instances":
		in := sn.instanceByGUID[guid]
		if in == nil || !sn.sees(in.spaceGUID) {
			notFound(w, "Service instance")
			return
		}
		serveOne(w, r, in.raw, nil, nil)
	case "deployments":
		d := sn.deployByGUID[guid]
		if d == nil || !sn.sees(sn.spaceOfApp(d.AppGUID)) {
			notFound(w, "Deployment")
			return
		}
		serveOne(w, r, d.raw, nil, nil)
	case "audit_events":
		e := sn.eventByGUID[guid]
		if e == nil || !sn.sees(e.spaceGUID) {
			notFound(w, "Event")
			return
		}
		serveOne(w, r, e.raw, nil, nil)
	case "service_credential_bindings":
		b := sn.bindingByGUID[guid]
		if b == nil || !sn.sees(b.SpaceGUID) {
			notFound(w, "Service credential binding")
			return
		}
		serveOne(w, r, b.raw, []string{"app", "service_instance"}, func(q *query) []includedKind {
			return sn.includeBindings(q, []*bindingRec{b})
		})
	default:
		writeError(w, http.StatusNotFound, apiError{Code: 10000, Title: "CF-NotFound", Detail: "Unknown request"})
	}
}

// serveAppProcess answers /v3/apps/:guid/processes/:type.
func (s *Server) serveAppProcess(w http.ResponseWriter, r *http.Request, sn *snapshot, appGUID, typ string) {
	a := sn.appByGUID[appGUID]
	if a == nil || !sn.sees(a.SpaceGUID) {
		notFound(w, "App")
		return
	}
	// With several processes of the type (a deployment), the newest.
	for _, p := range slices.Backward(sn.procs) {
		if p.appGUID == appGUID && p.typ == typ {
			serveOne(w, r, p.raw, nil, nil)
			return
		}
	}
	notFound(w, "Process")
}

// seesOrg reports whether the user sees an org: an unrestricted user sees
// all, a space auditor the orgs of their spaces.
func (sn *snapshot) seesOrg(orgGUID string) bool {
	if sn.visible == nil {
		return true
	}
	for space := range sn.visible {
		if sp := sn.spaceByGUID[space]; sp != nil && sp.OrgGUID == orgGUID {
			return true
		}
	}
	return false
}

// includeSpaces returns the "spaces" (and with space.organization the
// "organizations") included for resources in these spaces.
func (sn *snapshot) includeSpaces(q *query, spaceGUIDs []string) []includedKind {
	if !q.include["space"] {
		return nil
	}
	var spaces, orgs collector
	for _, guid := range spaceGUIDs {
		sp := sn.spaceByGUID[guid]
		if sp == nil {
			continue
		}
		spaces.add(guid, sp.raw)
		if o := sn.orgByGUID[sp.OrgGUID]; o != nil {
			orgs.add(o.GUID, o.raw)
		}
	}
	kinds := []includedKind{{"spaces", spaces.raws}}
	if q.include["space.organization"] {
		kinds = append(kinds, includedKind{"organizations", orgs.raws})
	}
	return kinds
}

func (sn *snapshot) includeBindings(q *query, page []*bindingRec) []includedKind {
	var apps, instances collector
	for _, b := range page {
		if a := sn.appByGUID[b.AppGUID]; a != nil {
			apps.add(a.GUID, a.raw)
		}
		if in := sn.instanceByGUID[b.ServiceInstanceGUID]; in != nil {
			instances.add(in.guid, in.raw)
		}
	}
	var kinds []includedKind
	if q.include["app"] {
		kinds = append(kinds, includedKind{"apps", apps.raws})
	}
	if q.include["service_instance"] {
		kinds = append(kinds, includedKind{"service_instances", instances.raws})
	}
	return kinds
}
