package reconcile

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// world is what a pass read, the store first and the CF API after, so that
// an app or binding missing from CF's answer was missing after the store
// showed it.
type world struct {
	now    time.Time
	bucket store.Contents
	// live are the bindings of our plan CF lists, by guid; deleting are
	// those Cloud Controller is deleting.
	live     map[string]cfapi.Binding
	deleting map[string]bool
	// records are the binding records as read, by binding guid. A record
	// that vanished since the listing or cannot be parsed is not among them.
	records map[string]*record
	// inFlight are the records CF does not list that are younger than the
	// grace period: binds in flight, or bindings the updater adopted that
	// are gone.
	inFlight map[string]*record
	// settings are the settings of each bound app's bindings that set
	// something, oldest first; an app whose bindings set nothing has none.
	settings map[string][]targets.BindingSettings
	// bound are the apps some binding names, by guid.
	bound map[string]bool
	// looked are the apps the pass asked CF about and those it returned.
	looked
	// partial is set when live holds the bindings of some apps only: it
	// then says nothing of the other records.
	partial bool
}

// looked is what a pass asked CF about apps and what CF returned: all
// that the pass verifying it needs of it.
type looked struct {
	// lookedUp are the apps the pass asked CF about, by guid; returned
	// are those CF returns.
	lookedUp map[string]bool
	returned map[string]targets.App
}

// boundAmong counts the bound apps among guids.
func (w world) boundAmong(guids []string) int {
	n := 0
	for _, g := range guids {
		if w.bound[g] {
			n++
		}
	}
	return n
}

// apps are the guids of every app the pass saw bound or with a target
// file, sorted.
func (w world) apps() []string {
	all := maps.Clone(w.bound)
	for guid := range w.bucket.Active {
		all[guid] = true
	}
	for guid := range w.bucket.Inactive {
		all[guid] = true
	}
	return slices.Sorted(maps.Keys(all))
}

// keeps returns the app when it keeps a target file: it is bound, and CF
// returns it.
func (w world) keeps(guid string) (targets.App, bool) {
	app, ok := w.returned[guid]
	return app, ok && w.bound[guid]
}

// young reports whether a record is within the grace period.
func (w world) young(record store.Object, grace time.Duration) bool {
	return w.now.Sub(record.LastModified) <= grace
}

// maxTargetReads is how many apps a pass over some apps reads the target
// files of one by one; for more, it lists the bucket.
const maxTargetReads = 50

// read reads the store, then CF: the bindings, the records (for their bind
// parameters, and for the binds in flight), then the bound apps, in bulk.
// It changes nothing.
//
// A pass over a subset of apps reads less: their target files alone (for a
// few apps), their bindings alone and those bindings' records; it lists the
// records only when one of the apps has a target file and no binding CF
// lists (an unbind, or a bind in flight, which only a young record tells
// apart); it looks up only the apps among them that are bound.
//
// A pass that verifies an earlier one of the same run is given what that
// pass looked up (earlier), and looks fewer apps up (lookUp).
func (r *Reconciler) read(ctx context.Context, logger lager.Logger, subset []string, earlier *looked) (world, error) {
	bucket := r.bucket()
	var contents store.Contents
	var err error
	if subset == nil || len(subset) > maxTargetReads {
		contents, err = bucket.List(ctx)
	} else {
		contents, err = bucket.ListTargets(ctx, subset)
	}
	if err != nil {
		return world{}, fmt.Errorf("%w: %w", ErrReconcile, err)
	}
	apiBindings, err := r.bindings(ctx, subset)
	if err != nil {
		return world{}, fmt.Errorf("%w: listing bindings in the CF API: %w", ErrReconcile, err)
	}
	w := world{now: r.now(), bucket: contents, live: map[string]cfapi.Binding{}, deleting: map[string]bool{},
		inFlight: map[string]*record{}, partial: subset != nil}
	for _, b := range apiBindings {
		switch {
		case !scrape.ValidGUID(b.GUID) || !scrape.ValidGUID(b.AppGUID):
		case b.Deleting:
			w.deleting[b.GUID] = true
		default:
			w.live[b.GUID] = b
		}
	}
	if w.bucket.Bindings == nil && w.filesWithoutLiveBinding(subset) {
		if w.bucket.Bindings, err = bucket.ListBindings(ctx); err != nil {
			return world{}, fmt.Errorf("%w: %w", ErrReconcile, err)
		}
	}
	// Every record, for its bind parameters; and a young one unknown to the
	// API is the only way to know the app of a bind in flight. Without a
	// listing, the records of the bindings CF lists.
	if w.bucket.Bindings != nil {
		w.records, err = r.readRecords(ctx, logger, w.bucket.Bindings)
	} else {
		w.records, err = r.readSomeRecords(ctx, logger, slices.Sorted(maps.Keys(w.live)))
	}
	if err != nil {
		return world{}, err
	}
	for bindingGUID, obj := range w.bucket.Bindings {
		if _, ok := w.live[bindingGUID]; ok || w.deleting[bindingGUID] || !w.young(obj, r.grace()) {
			continue
		}
		if record, ok := w.records[bindingGUID]; ok {
			w.inFlight[bindingGUID] = record
		}
	}
	w.bound = boundApps(w.live, w.inFlight)
	w.settings = boundSettings(w.live, w.inFlight, w.records)
	lookup := slices.Sorted(maps.Keys(w.bound))
	if subset != nil {
		lookup = slices.DeleteFunc(slices.Clone(subset), func(g string) bool { return !w.bound[g] })
	}
	w.lookedUp = make(map[string]bool, len(lookup))
	for _, g := range lookup {
		w.lookedUp[g] = true
	}
	if w.returned, err = r.lookUp(ctx, w, lookup, earlier); err != nil {
		return world{}, fmt.Errorf("%w: reading apps from the CF API: %w", ErrReconcile, err)
	}
	return w, nil
}

