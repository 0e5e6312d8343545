package reconcile

import (
	"code.cloudfoundry.org/lager/v3"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// The kinds of store change, as counted and logged.
const (
	kindWriteTarget  = "write-target"
	kindDeleteTarget = "delete-target"
	kindAdoptRecord  = "adopt-record"
	kindRemoveRecord = "remove-record"
	// kindConflict counts changes whose condition failed: someone else
	// changed the object since the listing, and the next pass looks again.
	kindConflict = "conflict"
)

// change is one store change a pass decided on. kind says which of the
// other fields it uses.
type change struct {
	kind string
	// target is the placement of an app's target file (write-target, or
	// delete-target of the file in the other place).
	target *store.TargetChange
	// app and started name a target file to remove (delete-target).
	app     string
	started bool
	// record is a record to adopt; binding, one to remove.
	record  *store.Binding
	binding string
	// reason says why a file or a record goes, in the log.
	reason string
}

// logData is what the log says of a change. It is made when a change is
// logged, not when it is planned: a first run plans 50,000.
func (c change) logData() lager.Data {
	switch {
	case c.target != nil:
		return lager.Data{"app_guid": c.target.Target.AppGUID, "started": c.target.Target.Started}
	case c.kind == kindDeleteTarget:
		key, _ := store.TargetKey(c.app, c.started)
		return lager.Data{"app_guid": c.app, "key": key, "reason": c.reason}
	case c.kind == kindAdoptRecord:
		return lager.Data{"binding_guid": c.record.BindingGUID, "app_guid": c.record.AppGUID}
	case c.reason != "":
		return lager.Data{"binding_guid": c.binding, "reason": c.reason}
	default:
		return lager.Data{"binding_guid": c.binding}
	}
}

// plan is what a pass decided, besides the changes.
type plan struct {
	// active and inactive count the apps that keep a target file, by state.
	active, inactive int
	// notes are what the target files leave out.
	notes []note
}

// plan decides the changes from what a pass read, for the records and for
// the target files of the apps among guids, and hands each to apply as it
// decides it, so that a run that rewrites 50,000 files never holds them
// all. It makes no request: what it decides depends on w alone (and on
// what the bucket remembers of its own writes), so that a pass over some
// apps plans with the same code.
func (r *Reconciler) plan(w world, guids []string, apply func(change)) plan {
	var p plan
	for _, c := range r.planRecords(w) {
		apply(c)
	}
	if !w.partial {
		// A full pass plans every app with a file or a binding: the others
		// have no file to remember.
		r.rendered.forgetUnless(func(app string) bool {
			_, active := w.bucket.Active[app]
			_, inactive := w.bucket.Inactive[app]
			return w.bound[app] || active || inactive
		})
	}
	for _, guid := range guids {
		changes, n := r.planApp(w, guid)
		for _, c := range changes {
			apply(c)
		}
		if n != nil {
			p.notes = append(p.notes, *n)
		}
		if app, ok := w.keeps(guid); ok && app.Started() {
			p.active++
		} else if ok {
			p.inactive++
		}
	}
	return p
}

// planRecords adopts the bindings CF lists without a record, and removes
// the records of bindings CF no longer lists once they are past the grace
// period: until then the record may be a bind in flight. The records of
// bindings Cloud Controller is deleting are the broker's to remove. A pass
// that read the bindings of some apps only decides nothing about records.
func (r *Reconciler) planRecords(w world) []change {
	if w.partial {
		return nil
	}
	var out []change
	for bindingGUID, obj := range w.bucket.Bindings {
		_, live := w.live[bindingGUID]
		record, inFlight := w.inFlight[bindingGUID]
		switch {
		case live, w.deleting[bindingGUID]:
		case !w.young(obj, r.grace()):
			out = append(out, change{kind: kindRemoveRecord, binding: bindingGUID})
		case inFlight && record.Source == store.SourceReconcile:
			out = append(out, change{kind: kindRemoveRecord, binding: bindingGUID, reason: "adopted-binding-gone"})
		}
	}
	for bindingGUID, b := range w.live {
		if _, ok := w.bucket.Bindings[bindingGUID]; ok {
			continue
		}
		out = append(out, change{kind: kindAdoptRecord,
			record: &store.Binding{BindingGUID: bindingGUID, AppGUID: b.AppGUID, PlanID: r.PlanID,
				CreatedAt: b.CreatedAt, Source: store.SourceReconcile}})
	}
	return out
}

// planApp places the target file of an app that keeps one, rendered with
// its settings, and removes the files of any other. The note says what the
// file leaves out, if anything.
func (r *Reconciler) planApp(w world, guid string) ([]change, *note) {
	files := w.bucket.TargetFiles(guid)
	if app, ok := w.keeps(guid); ok {
		settings, n := w.settingsOf(app)
		c, ok := r.planTarget(app, settings, files)
		if !ok {
			return nil, n
		}
		kind := kindWriteTarget
		if !c.Write {
			kind = kindDeleteTarget
		}
		return []change{{kind: kind, target: &c}}, n
	}
	reason := "app-not-bound"
	if w.bound[guid] {
		reason = "app-not-returned-by-cf"
	}
	var out []change
	if files.Active != nil {
		out = append(out, change{kind: kindDeleteTarget, app: guid, started: true, reason: reason})
	}
	if files.Inactive != nil {
		out = append(out, change{kind: kindDeleteTarget, app: guid, started: false, reason: reason})
	}
	return out, nil
}

// planTarget decides what placing an app's target file, rendered with
// settings, takes (store.Bucket.PlanTarget), given the app's files as
// listed. It renders the file only when the inputs or the listed file
// differ from those this updater last rendered or saw for the app.
func (r *Reconciler) planTarget(app targets.App, settings targets.Settings, files store.TargetFiles) (store.TargetChange, bool) {
	o := targets.Options{PaaSDomain: r.PaaSDomain, Settings: settings, Addressing: r.Addressing}
	here, other := files.Active, files.Inactive
	if !app.Started() {
		here, other = other, here
	}
	inputs := targets.InputsDigest(app, o)
	if here != nil && other == nil && r.rendered.holds(app.GUID, inputs, here.ETag) {
		return store.TargetChange{}, false
	}
	body := targets.RenderWith(app, o)
	if r.onRender != nil {
		r.onRender(app.GUID)
	}
	c, ok := r.bucket().PlanTarget(store.Target{AppGUID: app.GUID, Started: app.Started(), Body: body}, files)
	switch {
	case c.Write:
		// The ETag a store that gives MD5s will list; where it does not,
		// the next pass renders again and remembers the listed one.
		r.rendered.remember(app.GUID, inputs, store.ContentETag(body))
	case here != nil:
		r.rendered.remember(app.GUID, inputs, here.ETag)
	}
	return c, ok
}
