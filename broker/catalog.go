package broker

import (
	"context"
	"time"

	"github.com/pivotal-cf/brokerapi/v10/domain"

	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/targets"
)

// DefaultDocumentationURL is the marketplace's documentation link when the
// catalog names none.
const DefaultDocumentationURL = "https://github.com/alphagov/cf-app-discovery#readme"

// Services answers GET /v2/catalog, which Cloud Controller calls on
// `cf create-service-broker` and `cf update-service-broker`.
func (b *Broker) Services(context.Context) ([]domain.Service, error) {
	defer b.metrics.observe("catalog", time.Now(), "ok", nil)
	free := true
	docs := b.catalog.DocumentationURL
	if docs == "" {
		docs = DefaultDocumentationURL
	}
	return []domain.Service{{
		ID:                   b.catalog.ServiceID,
		Name:                 b.catalog.ServiceName,
		Description:          "Scrapes every instance of your apps with Prometheus",
		Bindable:             true,
		InstancesRetrievable: true,
		BindingsRetrievable:  true,
		PlanUpdatable:        false,
		Tags:                 []string{"prometheus", "monitoring"},
		Metadata: &domain.ServiceMetadata{
			DisplayName:      "Prometheus",
			LongDescription:  b.longDescription(),
			DocumentationUrl: docs,
		},
		Plans: []domain.ServicePlan{{
			ID:          b.catalog.PlanID,
			Name:        b.catalog.PlanName,
			Description: "Monitor your apps using Prometheus",
			Free:        &free,
			Bindable:    &free,
			// `cf marketplace -e` shows the bind parameters; bind validates
			// with the same schema. Every schema is declared: brokerapi
			// writes one left out as "parameters": null, which is not a
			// JSON Schema.
			Schemas: &domain.ServiceSchemas{
				Instance: domain.ServiceInstanceSchema{
					Create: domain.Schema{Parameters: noInstanceParameters()},
					Update: domain.Schema{Parameters: noInstanceParameters()},
				},
				Binding: domain.ServiceBindingSchema{Create: domain.Schema{Parameters: targets.ParametersSchema()}},
			},
		}},
	}}, nil
}

// noInstanceParameters is the schema of `cf create-service -c` and `cf
// update-service -c`: none are taken (Provision and Update refuse them), the
// settings belong to bindings.
func noInstanceParameters() map[string]any {
	return map[string]any{
		"$schema":              "http://json-schema.org/draft-04/schema#",
		"type":                 "object",
		"description":          "No parameters: give the scrape settings to each binding (cf bind-service -c).",
		"additionalProperties": false,
	}
}

// longDescription tells tenants the one step they must take before
// binding.
func (b *Broker) longDescription() string {
	user := "the monitoring user"
	if b.monitoringUser != "" {
		user = "the monitoring user " + b.monitoringUser
	}
	return "Bind an app to have each of its instances scraped by the platform's Prometheus. " +
		"First give " + user + " the SpaceAuditor role in the app's space: " + b.grantCommand + "."
}

// namedID is an id a request carries, with the name the request gives it.
type namedID struct{ name, value string }

// checkRequest refuses a request whose ids are not GUIDs, or whose service
// or plan is not ours, in that order: what every OSB call checks before
// anything else.
func (b *Broker) checkRequest(serviceID, planID string, ids ...namedID) error {
	for _, i := range ids {
		if !scrape.ValidGUID(i.value) {
			return errInvalidID(i.name, i.value)
		}
	}
	return b.checkCatalog(serviceID, planID)
}

// checkCatalog refuses a service or plan id that is not ours.
func (b *Broker) checkCatalog(serviceID, planID string) error {
	if serviceID != b.catalog.ServiceID {
		return errUnknownService(serviceID)
	}
	if planID != "" && planID != b.catalog.PlanID {
		return errUnknownPlan(planID)
	}
	return nil
}
