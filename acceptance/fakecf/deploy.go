package fakecf

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Deployments follow Cloud Controller: `cf push --strategy rolling|canary`
// creates a deployment and a new web process beside the old one(s); the
// deployment updater then moves instances over one at a time and, at the
// end, destroys the old processes. The fake's updater runs only when told
// (StepDeployment, FinishDeployment), so tests see every intermediate
// state. Like Cloud Controller's, it records no audit event: only the
// tenant's actions (create, continue, cancel) do.

type deployRec struct {
	Deployment
	seq uint64
	raw []byte
}

func (d *Deployment) progressing() bool {
	return d.State == StateDeploying || d.State == StatePrepaused || d.State == StatePaused
}

// activeDeployment is the app's running deployment, or nil.
func (st *state) activeDeployment(appGUID string) *deployRec {
	for _, d := range st.deploys {
		if d.AppGUID == appGUID && d.Active() {
			return d
		}
	}
	return nil
}

// putDeployment stores d at the clock's time.
func (st *state) putDeployment(d Deployment, seq uint64) Deployment {
	d.UpdatedAt = st.now().UTC()
	st.deploys[d.GUID] = &deployRec{Deployment: d, seq: seq}
	return d
}

func (st *state) refuseWhileDeploying(appGUID, what string) error {
	if d := st.activeDeployment(appGUID); d != nil && d.progressing() {
		return fmt.Errorf("fakecf: app %q: cannot %s while a deployment is in flight: %w", appGUID, what, ErrInvalidState)
	}
	return nil
}

func deploymentData(d Deployment) map[string]any {
	return map[string]any{"deployment_guid": d.GUID, "droplet_guid": nil}
}

// Deploy starts a deployment of the app with strategy Rolling or Canary, as
// `cf push --strategy` (or `cf restart --strategy`) does, and records
// audit.app.deployment.create. A started app gets a new web process with
// one instance, and the deployment is ACTIVE (DEPLOYING); a deployment
// already running is superseded. A stopped app is started at once with its
// current process (audit.app.start), and the deployment is FINALIZED.
func (s *Server) Deploy(appGUID, strategy string) (Deployment, error) {
	if strategy != Rolling && strategy != Canary {
		return Deployment{}, fmt.Errorf("fakecf: deployment strategy %q: want %q or %q", strategy, Rolling, Canary)
	}
	var out Deployment
	err := s.mutate(func(st *state) error {
		a, err := st.app(appGUID)
		if err != nil {
			return err
		}
		webs := st.processesOf(appGUID, "web")
		if len(webs) == 0 {
			return fmt.Errorf("fakecf: app %q has no web process: %w", appGUID, ErrInvalidState)
		}
		now := st.now().UTC()
		st.deploySeq++
		d := Deployment{
			GUID: deriveGUID("deployment", appGUID, strconv.FormatUint(st.deploySeq, 10)), AppGUID: appGUID,
			Strategy: strategy, OriginalInstances: webs[0].instances, CreatedAt: now,
		}
		prev := st.activeDeployment(appGUID)
		if prev != nil {
			d.OriginalInstances = prev.OriginalInstances
			st.supersede(prev)
		}
		if a.State == Stopped {
			started := a.App
			started.State = Started
			a = &appRec{App: started, seq: a.seq}
			st.apps[appGUID] = a
			st.recordAppEvent(EventStart, a, nil)
			d.State, d.StatusValue, d.StatusReason = StateDeployed, StatusFinalized, ReasonDeployed
		} else {
			p := &procRec{guid: deriveGUID("process", appGUID, "web", d.GUID), appGUID: appGUID, typ: "web",
				instances: min(1, d.OriginalInstances)}
			p.seq, p.created = st.next(now)
			p.updated = p.created
			st.putProcess(p)
			d.NewProcessGUID = p.guid
			d.State, d.StatusValue, d.StatusReason = StateDeploying, StatusActive, ReasonDeploying
			if strategy == Canary {
				d.State = StatePrepaused
			}
		}
		out = st.putDeployment(d, st.deploySeq)
		data := deploymentData(d)
		data["type"], data["revision_guid"], data["strategy"] = nil, nil, strategy
		data["request"] = map[string]any{
			"strategy": strategy, "relationships": map[string]any{"app": map[string]any{"data": map[string]any{"guid": appGUID}}},
		}
		st.recordAppEvent(EventDeploymentCreate, a, data)
		return nil
	})
	return out, err
}

// supersede ends a deployment that a new one replaces.
func (st *state) supersede(d *deployRec) {
	next := d.Deployment
	next.State = StateCanceled
	if d.State == StateDeploying {
		next.State = StateDeployed
	}
	next.StatusValue, next.StatusReason = StatusFinalized, ReasonSuperseded
	st.putDeployment(next, d.seq)
}

