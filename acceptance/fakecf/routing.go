package fakecf

import "slices"

// Routing is what the CF router knows of an app: its name and state, the
// addresses (host.domain, sorted) of its HTTP routes on external domains
// with a destination on its web processes, and its web processes, oldest
// first.
type Routing struct {
	AppGUID   string
	Name      string
	State     string
	Addresses []string
	Processes []Process
}

// Started reports whether the app runs, so that its routes reach it.
func (r Routing) Started() bool {
	return r.State == Started
}

// AppRouting returns the routing of an app, whoever may see it.
func (s *Server) AppRouting(appGUID string) (Routing, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.routing(appGUID)
}

// ProcessRouting returns the routing of the app one of whose web processes
// has this guid.
func (s *Server) ProcessRouting(processGUID string) (Routing, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for appGUID, ps := range s.st.procs {
		for _, p := range ps {
			if p.guid == processGUID && p.typ == "web" {
				return s.st.routing(appGUID)
			}
		}
	}
	return Routing{}, false
}

func (st *state) routing(appGUID string) (Routing, bool) {
	a := st.apps[appGUID]
	if a == nil {
		return Routing{}, false
	}
	r := Routing{AppGUID: a.GUID, Name: a.Name, State: a.State, Processes: st.webProcesses(appGUID)}
	for _, rt := range st.routes {
		d := st.domains[rt.DomainGUID]
		if d == nil || d.Internal || rt.Protocol == TCP {
			continue
		}
		if !slices.ContainsFunc(rt.Destinations, func(d Destination) bool { return d.AppGUID == appGUID && d.ProcessType == "web" }) {
			continue
		}
		addr := d.Name
		if rt.Host != "" {
			addr = rt.Host + "." + d.Name
		}
		r.Addresses = append(r.Addresses, addr)
	}
	slices.Sort(r.Addresses)
	return r, true
}
