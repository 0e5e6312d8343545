package broker

import (
	"errors"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/pivotal-cf/brokerapi/v10/domain/apiresponses"
)

var _ = Describe("failure responses", func() {
	cause := errors.New("cause")

	DescribeTable("are unwrapped FailureResponses with their status, a kebab-case outcome and the tenant's explanation",
		func(err error, status int, errorKey, description string) {
			failure, ok := err.(*apiresponses.FailureResponse)
			Expect(ok).To(BeTrue(), "%T is not a *FailureResponse", err)
			Expect(failure.ValidatedStatusCode(nil)).To(Equal(status))
			Expect(failure.LoggerAction()).To(MatchRegexp(`^[a-z]+(-[a-z]+)*$`))
			body, ok := failure.ErrorResponse().(apiresponses.ErrorResponse)
			Expect(ok).To(BeTrue())
			Expect(body.Error).To(Equal(errorKey))
			Expect(body.Description).To(ContainSubstring(description))
		},
		Entry("a service key", errRequiresApp, http.StatusUnprocessableEntity, "RequiresApp", "only be bound to an app"),
		Entry("an id that is not a GUID", errInvalidID("binding_id", "../x"), http.StatusBadRequest, "", `binding_id must be a GUID, got "../x"`),
		Entry("a long id, clipped", errInvalidID("binding_id", string(make([]byte, 100))), http.StatusBadRequest, "", "…"),
		Entry("an unknown service", errUnknownService("s"), http.StatusBadRequest, "", `unknown service_id "s"`),
		Entry("an unknown plan", errUnknownPlan("p"), http.StatusBadRequest, "", `unknown plan_id "p"`),
		Entry("an app the monitoring user cannot see", errAppNotVisible("app-guid", grantCommand("monitor", false)), http.StatusUnprocessableEntity, "",
			"`cf set-space-role monitor <org> <space> SpaceAuditor`, then bind again"),
		Entry("an app the monitoring client cannot see", errAppNotVisible("app-guid", grantCommand("monitor-client", true)), http.StatusUnprocessableEntity, "",
			"`cf set-space-role monitor-client <org> <space> SpaceAuditor --client`, then bind again"),
		Entry("the CF API unavailable", errCFUnavailable("could not look", cause), http.StatusServiceUnavailable, "", "try again later: cause"),
		Entry("the CF API failing otherwise", errCFFailed("could not look", cause), http.StatusInternalServerError, "", "could not look: cause"),
		Entry("the store unavailable", errStoreUnavailable("could not write", cause), http.StatusServiceUnavailable, "", "try again later: cause"),
		Entry("a call the catalog rules out", errNotSupported("polling"), http.StatusBadRequest, "", "polling is not supported"),
	)

	It("name the outcome of an operation by their logger action", func() {
		Expect(outcome("created", nil)).To(Equal("created"))
		Expect(outcome("created", errRequiresApp)).To(Equal("requires-app"))
		Expect(outcome("created", apiresponses.ErrBindingAlreadyExists)).To(Equal("binding-already-exists"))
		Expect(outcome("created", cause)).To(Equal("error"))
	})
})