// StepDeployment runs one tick of the deployment updater on the app's
// running deployment, taken to come after every new instance became
// healthy: a rolling (or continued canary) deployment takes one instance
// off the old processes and adds one to the new process, and when the new
// process has them all it destroys the old ones and is FINALIZED
// (DEPLOYED); a canary whose instance runs is PAUSED; a canceled one has
// its new process destroyed and the old one restored (FINALIZED,
// CANCELED). A paused canary waits for ContinueDeployment.
func (s *Server) StepDeployment(appGUID string) (Deployment, error) {
	var out Deployment
	err := s.mutate(func(st *state) error {
		d, err := st.deploymentOf(appGUID)
		if err != nil {
			return err
		}
		out = st.step(d)
		return nil
	})
	return out, err
}

// FinishDeployment runs the deployment updater until the app's deployment
// is over (FINALIZED), as if every instance started at once. It refuses a
// canary that is or would be paused: continue it first.
func (s *Server) FinishDeployment(appGUID string) (Deployment, error) {
	var out Deployment
	err := s.mutate(func(st *state) error {
		d, err := st.deploymentOf(appGUID)
		if err != nil {
			return err
		}
		if d.State == StatePrepaused || d.State == StatePaused {
			return fmt.Errorf("fakecf: deployment %q is a paused canary: continue it first: %w", d.GUID, ErrInvalidState)
		}
		for d.Active() {
			out = st.step(d)
			d = st.deploys[d.GUID]
		}
		return nil
	})
	return out, err
}

// ContinueDeployment continues a paused canary deployment, as `cf
// continue-deployment` does (audit.app.deployment.continue): it is
// DEPLOYING again and StepDeployment rolls it out.
func (s *Server) ContinueDeployment(appGUID string) (Deployment, error) {
	var out Deployment
	err := s.mutate(func(st *state) error {
		d, err := st.deploymentOf(appGUID)
		if err != nil {
			return err
		}
		if d.State != StatePaused {
			return fmt.Errorf("fakecf: cannot continue a deployment with status: %s and reason: %s: %w", d.StatusValue, d.StatusReason, ErrInvalidState)
		}
		next := d.Deployment
		next.State, next.StatusReason = StateDeploying, ReasonDeploying
		out = st.putDeployment(next, d.seq)
		st.recordAppEvent(EventDeploymentContinue, st.apps[appGUID], deploymentData(next))
		return nil
	})
	return out, err
}

// CancelDeployment cancels the app's running deployment, as `cf
// cancel-deployment` does (audit.app.deployment.cancel). It is ACTIVE
// (CANCELING) until the deployment updater's next tick (StepDeployment or
// FinishDeployment) destroys the new process and restores the old one.
func (s *Server) CancelDeployment(appGUID string) (Deployment, error) {
	var out Deployment
	err := s.mutate(func(st *state) error {
		d, err := st.deploymentOf(appGUID)
		if err != nil {
			return err
		}
		next := d.Deployment
		next.State, next.StatusReason = StateCanceling, ReasonCanceling
		out = st.putDeployment(next, d.seq)
		st.recordAppEvent(EventDeploymentCancel, st.apps[appGUID], deploymentData(next))
		return nil
	})
	return out, err
}

// deploymentOf is the app's running deployment, or an error.
func (st *state) deploymentOf(appGUID string) (*deployRec, error) {
	if _, err := st.app(appGUID); err != nil {
		return nil, err
	}
	d := st.activeDeployment(appGUID)
	if d == nil {
		return nil, fmt.Errorf("fakecf: app %q has no deployment in flight: %w", appGUID, ErrInvalidState)
	}
	return d, nil
}

// step is one tick of the deployment updater.
func (st *state) step(d *deployRec) Deployment {
	next := d.Deployment
	switch d.State {
	case StateCanceling:
		st.restorePrior(d)
		next.State, next.StatusValue, next.StatusReason = StateCanceled, StatusFinalized, ReasonCanceled
	case StatePrepaused:
		next.State, next.StatusReason = StatePaused, ReasonPaused
	case StateDeploying:
		if !st.rollOne(d) {
			return d.Deployment
		}
		st.keepOnly(d.AppGUID, d.NewProcessGUID)
		next.State, next.StatusValue, next.StatusReason = StateDeployed, StatusFinalized, ReasonDeployed
	default:
		return d.Deployment
	}
	return st.putDeployment(next, d.seq)
}

// rollOne scales the old web processes down to the instances the new one
// does not yet run, then the new one up by one; it reports whether the new
// process already ran them all (the deployment is then over).
func (st *state) rollOne(d *deployRec) bool {
	procs := st.procs[d.AppGUID]
	i := slices.IndexFunc(procs, func(p *procRec) bool { return p.guid == d.NewProcessGUID })
	if i < 0 {
		return true
	}
	newest := procs[i]
	running := newest.instances
	st.scaleDownOld(d, max(d.OriginalInstances-running, 0))
	if running >= d.OriginalInstances {
		return true
	}
	st.setInstances(newest, min(running+1, d.OriginalInstances))
	return false
}

