package broker

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// Bind answers PUT /v2/service_instances/:instance_id/service_bindings/:binding_id,
// reached by `cf bind-service` (or an app manifest's `services:`). It writes
// the binding record, then the app's target file, and answers 201 with no
// credentials; 200 to a repeat of the same binding; 409 to the same id for
// another app or instance. A record without a target file is what a failure
// can leave behind, and both the orphan-mitigation unbind Cloud Controller
// sends after a 5xx and the next reconcile repair it.
func (b *Broker) Bind(ctx context.Context, instanceID, bindingID string, details domain.BindDetails, _ bool) (domain.Binding, error) {
	start := time.Now()
	binding, err := b.bind(ctx, instanceID, bindingID, details)
	success := "created"
	if binding.AlreadyExists {
		success = "already-exists"
	}
	b.metrics.observe("bind", start, success, err)
	return binding, err
}

func (b *Broker) bind(ctx context.Context, instanceID, bindingID string, details domain.BindDetails) (domain.Binding, error) {
	appGUID := details.AppGUID
	if details.BindResource != nil && details.BindResource.AppGuid != "" {
		appGUID = details.BindResource.AppGuid
	}
	logger := b.logger.Session("bind", lager.Data{"instance_id": instanceID, "binding_id": bindingID, "app_guid": appGUID})
	if err := b.validateBind(instanceID, bindingID, appGUID, details); err != nil {
		logger.Info("rejected", lager.Data{"reason": err.Error()})
		return domain.Binding{}, err
	}
	// Parameters are checked before anything is read or written.
	settings, err := targets.ParseParameters(details.RawParameters)
	if err != nil {
		logger.Info("rejected", invalidKeys(err))
		return domain.Binding{}, errInvalidParameters(err)
	}
	unlock := b.locks.lock(appGUID)
	defer unlock()

	record := store.Binding{
		BindingGUID: bindingID, InstanceGUID: instanceID, AppGUID: appGUID,
		ServiceID: details.ServiceID, PlanID: details.PlanID, Parameters: details.RawParameters,
		CreatedAt: b.now().UTC(), Source: store.SourceBroker,
	}
	existing, err := b.bucket.ReadBinding(ctx, bindingID)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		logger.Error("read-record-failed", err)
		return domain.Binding{}, errStoreUnavailable("could not read the binding record", err)
	}
	cond := store.Condition{IfNoneMatch: true}
	switch {
	case !found:
	case existing.Source == store.SourceReconcile && sameBinding(existing.Binding, record):
		// The target updater listed the binding while Cloud Controller was
		// creating it and recorded what the CF API knows. This is the
		// binding's first bind: complete the record.
		logger.Info("completing-adopted-record")
		cond = store.Condition{IfMatch: existing.ETag}
	default:
		if err := b.repeatedBind(logger, existing.Binding, record); err != nil {
			return domain.Binding{}, err
		}
		// The same binding again: Cloud Controller retrying after a failure
		// on our side. Write the target file again in case it was lost.
		app, combined, err := b.bindTarget(ctx, logger, bindingID, appGUID, settings, existing.CreatedAt)
		if err != nil {
			return domain.Binding{}, err
		}
		return domain.Binding{AlreadyExists: true}, b.writeTargetOrFail(ctx, logger, app, combined)
	}

	app, combined, err := b.bindTarget(ctx, logger, bindingID, appGUID, settings, record.CreatedAt)
	if err != nil {
		return domain.Binding{}, err
	}
	created, err := b.writeRecord(ctx, logger, record, cond)
	if err != nil {
		return domain.Binding{}, err
	}
	if err := b.writeTargetOrFail(ctx, logger, app, combined); err != nil {
		return domain.Binding{}, err
	}
	logger.Info("bound", lager.Data{"instances": app.Instances(), "state": app.State})
	return domain.Binding{AlreadyExists: !created}, nil
}

// writeRecord writes the binding record under cond. When another broker
// instance (or the target updater) wrote one meanwhile, the bind is a
// repeat (created is false) or a conflict.
func (b *Broker) writeRecord(ctx context.Context, logger lager.Logger, record store.Binding, cond store.Condition) (created bool, err error) {
	_, err = b.bucket.WriteBinding(ctx, record, cond)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, store.ErrPreconditionFailed) {
		existing, rerr := b.bucket.ReadBinding(ctx, record.BindingGUID)
		if rerr == nil && cond.IfNoneMatch &&
			existing.Source == store.SourceReconcile && sameBinding(existing.Binding, record) {
			// Adopted by the updater since we looked: complete it, once.
			return b.writeRecord(ctx, logger, record, store.Condition{IfMatch: existing.ETag})
		}
		if rerr == nil {
			return false, b.repeatedBind(logger, existing.Binding, record)
		}
		if !errors.Is(rerr, store.ErrNotFound) {
			err = rerr
		}
	}
	logger.Error("write-record-failed", err)
	return false, errStoreUnavailable("could not store the binding", err)
}

