package broker

import (
	"context"
	"errors"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/store"
)

// Unbind answers DELETE /v2/service_instances/:instance_id/service_bindings/:binding_id,
// reached by `cf unbind-service`, by `cf delete` of a bound app, and by
// Cloud Controller's orphan mitigation after a failed bind. The app comes
// from the binding record, or, for a binding made before the bucket had
// records, from the CF API. The target file goes only with the app's last
// binding. It answers 200 `{}`, or 410 when neither the bucket nor the CF
// API knows the binding (Cloud Controller treats that as done).
func (b *Broker) Unbind(ctx context.Context, instanceID, bindingID string, details domain.UnbindDetails, _ bool) (domain.UnbindSpec, error) {
	start := time.Now()
	success, err := b.unbind(ctx, instanceID, bindingID, details)
	b.metrics.observe("unbind", start, success, err)
	return domain.UnbindSpec{}, err
}

// unbind returns the outcome: "target-removed" with the app's last
// binding, "target-kept" otherwise.
func (b *Broker) unbind(ctx context.Context, instanceID, bindingID string, details domain.UnbindDetails) (string, error) {
	logger := b.logger.Session("unbind", lager.Data{"instance_id": instanceID, "binding_id": bindingID})
	if !scrape.ValidGUID(instanceID) {
		return "", errInvalidID("instance_id", instanceID)
	}
	if !scrape.ValidGUID(bindingID) {
		return "", errInvalidID("binding_id", bindingID)
	}
	if err := b.checkCatalog(details.ServiceID, details.PlanID); err != nil {
		return "", err
	}

	record, unreadable, err := b.readRecordForUnbind(ctx, logger, bindingID)
	if err != nil {
		return "", err
	}
	var appGUID string
	if record != nil {
		appGUID = record.AppGUID
	} else {
		cfBinding, err := b.bindings.Binding(ctx, bindingID)
		switch {
		case errors.Is(err, cfapi.ErrBindingNotFound):
			logger.Info("unknown-binding")
			return "", apiresponses.ErrBindingDoesNotExist
		case err != nil:
			logger.Error("binding-lookup-failed", err)
			return "", errCFUnavailable("could not look the binding up in the CF API", err)
		}
		appGUID = cfBinding.AppGUID
		if !scrape.ValidGUID(appGUID) {
			logger.Info("binding-without-app")
			return "", apiresponses.ErrBindingDoesNotExist
		}
	}
	logger = logger.WithData(lager.Data{"app_guid": appGUID})
	unlock := b.locks.lock(appGUID)
	defer unlock()
	if record == nil {
		// A bind of this binding may have been writing its record while we
		// waited for the lock (Cloud Controller's orphan mitigation after a
		// slow bind): look again, so that the record goes too.
		record, unreadable, err = b.readRecordForUnbind(ctx, logger, bindingID)
		if err != nil {
			return "", err
		}
		if record != nil && record.AppGUID != appGUID {
			logger.Info("record-names-another-app", lager.Data{"record_app_guid": record.AppGUID})
			return "", errStoreUnavailable("the binding changed while it was being removed", errors.New("record names another app"))
		}
	}

	outcome := "target-kept"
	if b.lastBinding(ctx, logger, appGUID, bindingID) {
		outcome = "target-removed"
		if err := b.bucket.RemoveTargets(ctx, appGUID); err != nil {
			logger.Error("delete-target-failed", err)
			return "", errStoreUnavailable("could not remove the app's targets", err)
		}
	}
	if record != nil || unreadable {
		if err := b.bucket.DeleteBinding(ctx, bindingID); err != nil {
			logger.Error("delete-record-failed", err)
			return "", errStoreUnavailable("could not remove the binding record", err)
		}
	}
	logger.Info("unbound", lager.Data{"outcome": outcome})
	return outcome, nil
}

// readRecordForUnbind reads the binding's record. A record that cannot be
// parsed is reported as unreadable, with no record: unbind then asks the
// CF API which app the binding is for, as for a binding made before the
// bucket had records, and removes the unreadable record with the binding.
func (b *Broker) readRecordForUnbind(ctx context.Context, logger lager.Logger, bindingID string) (record *store.Binding, unreadable bool, err error) {
	stored, err := b.bucket.ReadBinding(ctx, bindingID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, false, nil
	case errors.Is(err, store.ErrUnreadableRecord):
		logger.Error("unreadable-record-asking-cf-api", err)
		return nil, true, nil
	case err != nil:
		logger.Error("read-record-failed", err)
		return nil, false, errStoreUnavailable("could not read the binding record", err)
	}
	return &stored.Binding, false, nil
}

// lastBinding reports whether bindingID is the app's last binding of our
// plan. When the CF API cannot tell, the answer is no: a target left behind
// is removed by the next reconcile, a target removed too early is a gap in
// monitoring.
func (b *Broker) lastBinding(ctx context.Context, logger lager.Logger, appGUID, bindingID string) bool {
	others, err := b.bindings.AppBindings(ctx, appGUID)
	if err != nil {
		logger.Error("app-bindings-lookup-failed-keeping-target", err)
		return false
	}
	for _, o := range others {
		if o.GUID != bindingID && !o.Deleting {
			logger.Info("other-bindings-remain", lager.Data{"other_binding_id": o.GUID})
			return false
		}
	}
	return true
}
