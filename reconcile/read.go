package reconcile

import (
	"cmp"
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
	records map[string]record
	// inFlight are the records CF does not list that are younger than the
	// grace period: binds in flight, or bindings the updater adopted that
	// are gone.
	inFlight map[string]store.Binding
	// settings are the settings of each bound app's bindings, oldest first.
	settings map[string][]targets.BindingSettings
	// bound are the apps some binding names, by guid.
	bound map[string]bool
	// returned are the bound apps CF returns, by guid.
	returned map[string]targets.App
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

// read reads the store, then CF: the bindings, the records of binds in
// flight, then the bound apps. It changes nothing.
func (r *Reconciler) read(ctx context.Context, logger lager.Logger) (world, error) {
	bucket := r.bucket()
	contents, err := bucket.List(ctx)
	if err != nil {
		return world{}, fmt.Errorf("%w: %w", ErrReconcile, err)
	}
	apiBindings, err := r.CF.PlanBindings(ctx)
	if err != nil {
		return world{}, fmt.Errorf("%w: listing bindings in the CF API: %w", ErrReconcile, err)
	}
	w := world{now: r.now(), bucket: contents, live: map[string]cfapi.Binding{}, deleting: map[string]bool{},
		inFlight: map[string]store.Binding{}}
	for _, b := range apiBindings {
		switch {
		case !scrape.ValidGUID(b.GUID) || !scrape.ValidGUID(b.AppGUID):
		case b.Deleting:
			w.deleting[b.GUID] = true
		default:
			w.live[b.GUID] = b
		}
	}
	// Every record, for its bind parameters; and a young one unknown to the
	// API is the only way to know the app of a bind in flight.
	if w.records, err = r.readRecords(ctx, logger, contents.Bindings); err != nil {
		return world{}, err
	}
	for bindingGUID, obj := range contents.Bindings {
		if _, ok := w.live[bindingGUID]; ok || w.deleting[bindingGUID] || !w.young(obj, r.grace()) {
			continue
		}
		if record, ok := w.records[bindingGUID]; ok {
			w.inFlight[bindingGUID] = record.Binding
		}
	}
	w.bound = boundApps(w.live, w.inFlight)
	w.settings = boundSettings(w.live, w.inFlight, w.records)
	w.returned, err = r.CF.Apps(ctx, slices.Sorted(maps.Keys(w.bound)))
	if err != nil {
		return world{}, fmt.Errorf("%w: reading apps from the CF API: %w", ErrReconcile, err)
	}
	return w, nil
}

// boundApps are the apps named by a binding CF lists or by the record of a
// bind in flight. A record the updater adopted names no bind in flight: its
// binding is gone.
func boundApps(live map[string]cfapi.Binding, inFlight map[string]store.Binding) map[string]bool {
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

// boundSettings are the settings of each bound app's bindings, oldest
// first: those CF lists, with their records' bind parameters (none for a
// binding without a record), and the binds in flight.
func boundSettings(live map[string]cfapi.Binding, inFlight map[string]store.Binding, records map[string]record) map[string][]targets.BindingSettings {
	type dated struct {
		targets.BindingSettings
		created time.Time
	}
	byApp := map[string][]dated{}
	add := func(app, binding string, created time.Time) {
		d := dated{BindingSettings: targets.BindingSettings{BindingGUID: binding}, created: created}
		if rec, ok := records[binding]; ok {
			d.Settings = rec.Settings
			if !rec.CreatedAt.IsZero() {
				d.created = rec.CreatedAt
			}
		}
		byApp[app] = append(byApp[app], d)
	}
	for guid, b := range live {
		add(b.AppGUID, guid, b.CreatedAt)
	}
	for guid, b := range inFlight {
		if b.Source != store.SourceReconcile {
			add(b.AppGUID, guid, b.CreatedAt)
		}
	}
	out := make(map[string][]targets.BindingSettings, len(byApp))
	for app, bindings := range byApp {
		slices.SortFunc(bindings, func(x, y dated) int {
			return cmp.Or(x.created.Compare(y.created), cmp.Compare(x.BindingGUID, y.BindingGUID))
		})
		for _, d := range bindings {
			out[app] = append(out[app], d.BindingSettings)
		}
	}
	return out
}
