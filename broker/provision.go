package broker

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"

	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/store"
)

// Provision answers PUT /v2/service_instances/:instance_id, reached by
// `cf create-service`. It is synchronous: it writes the instance's record
// and answers 201; 200 to a repeat with the same attributes; 409 to the
// same id with others; 400 without the org and space, or with parameters
// (the settings belong to bindings).
func (b *Broker) Provision(ctx context.Context, instanceID string, details domain.ProvisionDetails, _ bool) (domain.ProvisionedServiceSpec, error) {
	start := time.Now()
	spec, err := b.provision(ctx, instanceID, details)
	success := "created"
	if spec.AlreadyExists {
		success = "already-exists"
	}
	b.metrics.observe("provision", start, success, err)
	return spec, err
}

func (b *Broker) provision(ctx context.Context, instanceID string, details domain.ProvisionDetails) (domain.ProvisionedServiceSpec, error) {
	logger := b.logger.Session("provision", lager.Data{"instance_id": instanceID})
	if err := b.checkRequest(details.ServiceID, details.PlanID, namedID{"instance_id", instanceID}); err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	org, space := placeOf(details)
	if !scrape.ValidGUID(org) || !scrape.ValidGUID(space) {
		logger.Info("rejected", lager.Data{"reason": "missing-context"})
		return domain.ProvisionedServiceSpec{}, errMissingContext
	}
	if err := noParameters(logger, details.RawParameters); err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	logger = logger.WithData(lager.Data{"organization_guid": org, "space_guid": space})
	record := store.Instance{InstanceGUID: instanceID, ServiceID: details.ServiceID, PlanID: details.PlanID,
		OrganizationGUID: org, SpaceGUID: space, CreatedAt: b.now().UTC()}
	_, err := b.bucket.WriteInstance(ctx, record, store.Condition{IfNoneMatch: true})
	if err == nil {
		logger.Info("provisioned")
		return domain.ProvisionedServiceSpec{}, nil
	}
	if !errors.Is(err, store.ErrPreconditionFailed) {
		logger.Error("write-record-failed", err)
		return domain.ProvisionedServiceSpec{}, errStoreUnavailable("could not store the service instance", err)
	}
	existing, err := b.bucket.ReadInstance(ctx, instanceID)
	switch {
	case errors.Is(err, store.ErrUnreadableRecord):
		logger.Error("unreadable-record", err)
		return domain.ProvisionedServiceSpec{}, apiresponses.ErrInstanceAlreadyExists
	case err != nil:
		// Gone again since the write failed: Cloud Controller retries.
		logger.Error("read-record-failed", err)
		return domain.ProvisionedServiceSpec{}, errStoreUnavailable("could not read the service instance", err)
	case !existing.SameAs(record):
		logger.Info("conflict")
		return domain.ProvisionedServiceSpec{}, apiresponses.ErrInstanceAlreadyExists
	}
	logger.Info("already-provisioned")
	return domain.ProvisionedServiceSpec{AlreadyExists: true}, nil
}

// placeOf is the org and space of a provision: the top-level fields OSB
// requires, or those of its Cloud Foundry context.
func placeOf(details domain.ProvisionDetails) (org, space string) {
	var context struct {
		Org   string `json:"organization_guid"`
		Space string `json:"space_guid"`
	}
	_ = json.Unmarshal(details.RawContext, &context)
	org, space = details.OrganizationGUID, details.SpaceGUID
	if org == "" {
		org = context.Org
	}
	if space == "" {
		space = context.Space
	}
	return org, space
}

