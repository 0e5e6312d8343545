package broker

import (
	"context"
	"errors"
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
// in parallel. created is when this binding was made (now, for a new
// one): a new binding whose settings disagree with an older one's is
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
	this := targets.BindingSettings{BindingGUID: bindingID, Settings: settings, Created: created}
	combined, err := targets.Combine(append(bindings, this))
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

// boundSettings reads the settings of the app's other bindings from their
// records. A binding without a record (made before the bucket had them)
// has none; so has a record whose parameters no longer parse. A binding
// was made when its record says, or else when the CF API says.
func (b *Broker) boundSettings(ctx context.Context, logger lager.Logger, bindingID string, others []cfapi.Binding) ([]targets.BindingSettings, error) {
	var out []targets.BindingSettings
	for _, o := range others {
		if o.GUID == bindingID || o.Deleting {
			continue
		}
		record, err := b.bucket.ReadBinding(ctx, o.GUID)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnreadableRecord):
			out = append(out, targets.BindingSettings{BindingGUID: o.GUID, Created: o.CreatedAt})
			continue
		case err != nil:
			logger.Error("read-record-failed", err, lager.Data{"other_binding_id": o.GUID})
			return nil, errStoreUnavailable("could not read the app's other bindings", err)
		}
		settings, err := targets.ParseParameters(record.Parameters)
		if err != nil {
			logger.Info("stored-parameters-invalid", lager.Data{"other_binding_id": o.GUID})
		}
		created := record.CreatedAt
		if created.IsZero() {
			created = o.CreatedAt
		}
		out = append(out, targets.BindingSettings{BindingGUID: o.GUID, Settings: settings, Created: created})
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
