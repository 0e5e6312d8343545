package fakecf

import "fmt"

// Fleet describes a generated population of apps, for tests and benchmarks
// that need a platform of realistic size.
type Fleet struct {
	Orgs         int // default 1
	SpacesPerOrg int // default 1
	Apps         int // spread round-robin over the spaces
	Instances    int // web instances of each app (default 2)
	// ExtraRoutes is the number of apps (the first ones) that get a second
	// route, with path /metrics, besides their own host route.
	ExtraRoutes int
	// Bound is the number of apps (the first ones) with an app binding of
	// the plan PlanCatalogID.
	Bound         int
	PlanCatalogID string // default "prometheus-plan"
	Domain        string // default "apps.example.com"
}

// Population is what Populate created.
type Population struct {
	Orgs     []Org
	Spaces   []Space
	Apps     []App
	Domain   Domain
	Plan     ServicePlan
	Bindings []Binding
}

// Populate adds a generated fleet. GUIDs are deterministic: the i-th app is
// GUID("app", i).
func (s *Server) Populate(f Fleet) (Population, error) {
	f.Orgs = max(f.Orgs, 1)
	f.SpacesPerOrg = max(f.SpacesPerOrg, 1)
	if f.Instances == 0 {
		f.Instances = 2
	}
	if f.PlanCatalogID == "" {
		f.PlanCatalogID = "prometheus-plan"
	}
	if f.Domain == "" {
		f.Domain = "apps.example.com"
	}
	var p Population
	p.Domain = s.AddDomain(Domain{GUID: GUID("domain", 0), Name: f.Domain})
	p.Plan = s.AddServicePlan(ServicePlan{GUID: GUID("plan", 0), Name: "prometheus", BrokerCatalogID: f.PlanCatalogID})
	for o := range f.Orgs {
		org := s.AddOrg(Org{GUID: GUID("org", o), Name: fmt.Sprintf("org-%d", o)})
		p.Orgs = append(p.Orgs, org)
		for sp := range f.SpacesPerOrg {
			space, err := s.AddSpace(Space{GUID: GUID("space", len(p.Spaces)), Name: fmt.Sprintf("space-%d", sp), OrgGUID: org.GUID})
			if err != nil {
				return p, err
			}
			p.Spaces = append(p.Spaces, space)
		}
	}
	for i := range f.Apps {
		name := fmt.Sprintf("app-%d", i)
		app, err := s.AddApp(App{GUID: GUID("app", i), Name: name, SpaceGUID: p.Spaces[i%len(p.Spaces)].GUID, Instances: f.Instances})
		if err != nil {
			return p, err
		}
		p.Apps = append(p.Apps, app)
		dest := []Destination{{AppGUID: app.GUID}}
		if _, err := s.AddRoute(Route{GUID: GUID("route", i), Host: name, DomainGUID: p.Domain.GUID, Destinations: dest}); err != nil {
			return p, err
		}
		if i < f.ExtraRoutes {
			extra := Route{GUID: GUID("extra-route", i), Host: name + "-metrics", DomainGUID: p.Domain.GUID, Path: "/metrics", Destinations: dest}
			if _, err := s.AddRoute(extra); err != nil {
				return p, err
			}
		}
		if i < f.Bound {
			b, err := s.AddBinding(Binding{GUID: GUID("binding", i), AppGUID: app.GUID, PlanGUID: p.Plan.GUID})
			if err != nil {
				return p, err
			}
			p.Bindings = append(p.Bindings, b)
		}
	}
	s.Warm()
	return p, nil
}