// bindApp looks the app up, turning failures into answers for the tenant.
func (b *Broker) bindApp(ctx context.Context, logger lager.Logger, appGUID string) (targets.App, error) {
	app, err := b.apps.App(ctx, appGUID)
	switch {
	case errors.Is(err, cfapi.ErrAppNotVisible):
		logger.Info("app-not-visible")
		return targets.App{}, errAppNotVisible(appGUID, b.grantCommand)
	case errors.Is(err, cfapi.ErrUnavailable):
		logger.Error("app-lookup-failed", err)
		return targets.App{}, errCFUnavailable("could not look the app up in the CF API", err)
	case err != nil:
		logger.Error("app-lookup-failed", err)
		return targets.App{}, errCFFailed("could not look the app up in the CF API", err)
	}
	return app, nil
}

// writeTargetOrFail places the app's target file where its state says,
// with the settings of its bindings over those of its annotations.
func (b *Broker) writeTargetOrFail(ctx context.Context, logger lager.Logger, app targets.App, bound targets.Settings) error {
	if err := b.bucket.PutTarget(ctx, b.target(logger, app, bound)); err != nil {
		logger.Error("write-target-failed", err)
		return errStoreUnavailable("could not write the app's targets", err)
	}
	return nil
}

// target is the app's target file, rendered with the settings of its
// bindings (bound) over those of its annotations, in the broker's
// addressing.
func (b *Broker) target(logger lager.Logger, app targets.App, bound targets.Settings) store.Target {
	settings, ignored := targets.Resolve(app, bound)
	for _, i := range ignored {
		logger.Info("setting-ignored", lager.Data{"key": i.Key, "reason": i.Reason})
	}
	body := targets.RenderWith(app, targets.Options{PaaSDomain: b.paasDomain, Settings: settings, Addressing: b.addressing})
	return store.Target{AppGUID: app.GUID, Started: app.Started(), Body: body}
}

func (b *Broker) validateBind(instanceID, bindingID, appGUID string, details domain.BindDetails) error {
	if err := b.checkRequest(details.ServiceID, details.PlanID, namedID{"instance_id", instanceID}, namedID{"binding_id", bindingID}); err != nil {
		return err
	}
	if appGUID == "" {
		return errRequiresApp
	}
	if !scrape.ValidGUID(appGUID) {
		return errInvalidID("app_guid", appGUID)
	}
	return nil
}

// repeatedBind checks a bind whose id already has a record: nil when it is
// the same binding with the same parameters, 409 when anything differs.
func (b *Broker) repeatedBind(logger lager.Logger, existing, requested store.Binding) error {
	if sameBinding(existing, requested) && store.SameParameters(existing.Parameters, requested.Parameters) {
		logger.Info("already-bound")
		return nil
	}
	logger.Info("conflict", lager.Data{"existing_app_guid": existing.AppGUID})
	return apiresponses.ErrBindingAlreadyExists
}

// sameBinding reports whether a stored record describes the requested
// binding. A record the target updater adopted from the CF API has no
// instance guid (the API's binding listing does not carry it).
func sameBinding(existing, requested store.Binding) bool {
	if existing.AppGUID != requested.AppGUID || existing.PlanID != requested.PlanID {
		return false
	}
	return existing.InstanceGUID == requested.InstanceGUID ||
		existing.Source == store.SourceReconcile && existing.InstanceGUID == ""
}

// GetBinding answers GET /v2/service_instances/:instance_id/service_bindings/:binding_id,
// which Cloud Controller sends for `cf curl
// /v3/service_credential_bindings/:guid/parameters`: the binding's bind
// parameters, from its record; 404 for a binding without one (unknown, or
// made before the bucket had records).
func (b *Broker) GetBinding(ctx context.Context, instanceID, bindingID string, _ domain.FetchBindingDetails) (_ domain.GetBindingSpec, err error) {
	defer func(start time.Time) { b.metrics.observe("get-binding", start, "ok", err) }(time.Now())
	if !scrape.ValidGUID(instanceID) {
		return domain.GetBindingSpec{}, errInvalidID("instance_id", instanceID)
	}
	if !scrape.ValidGUID(bindingID) {
		return domain.GetBindingSpec{}, errInvalidID("binding_id", bindingID)
	}
	record, err := b.bucket.ReadBinding(ctx, bindingID)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnreadableRecord):
		return domain.GetBindingSpec{}, apiresponses.ErrBindingNotFound
	case err != nil:
		b.logger.Error("get-binding-read-record-failed", err, lager.Data{"binding_id": bindingID})
		return domain.GetBindingSpec{}, errStoreUnavailable("could not read the binding record", err)
	}
	if record.InstanceGUID != instanceID && record.InstanceGUID != "" {
		return domain.GetBindingSpec{}, apiresponses.ErrBindingNotFound
	}
	return domain.GetBindingSpec{Parameters: parameters(record.Parameters)}, nil
}

// parameters are stored parameters as an answer shows them: {} for none.
func parameters(raw json.RawMessage) any {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil || v == nil {
		return map[string]any{}
	}
	return v
}

// LastBindingOperation answers
// GET /v2/service_instances/:instance_id/service_bindings/:binding_id/last_operation.
// No `cf` command reaches it: Cloud Controller polls only after a 202, and
// binds and unbinds here are synchronous.
func (b *Broker) LastBindingOperation(context.Context, string, string, domain.PollDetails) (domain.LastOperation, error) {
	return domain.LastOperation{}, errNotSupported("polling a binding operation")
}
