package reconcile

import (
	"context"
	"errors"
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
	// inFlight are the records CF does not list that are younger than the
	// grace period, as read: binds in flight, or bindings the updater
	// adopted that are gone. A record that vanished since the listing or
	// cannot be parsed is not among them.
	inFlight map[string]store.Binding
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
	for bindingGUID, obj := range contents.Bindings {
		if _, ok := w.live[bindingGUID]; ok || w.deleting[bindingGUID] || !w.young(obj, r.grace()) {
			continue
		}
		// Young and unknown to the API: the record is the only way to know
		// the app of a bind in flight.
		record, err := bucket.ReadBinding(ctx, bindingGUID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Unbound since the listing; the next pass looks again.
		case errors.Is(err, store.ErrUnreadableRecord):
			// It names no app we could monitor; it goes once it is old.
			logger.Error("unreadable-record", err, lager.Data{"binding_guid": bindingGUID})
		case err != nil:
			return world{}, fmt.Errorf("%w: reading a record: %w", ErrReconcile, err)
		default:
			w.inFlight[bindingGUID] = record.Binding
		}
	}
	w.bound = boundApps(w.live, w.inFlight)
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