// Deprovision answers DELETE /v2/service_instances/:instance_id, reached
// by `cf delete-service` once the instance has no bindings left. It removes
// the instance's record and answers 200, or 410 when there is none: an
// unknown instance, or one provisioned before the broker kept records,
// which Cloud Controller deletes on a 410 as on a 200.
func (b *Broker) Deprovision(ctx context.Context, instanceID string, details domain.DeprovisionDetails, _ bool) (_ domain.DeprovisionServiceSpec, err error) {
	defer func(start time.Time) { b.metrics.observe("deprovision", start, "ok", err) }(time.Now())
	logger := b.logger.Session("deprovision", lager.Data{"instance_id": instanceID})
	if err := b.checkRequest(details.ServiceID, details.PlanID, namedID{"instance_id", instanceID}); err != nil {
		return domain.DeprovisionServiceSpec{}, err
	}
	_, err = b.bucket.ReadInstance(ctx, instanceID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		logger.Info("unknown-instance")
		return domain.DeprovisionServiceSpec{}, apiresponses.ErrInstanceDoesNotExist
	case err != nil && !errors.Is(err, store.ErrUnreadableRecord):
		logger.Error("read-record-failed", err)
		return domain.DeprovisionServiceSpec{}, errStoreUnavailable("could not read the service instance", err)
	}
	if err := b.bucket.DeleteInstance(ctx, instanceID); err != nil {
		logger.Error("delete-record-failed", err)
		return domain.DeprovisionServiceSpec{}, errStoreUnavailable("could not remove the service instance", err)
	}
	logger.Info("deprovisioned")
	return domain.DeprovisionServiceSpec{}, nil
}

// Update answers PATCH /v2/service_instances/:instance_id, reached by `cf
// update-service -c` (Cloud Controller refuses `-p` itself: the plan is not
// updateable). With one plan and no instance parameters there is nothing to
// change: 200 `{}` to an update that asks for no change (the plan it has, or
// none, and no parameters), whether or not the instance has a record; 400
// to parameters, as on provision, or to a service or plan not in the
// catalog.
func (b *Broker) Update(_ context.Context, instanceID string, details domain.UpdateDetails, _ bool) (_ domain.UpdateServiceSpec, err error) {
	defer func(start time.Time) { b.metrics.observe("update", start, "unchanged", err) }(time.Now())
	logger := b.logger.Session("update", lager.Data{"instance_id": instanceID})
	if err := b.checkRequest(details.ServiceID, details.PlanID, namedID{"instance_id", instanceID}); err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	if err := noParameters(logger, details.RawParameters); err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	logger.Info("unchanged")
	return domain.UpdateServiceSpec{}, nil
}

// GetInstance answers GET /v2/service_instances/:instance_id, which Cloud
// Controller sends for `cf service <instance> --params`: the instance's
// service, plan and parameters, from its record; 404 for an instance
// without one (unknown, or provisioned before the broker kept records).
func (b *Broker) GetInstance(ctx context.Context, instanceID string, _ domain.FetchInstanceDetails) (_ domain.GetInstanceDetailsSpec, err error) {
	defer func(start time.Time) { b.metrics.observe("get-instance", start, "ok", err) }(time.Now())
	if !scrape.ValidGUID(instanceID) {
		return domain.GetInstanceDetailsSpec{}, errInvalidID("instance_id", instanceID)
	}
	record, err := b.bucket.ReadInstance(ctx, instanceID)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnreadableRecord):
		return domain.GetInstanceDetailsSpec{}, errInstanceNotFound
	case err != nil:
		b.logger.Error("get-instance-read-record-failed", err, lager.Data{"instance_id": instanceID})
		return domain.GetInstanceDetailsSpec{}, errStoreUnavailable("could not read the service instance", err)
	}
	return domain.GetInstanceDetailsSpec{ServiceID: record.ServiceID, PlanID: record.PlanID,
		Parameters: parameters(record.Parameters)}, nil
}

// LastOperation answers GET /v2/service_instances/:instance_id/last_operation.
// No `cf` command reaches it: Cloud Controller polls only after a 202, and
// every operation here is synchronous.
func (b *Broker) LastOperation(context.Context, string, domain.PollDetails) (domain.LastOperation, error) {
	return domain.LastOperation{}, errNotSupported("polling an operation")
}

// noParameters refuses instance parameters, on create-service and
// update-service alike: the settings belong to bindings.
func noParameters(logger lager.Logger, raw json.RawMessage) error {
	if store.SameParameters(raw, nil) {
		return nil
	}
	logger.Info("rejected", lager.Data{"reason": "instance-parameters"})
	return errInstanceParameters
}