// lookUp describes the apps of lookup as CF returns them. A pass that
// verifies an earlier one asks CF only about the apps the earlier pass did
// not look up, and those whose target file, rendered from what the earlier
// pass read, the bucket does not hold: a bind, an unbind or a failed write
// changed it since, perhaps from a newer look at the app. The others CF
// described moments ago (a change since is the next watch's or
// reconcile's), so that verifying a first run does not read every app
// again: the second pass asks for the bindings only.
func (r *Reconciler) lookUp(ctx context.Context, w world, lookup []string, earlier *looked) (map[string]targets.App, error) {
	if earlier == nil {
		if len(lookup) == 0 {
			return map[string]targets.App{}, nil
		}
		return r.CF.Apps(ctx, lookup)
	}
	out := make(map[string]targets.App, len(lookup))
	var ask []string
	for _, guid := range lookup {
		app, returned := earlier.returned[guid]
		switch {
		case !earlier.lookedUp[guid]:
			ask = append(ask, guid)
		case !returned:
			// Not returned then: deleted, or no longer visible.
		case r.holds(w, app):
			out[guid] = app
		default:
			ask = append(ask, guid)
		}
	}
	if len(ask) > 0 {
		fresh, err := r.CF.Apps(ctx, ask)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, fresh)
	}
	return out, nil
}

// holds reports whether the bucket, as w listed it, holds app's target
// file as w's settings would render it, in its place.
func (r *Reconciler) holds(w world, app targets.App) bool {
	settings, _ := w.settingsOf(app)
	change, ok := r.planTarget(app, settings, w.bucket.TargetFiles(app.GUID))
	return !ok || !change.Write
}

// AppsBindingsReader is a CFReader that can list the bindings of some apps
// without listing them all; RunApps uses it when CF has it.
type AppsBindingsReader interface {
	// AppsBindings lists the app bindings of our plan for some apps.
	AppsBindings(ctx context.Context, appGUIDs []string) ([]cfapi.Binding, error)
}

// bindings lists the bindings of our plan: all of them, or those of the
// apps of subset.
func (r *Reconciler) bindings(ctx context.Context, subset []string) ([]cfapi.Binding, error) {
	if subset == nil {
		return r.CF.PlanBindings(ctx)
	}
	if cf, ok := r.CF.(AppsBindingsReader); ok {
		return cf.AppsBindings(ctx, subset)
	}
	all, err := r.CF.PlanBindings(ctx)
	wanted := map[string]bool{}
	for _, g := range subset {
		wanted[g] = true
	}
	return slices.DeleteFunc(all, func(b cfapi.Binding) bool { return !wanted[b.AppGUID] }), err
}

// filesWithoutLiveBinding reports whether one of the apps has a target file
// but no binding CF lists as live.
func (w world) filesWithoutLiveBinding(apps []string) bool {
	live := boundApps(w.live, nil)
	for _, app := range apps {
		files := w.bucket.TargetFiles(app)
		if (files.Active != nil || files.Inactive != nil) && !live[app] {
			return true
		}
	}
	return false
}

// boundApps are the apps named by a binding CF lists or by the record of a
// bind in flight. A record the updater adopted names no bind in flight: its
// binding is gone.
func boundApps(live map[string]cfapi.Binding, inFlight map[string]*record) map[string]bool {
	bound := map[string]bool{}
	for _, b := range live {
		bound[b.AppGUID] = true
	}
	for _, b := range inFlight {
		if b.Source != store.SourceReconcile {
			bound[b.AppGUID] = true
		}
	}
	return bound
}

// boundSettings are the settings of each bound app's bindings: those CF
// lists, with their records' bind parameters (none for a
// binding without a record), and the binds in flight. A binding whose
// settings set nothing is left out, and so is an app with no other:
// targets.Combine takes nothing from it (it can neither set a setting nor
// disagree with one), and most apps are bound once without parameters.
func boundSettings(live map[string]cfapi.Binding, inFlight map[string]*record, records map[string]*record) map[string][]targets.BindingSettings {
	byApp := map[string][]targets.BindingSettings{}
	add := func(app, binding string, created time.Time) {
		rec, ok := records[binding]
		if !ok || rec.Settings.IsZero() {
			return
		}
		if !rec.CreatedAt.IsZero() {
			created = rec.CreatedAt
		}
		byApp[app] = append(byApp[app], targets.BindingSettings{BindingGUID: binding, Settings: rec.Settings, Created: created})
	}
	for guid, b := range live {
		add(b.AppGUID, guid, b.CreatedAt)
	}
	for guid, b := range inFlight {
		if b.Source != store.SourceReconcile {
			add(b.AppGUID, guid, b.CreatedAt)
		}
	}
	return byApp
}
