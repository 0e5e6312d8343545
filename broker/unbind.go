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
	"github.com/alphagov/cf-app-discovery/targets"
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
	if err := b.checkRequest(details.ServiceID, details.PlanID, namedID{"instance_id", instanceID}, namedID{"binding_id", bindingID}); err != nil {
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
		if b.settleTargets(ctx, logger, appGUID, bindingID) {
			outcome = "target-kept"
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

// maxSettleRounds bounds how often an unbind writes and removes an app's
// target file again while other binds and unbinds of the app go on.
const maxSettleRounds = 3

// settleTargets runs after an unbind removed an app's target file. Another
// broker instance may have bound the app between this unbind's look at the
// app's bindings and its removal, and written the file this removal took
// away: it looks at the bindings again, writes the file again when one
// appeared, and removes it again when that binding went too, until the CF
// API agrees with what it did last (the locks of one instance cannot order
// the writes of another). It reports whether the app keeps a target file.
// A failure leaves the file as it is for the next reconcile to decide.
func (b *Broker) settleTargets(ctx context.Context, logger lager.Logger, appGUID, bindingID string) (kept bool) {
	for range maxSettleRounds {
		other, err := b.otherBinding(ctx, appGUID, bindingID)
		if err != nil {
			logger.Error("settle-bindings-lookup-failed", err)
			return kept
		}
		others := other != ""
		if others == kept {
			return kept
		}
		if others {
			err := b.rewriteTarget(ctx, logger, appGUID, bindingID)
			if err != nil {
				logger.Error("settle-write-target-failed", err)
				return kept
			}
			logger.Info("target-written-again-for-a-new-binding", lager.Data{"other_binding_id": other})
		} else {
			if err := b.bucket.RemoveTargets(ctx, appGUID); err != nil {
				logger.Error("settle-delete-target-failed", err)
				return kept
			}
			logger.Info("target-removed-again")
		}
		kept = others
	}
	logger.Info("target-not-settled", lager.Data{"kept": kept})
	return kept
}

// rewriteTarget writes the app's target file again, as a bind would: with
// the settings of its bindings (all but bindingID, which is going) over
// those of its annotations, in the broker's addressing.
func (b *Broker) rewriteTarget(ctx context.Context, logger lager.Logger, appGUID, bindingID string) error {
	app, err := b.apps.App(ctx, appGUID)
	if err != nil {
		return err
	}
	bindings, err := b.bindings.AppBindings(ctx, appGUID)
	if err != nil {
		return err
	}
	others, err := b.boundSettings(ctx, logger, bindingID, bindings)
	if err != nil {
		return err
	}
	// A conflict stored by racing binds: the oldest binding's settings
	// apply, as in the target updater.
	bound, _ := targets.Combine(others)
	return b.bucket.PutTarget(ctx, b.target(logger, app, bound))
}

// otherBinding returns a binding of the app to our plan, other than
// bindingID, that is not being deleted; "" when there is none.
func (b *Broker) otherBinding(ctx context.Context, appGUID, bindingID string) (string, error) {
	bindings, err := b.bindings.AppBindings(ctx, appGUID)
	if err != nil {
		return "", err
	}
	for _, o := range bindings {
		if o.GUID != bindingID && !o.Deleting {
			return o.GUID, nil
		}
	}
	return "", nil
}

// lastBinding reports whether bindingID is the app's last binding of our
// plan. When the CF API cannot tell, the answer is no: a target left behind
// is removed by the next reconcile, a target removed too early is a gap in
// monitoring.
func (b *Broker) lastBinding(ctx context.Context, logger lager.Logger, appGUID, bindingID string) bool {
	other, err := b.otherBinding(ctx, appGUID, bindingID)
	if err != nil {
		logger.Error("app-bindings-lookup-failed-keeping-target", err)
		return false
	}
	if other != "" {
		logger.Info("other-bindings-remain", lager.Data{"other_binding_id": other})
		return false
	}
	return true
}
