package broker

import (
	"context"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/pivotal-cf/brokerapi/v10/domain"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"
)

// Provision answers PUT /v2/service_instances/:instance_id, reached by
// `cf create-service`. Instances hold no state: it is synchronous and
// idempotent, and answers 201 to a repeat as to the first.
func (b *Broker) Provision(_ context.Context, instanceID string, details domain.ProvisionDetails, _ bool) (_ domain.ProvisionedServiceSpec, err error) {
	defer func(start time.Time) { b.metrics.observe("provision", start, "ok", err) }(time.Now())
	if !scrape.ValidGUID(instanceID) {
		return domain.ProvisionedServiceSpec{}, errInvalidID("instance_id", instanceID)
	}
	if err := b.checkCatalog(details.ServiceID, details.PlanID); err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	b.logger.Session("provision", lager.Data{"instance_id": instanceID}).Info("done")
	return domain.ProvisionedServiceSpec{}, nil
}

// Deprovision answers DELETE /v2/service_instances/:instance_id, reached
// by `cf delete-service` once the instance has no bindings left. It
// answers 200 whether or not the instance was provisioned: there is nothing
// to remove, and a 410 would only make Cloud Controller log a warning.
func (b *Broker) Deprovision(_ context.Context, instanceID string, details domain.DeprovisionDetails, _ bool) (_ domain.DeprovisionServiceSpec, err error) {
	defer func(start time.Time) { b.metrics.observe("deprovision", start, "ok", err) }(time.Now())
	if !scrape.ValidGUID(instanceID) {
		return domain.DeprovisionServiceSpec{}, errInvalidID("instance_id", instanceID)
	}
	if err := b.checkCatalog(details.ServiceID, details.PlanID); err != nil {
		return domain.DeprovisionServiceSpec{}, err
	}
	b.logger.Session("deprovision", lager.Data{"instance_id": instanceID}).Info("done")
	return domain.DeprovisionServiceSpec{}, nil
}

// Update answers PATCH /v2/service_instances/:instance_id, reached by `cf
// update-service` (-p, -c, or a rename): there is one plan and no
// parameters, so there is nothing to change; 422 PlanChangeNotSupported.
func (b *Broker) Update(context.Context, string, domain.UpdateDetails, bool) (domain.UpdateServiceSpec, error) {
	b.metrics.observe("update", time.Now(), "ok", apiresponses.ErrPlanChangeNotSupported)
	return domain.UpdateServiceSpec{}, apiresponses.ErrPlanChangeNotSupported
}

// GetInstance answers GET /v2/service_instances/:instance_id. No `cf`
// command reaches it: the catalog says instances are not retrievable, so
// Cloud Controller does not ask.
func (b *Broker) GetInstance(context.Context, string, domain.FetchInstanceDetails) (domain.GetInstanceDetailsSpec, error) {
	return domain.GetInstanceDetailsSpec{}, errNotSupported("fetching a service instance")
}

// LastOperation answers GET /v2/service_instances/:instance_id/last_operation.
// No `cf` command reaches it: Cloud Controller polls only after a 202, and
// every operation here is synchronous.
func (b *Broker) LastOperation(context.Context, string, domain.PollDetails) (domain.LastOperation, error) {
	return domain.LastOperation{}, errNotSupported("polling an operation")
}
