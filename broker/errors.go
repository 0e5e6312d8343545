package broker

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"
)

// Every failure the broker answers with is built here. They are returned
// unwrapped: brokerapi answers 500 for a wrapped FailureResponse. Their
// logger actions are also the outcome label of the operations metric.

// errRequiresApp answers a bind without an app (a service key): 422 with
// the "RequiresApp" error code Cloud Controller understands. brokerapi's
// ErrAppGuidNotProvided has no error key, so CC would not recognise it.
var errRequiresApp = apiresponses.NewFailureResponseBuilder(
	errors.New("this service can only be bound to an app: service keys are not supported"),
	http.StatusUnprocessableEntity, "requires-app",
).WithErrorKey("RequiresApp").Build()

// errInvalidID answers 400 for an id that is not a GUID. Cloud Controller
// only sends GUIDs; anything else never reaches the store, whose keys are
// built from these ids.
func errInvalidID(field, value string) error {
	return apiresponses.NewFailureResponse(
		fmt.Errorf("%s must be a GUID, got %q", field, clip(value)),
		http.StatusBadRequest, "invalid-id")
}

func errUnknownService(id string) error {
	return apiresponses.NewFailureResponse(
		fmt.Errorf("unknown service_id %q: this broker offers only its catalog's service", clip(id)),
		http.StatusBadRequest, "unknown-service")
}

func errUnknownPlan(id string) error {
	return apiresponses.NewFailureResponse(
		fmt.Errorf("unknown plan_id %q: this broker offers only its catalog's plan", clip(id)),
		http.StatusBadRequest, "unknown-plan")
}

// errAppNotVisible answers 422 rather than 403: the request is well formed
// and the broker's credentials are fine, but it cannot be done until the
// tenant grants access; a 4xx tells Cloud Controller not to run orphan
// mitigation, and CC shows the description to the tenant.
func errAppNotVisible(appGUID, grantCommand string) error {
	return apiresponses.NewFailureResponse(
		fmt.Errorf("the monitoring user cannot see app %s: grant it read access to the app's space with "+
			"`%s`, then bind again", appGUID, grantCommand),
		http.StatusUnprocessableEntity, "app-not-visible")
}

// errCFUnavailable answers 503 when the CF API failed: Cloud Controller
// then unbinds (orphan mitigation) or retries the unbind, and the tenant
// binds again.
func errCFUnavailable(what string, err error) error {
	return apiresponses.NewFailureResponse(
		fmt.Errorf("%s, try again later: %v", what, err),
		http.StatusServiceUnavailable, "cf-unavailable")
}

// errCFFailed answers 500 for a CF API failure that is not a passing
// unavailability (none is known today: the CF client wraps every failure
// in cfapi.ErrUnavailable).
func errCFFailed(what string, err error) error {
	return apiresponses.NewFailureResponse(
		fmt.Errorf("%s: %v", what, err),
		http.StatusInternalServerError, "cf-error")
}

// errStoreUnavailable answers 503 when the bucket (or directory) failed.
// After a bind Cloud Controller sends an unbind (orphan mitigation); an
// unbind is retried.
func errStoreUnavailable(what string, err error) error {
	return apiresponses.NewFailureResponse(
		fmt.Errorf("%s, try again later: %v", what, err),
		http.StatusServiceUnavailable, "store-unavailable")
}

// errInvalidParameters answers 400 to bind parameters that are not valid,
// or that the app cannot honour (a port no route serves). The description,
// which Cloud Controller shows the tenant, names each bad parameter and the
// form it accepts, never a value sent.
func errInvalidParameters(err error) error {
	return apiresponses.NewFailureResponse(err, http.StatusBadRequest, "invalid-parameters")
}

// errSettingsConflict answers 400 to a bind whose parameters disagree with
// those of another binding of the same app: the app has one target file.
func errSettingsConflict(err error) error {
	return apiresponses.NewFailureResponse(err, http.StatusBadRequest, "settings-conflict")
}

// errInstanceParameters answers 400 to `cf create-service -c` and `cf
// update-service -c`: the scrape settings belong to each binding.
var errInstanceParameters = apiresponses.NewFailureResponse(
	errors.New("this service takes no parameters on create-service or update-service: give them to each binding, "+
		"with `cf bind-service <app> <instance> -c '{...}'` or `parameters:` under the service in the app's manifest"),
	http.StatusBadRequest, "instance-parameters")

// errMissingContext answers 400 to a provision that does not say which
// org and space the instance is in.
var errMissingContext = apiresponses.NewFailureResponse(
	errors.New("organization_guid and space_guid are required, as GUIDs"),
	http.StatusBadRequest, "missing-context")

// errInstanceNotFound answers 404 to fetching an instance without a
// record: unknown, or provisioned before the broker kept records.
var errInstanceNotFound = apiresponses.NewFailureResponseBuilder(
	errors.New("the service instance is not known to the broker"),
	http.StatusNotFound, "instance-not-found").Build()

// errNotSupported answers 400 to the calls the catalog tells Cloud
// Controller not to make.
func errNotSupported(what string) error {
	return apiresponses.NewFailureResponse(
		fmt.Errorf("%s is not supported by this broker", what),
		http.StatusBadRequest, "not-supported")
}

// clip shortens an echoed value: ids arrive from the request and may be
// long.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