// scaleDownOld takes instances off the app's other web processes, oldest
// first, until they run want in all. An interim process (from a superseded
// deployment) left with none is destroyed; the original one stays, with
// none, until the deployment ends.
func (st *state) scaleDownOld(d *deployRec, want int) {
	webs := st.processesOf(d.AppGUID, "web")
	old := slices.DeleteFunc(slices.Clone(webs), func(p *procRec) bool { return p.guid == d.NewProcessGUID })
	total := 0
	for _, p := range old {
		total += p.instances
	}
	reduce := total - want
	for _, p := range old {
		if reduce <= 0 {
			return
		}
		if reduce < p.instances {
			st.setInstances(p, p.instances-reduce)
			return
		}
		reduce -= p.instances
		if p.guid == webs[0].guid {
			st.setInstances(p, 0)
		} else {
			st.dropProcess(d.AppGUID, p.guid)
		}
	}
}

// restorePrior finishes a cancel: the process that ran before the
// deployment (the newest interim process with instances, else the original
// one) gets the original instance count back and every other web process
// is destroyed.
func (st *state) restorePrior(d *deployRec) {
	webs := st.processesOf(d.AppGUID, "web")
	if len(webs) == 0 {
		return
	}
	prior := webs[0]
	for _, p := range slices.Backward(webs) {
		if p.instances > 0 && st.supersededProcess(p.guid) {
			prior = p
			break
		}
	}
	st.keepOnly(d.AppGUID, prior.guid)
	st.setInstances(prior, d.OriginalInstances)
}

func (st *state) supersededProcess(guid string) bool {
	for _, d := range st.deploys {
		if d.NewProcessGUID == guid && d.State == StateDeployed && d.StatusReason == ReasonSuperseded {
			return true
		}
	}
	return false
}

// keepOnly destroys every web process of the app but one.
func (st *state) keepOnly(appGUID, guid string) {
	for _, p := range st.processesOf(appGUID, "web") {
		if p.guid != guid {
			st.dropProcess(appGUID, p.guid)
		}
	}
}

func (st *state) setInstances(p *procRec, n int) {
	np := *p
	np.instances, np.updated, np.raw = n, st.now().UTC(), nil
	st.putProcess(&np)
}

// WebProcesses returns the app's web processes, oldest first: one, or
// more while a deployment runs.
func (s *Server) WebProcesses(appGUID string) ([]Process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.st.app(appGUID); err != nil {
		return nil, err
	}
	return s.st.webProcesses(appGUID), nil
}

func (st *state) webProcesses(appGUID string) []Process {
	var out []Process
	for _, p := range st.processesOf(appGUID, "web") {
		out = append(out, Process{GUID: p.guid, AppGUID: p.appGUID, Type: p.typ, Instances: p.instances, CreatedAt: p.created})
	}
	return out
}

func renderDeployment(base string, d Deployment) []byte {
	self := base + "/v3/deployments/" + d.GUID
	updated := stamp(d.UpdatedAt)
	status := map[string]any{
		"value": d.StatusValue, "reason": d.StatusReason,
		"details": map[string]any{"last_successful_healthcheck": updated, "last_status_change": updated},
	}
	if d.Strategy == Canary {
		status["canary"] = map[string]any{"steps": map[string]any{"current": 1, "total": 1}}
	}
	newProcesses := []map[string]string{}
	if d.NewProcessGUID != "" {
		newProcesses = append(newProcesses, map[string]string{"guid": d.NewProcessGUID, "type": "web"})
	}
	links := map[string]link{"self": {Href: self}, "app": {Href: base + "/v3/apps/" + d.AppGUID}}
	if d.Active() {
		links["cancel"] = link{Href: self + "/actions/cancel", Method: "POST"}
	}
	if d.State == StatePaused {
		links["continue"] = link{Href: self + "/actions/continue", Method: "POST"}
	}
	return mustJSON(map[string]any{
		"guid": d.GUID, "created_at": stamp(d.CreatedAt), "updated_at": updated,
		"status": status, "strategy": d.Strategy, "options": map[string]any{"max_in_flight": 1},
		"droplet": map[string]any{"guid": nil}, "previous_droplet": map[string]any{"guid": nil}, "new_processes": newProcesses,
		"revision": nil, "relationships": map[string]any{"app": one(d.AppGUID)},
		"metadata": emptyMetadata, "links": links,
	})
}

// deploymentTimes orders deployments in listings.
func deploymentTimes(d *deployRec) (time.Time, uint64) { return d.CreatedAt, d.seq }
