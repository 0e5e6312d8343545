package broker_test

import (
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Provision and deprovision", func() {
	var h *harness
	instancePath := "/v2/service_instances/" + instanceID
	provisionBody := map[string]any{"service_id": serviceID, "plan_id": planID, "organization_guid": orgGUID, "space_guid": spaceGUID,
		"context": map[string]any{"platform": "cloudfoundry", "organization_guid": orgGUID, "space_guid": spaceGUID}}

	BeforeEach(func() {
		h = newHarness().serve()
	})

	It("provisions synchronously and idempotently, storing nothing", func() {
		for range 2 {
			r := h.do("PUT", instancePath+"?accepts_incomplete=true", provisionBody)
			Expect(r.status).To(Equal(http.StatusCreated), r.raw)
			Expect(r.body).NotTo(HaveKey("operation"))
		}
		Expect(h.files()).To(BeEmpty())
		Expect(h.operations("provision", "ok")).To(Equal(2.0))
	})

	It("deprovisions synchronously and idempotently, provisioned or not", func() {
		for range 2 {
			r := h.do("DELETE", instancePath+"?service_id="+serviceID+"&plan_id="+planID+"&accepts_incomplete=true", nil)
			Expect(r.status).To(Equal(http.StatusOK), r.raw)
			Expect(r.raw).To(MatchJSON(`{}`))
		}
	})

	It("refuses plan changes with 422 PlanChangeNotSupported", func() {
		r := h.do("PATCH", instancePath, map[string]any{"service_id": serviceID, "plan_id": planID})
		Expect(r.status).To(Equal(http.StatusUnprocessableEntity))
		Expect(r.body).To(HaveKeyWithValue("error", "PlanChangeNotSupported"))
	})

	DescribeTable("calls the catalog rules out are refused with a 4xx",
		func(method, path string) {
			r := h.do(method, path, nil)
			Expect(r.status).To(BeNumerically(">=", 400), r.raw)
			Expect(r.status).To(BeNumerically("<", 500), r.raw)
		},
		Entry("fetching an instance", "GET", instancePath),
		Entry("polling an instance operation", "GET", instancePath+"/last_operation"),
		Entry("fetching a binding", "GET", bindingPath(bindingID)),
		Entry("polling a binding operation", "GET", bindingPath(bindingID)+"/last_operation"),
	)

	DescribeTable("bad provision and deprovision requests are refused with 400",
		func(method, path string, body any) {
			r := h.do(method, path, body)
			Expect(r.status).To(Equal(http.StatusBadRequest), r.raw)
			Expect(r.body).To(HaveKey("description"))
		},
		Entry("an unknown service", "PUT", instancePath, map[string]any{"service_id": unknownID, "plan_id": planID, "organization_guid": orgGUID, "space_guid": spaceGUID}),
		Entry("an unknown plan", "PUT", instancePath, map[string]any{"service_id": serviceID, "plan_id": unknownID, "organization_guid": orgGUID, "space_guid": spaceGUID}),
		Entry("an instance id that is not a GUID", "PUT", "/v2/service_instances/x..y", provisionBody),
		Entry("deprovision of an unknown plan", "DELETE", instancePath+"?service_id="+serviceID+"&plan_id="+unknownID, nil),
		Entry("deprovision of an instance id that is not a GUID", "DELETE", "/v2/service_instances/x..y?service_id="+serviceID+"&plan_id="+planID, nil),
	)
})
