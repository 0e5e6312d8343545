package broker

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"code.cloudfoundry.org/lager/v3"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// bindTarget looks up what a bind renders the app's target file from: the
// app, and the settings of all its bindings, this one's (settings) among
// them. The other bindings of the app matter only when it already has a
// target file: a first bind (the common case) asks the CF API about the
// app alone, in its 3 requests; a later one also lists the app's bindings,
// in parallel. created is when this binding was first made, zero for a
// new binding: a new binding whose settings disagree with another's is
// refused, while a repeat keeps the oldest binding's settings.
func (b *Broker) bindTarget(ctx context.Context, logger lager.Logger, bindingID, appGUID string, settings targets.Settings,
	created time.Time) (targets.App, targets.Settings, error) {
	monitored, err := b.bucket.HasTarget(ctx, appGUID)
	if err != nil {
		logger.Error("read-target-failed", err)
		return targets.App{}, targets.Settings{}, errStoreUnavailable("could not read the app's targets", err)
	}
	var (
		wg        sync.WaitGroup
		app       targets.App
		appErr    error
		others    []cfapi.Binding
		othersErr error
	)
	wg.Go(func() { app, appErr = b.bindApp(ctx, logger, appGUID) })
	if monitored {
		wg.Go(func() { others, othersErr = b.bindings.AppBindings(ctx, appGUID) })
	}
	wg.Wait()
	if appErr != nil {
		return targets.App{}, targets.Settings{}, appErr
	}
	if othersErr != nil {
		logger.Error("app-bindings-lookup-failed", othersErr)
		return targets.App{}, targets.Settings{}, errCFUnavailable("could not list the app's bindings in the CF API", othersErr)
	}
	if err := settings.CheckApp(app); err != nil {
		logger.Info("rejected", invalidKeys(err))
		return targets.App{}, targets.Settings{}, errInvalidParameters(err)
	}
	bindings, err := b.boundSettings(ctx, logger, bindingID, others)
	if err != nil {
		return targets.App{}, targets.Settings{}, err
	}
	this := targets.BindingSettings{BindingGUID: bindingID, Settings: settings}
	var ordered []targets.BindingSettings
	if created.IsZero() {
		ordered = append(inOrder(bindings), this) // the newest
	} else {
		ordered = inOrder(append(bindings, dated{this, created}))
	}
	combined, err := targets.Combine(ordered)
	var conflict *targets.ConflictError
	if errors.As(err, &conflict) {
		if conflict.Other == bindingID {
			logger.Info("rejected", lager.Data{"reason": "settings-conflict", "other_binding_id": conflict.Binding, "keys": conflict.Keys})
			return targets.App{}, targets.Settings{}, errSettingsConflict(err)
		}
		// Stored by a race of two binds: the oldest binding's settings
		// apply, as in the target updater.
		logger.Info("settings-conflict", lager.Data{"binding_id": conflict.Binding, "other_binding_id": conflict.Other, "keys": conflict.Keys})
	}
	return app, combined, nil
}

// dated are a binding's settings with the time it was made.
type dated struct {
	targets.BindingSettings
	created time.Time
}

// inOrder sorts bindings oldest first, the order in which their settings
// take precedence.
func inOrder(bindings []dated) []targets.BindingSettings {
	slices.SortFunc(bindings, func(x, y dated) int {
		return cmp.Or(x.created.Compare(y.created), cmp.Compare(x.BindingGUID, y.BindingGUID))
	})
	out := make([]targets.BindingSettings, len(bindings))
	for i, d := range bindings {
		out[i] = d.BindingSettings
	}
	return out
}

// boundSettings reads the settings of the app's other bindings from their
// records. A binding without a record (made before the bucket had them)
// has none; so has a record whose parameters no longer parse.
func (b *Broker) boundSettings(ctx context.Context, logger lager.Logger, bindingID string, others []cfapi.Binding) ([]dated, error) {
	var out []dated
	for _, o := range others {
		if o.GUID == bindingID || o.Deleting {
			continue
		}
		record, err := b.bucket.ReadBinding(ctx, o.GUID)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnreadableRecord):
			out = append(out, dated{targets.BindingSettings{BindingGUID: o.GUID}, o.CreatedAt})
			continue
		case err != nil:
			logger.Error("read-record-failed", err, lager.Data{"other_binding_id": o.GUID})
			return nil, errStoreUnavailable("could not read the app's other bindings", err)
		}
		settings, err := targets.ParseParameters(record.Parameters)
		if err != nil {
			logger.Info("stored-parameters-invalid", lager.Data{"other_binding_id": o.GUID})
		}
		out = append(out, dated{targets.BindingSettings{BindingGUID: o.GUID, Settings: settings}, record.CreatedAt})
	}
	return out, nil
}

// invalidKeys says which parameters were refused, for the log: the names
// of the known ones and how many unknown, never a value.
func invalidKeys(err error) lager.Data {
	data := lager.Data{"reason": "invalid-parameters"}
	var perr *targets.ParametersError
	if !errors.As(err, &perr) {
		return data
	}
	var keys []string
	unknown := 0
	for _, i := range perr.Invalid {
		if targets.IsParameter(i.Key) {
			keys = append(keys, i.Key)
		} else {
			unknown++
		}
	}
	data["keys"], data["unknown_keys"] = keys, unknown
	return data
}
