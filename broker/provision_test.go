package broker_test

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/store"
)

const (
	instancePath = "/v2/service_instances/" + instanceID
	otherGUID    = "88888888-8888-4888-8888-888888888888"
)

// provisionBody is what Cloud Controller sends on `cf create-service`.
func provisionBody() map[string]any {
	return map[string]any{"service_id": serviceID, "plan_id": planID, "organization_guid": orgGUID, "space_guid": spaceGUID,
		"context": map[string]any{"platform": "cloudfoundry", "organization_guid": orgGUID, "space_guid": spaceGUID}}
}

func provisionWith(change func(map[string]any)) map[string]any {
	body := provisionBody()
	change(body)
	return body
}

func bindWithParams(app string, params any) map[string]any {
	body := bindBody(app)
	body["parameters"] = params
	return body
}

const deprovisionQuery = "?service_id=" + serviceID + "&plan_id=" + planID + "&accepts_incomplete=true"

// call is one request Cloud Controller makes.
type call struct {
	method, path string
	body         any
	// binding and app: Cloud Controller has created this binding of the
	// app when it calls the broker, so the CF API lists it.
	binding, app string
}

func provision(body any) call {
	return call{method: "PUT", path: instancePath + "?accepts_incomplete=true", body: body}
}
func deprovision() call { return call{method: "DELETE", path: instancePath + deprovisionQuery} }
func getInstance() call { return call{method: "GET", path: instancePath} }

// update is what Cloud Controller sends on `cf update-service`, with
// change applied to the body.
func update(change func(map[string]any)) call {
	body := map[string]any{"service_id": serviceID, "plan_id": planID,
		"previous_values": map[string]any{"plan_id": planID}}
	change(body)
	return call{method: "PATCH", path: instancePath + "?accepts_incomplete=true", body: body}
}

func noChange(map[string]any) {}
func bindCall(binding string, body map[string]any) call {
	app, _ := body["app_guid"].(string)
	return call{"PUT", bindingPath(binding) + "?accepts_incomplete=true", body, binding, app}
}
func getBinding(binding string) call { return call{method: "GET", path: bindingPath(binding)} }

var _ = Describe("Cloud Controller's calls and the broker's answers", func() {
	var h *harness

	BeforeEach(func() {
		h = newHarness().serve()
	})

	// Each entry makes the calls before, which must succeed (2xx), then
	// the call, and checks its status and body.
	DescribeTable("through the real handler",
		func(before []call, c call, status int, body string) {
			send := func(c call) response {
				if c.binding != "" && c.app != "" {
					h.cf.setBinding(cfapi.Binding{GUID: c.binding, AppGUID: c.app, CreatedAt: time.Now()})
				}
				return h.do(c.method, c.path, c.body)
			}
			for _, b := range before {
				r := send(b)
				Expect(r.status).To(BeNumerically("<", 300), "%s %s: %s", b.method, b.path, r.raw)
			}
			r := send(c)
			Expect(r.status).To(Equal(status), r.raw)
			if body != "" {
				Expect(r.raw).To(MatchJSON(body))
			}
		},
		Entry("provision: 201 for a new instance", nil, provision(provisionBody()), http.StatusCreated, `{}`),
		Entry("provision: 200 for an identical one", []call{provision(provisionBody())}, provision(provisionBody()), http.StatusOK, `{}`),
		Entry("provision: 200 when the org and space come from the context alone",
			[]call{provision(provisionBody())},
			provision(provisionWith(func(b map[string]any) { delete(b, "organization_guid"); delete(b, "space_guid") })), http.StatusOK, ""),
		Entry("provision: 200 with empty parameters", []call{provision(provisionBody())},
			provision(provisionWith(func(b map[string]any) { b["parameters"] = map[string]any{} })), http.StatusOK, ""),
		Entry("provision: 409 for the same id in another space", []call{provision(provisionBody())},
			provision(provisionWith(func(b map[string]any) { b["space_guid"] = otherGUID })), http.StatusConflict, `{}`),
		Entry("provision: 409 for the same id in another org", []call{provision(provisionBody())},
			provision(provisionWith(func(b map[string]any) { b["organization_guid"] = otherGUID })), http.StatusConflict, `{}`),
		Entry("provision: 400 without organization_guid", nil,
			provision(provisionWith(func(b map[string]any) { delete(b, "organization_guid"); delete(b, "context") })), http.StatusBadRequest, ""),
		Entry("provision: 400 without space_guid", nil,
			provision(provisionWith(func(b map[string]any) { delete(b, "space_guid"); delete(b, "context") })), http.StatusBadRequest, ""),
		Entry("provision: 400 for a space that is not a GUID", nil,
			provision(provisionWith(func(b map[string]any) { b["space_guid"] = "../x" })), http.StatusBadRequest, ""),
		Entry("provision: 400 with parameters, which belong to bindings", nil,
			provision(provisionWith(func(b map[string]any) { b["parameters"] = map[string]any{"path": "/m"} })), http.StatusBadRequest, ""),
		Entry("provision: 400 for an unknown plan", nil,
			provision(provisionWith(func(b map[string]any) { b["plan_id"] = unknownID })), http.StatusBadRequest, ""),
		Entry("provision: 400 for an instance id that is not a GUID", nil,
			call{method: "PUT", path: "/v2/service_instances/x..y", body: provisionBody()}, http.StatusBadRequest, ""),

		Entry("deprovision: 200 for a provisioned instance", []call{provision(provisionBody())}, deprovision(), http.StatusOK, `{}`),
		Entry("deprovision: 410 for an instance without a record (unknown, or from the Ruby era)", nil, deprovision(), http.StatusGone, `{}`),
		Entry("deprovision: 410 the second time", []call{provision(provisionBody()), deprovision()}, deprovision(), http.StatusGone, `{}`),
		Entry("deprovision: 400 for an unknown plan", nil,
			call{method: "DELETE", path: instancePath + "?service_id=" + serviceID + "&plan_id=" + unknownID}, http.StatusBadRequest, ""),
		Entry("provision: 201 again after a deprovision", []call{provision(provisionBody()), deprovision()},
			provision(provisionBody()), http.StatusCreated, ""),

		Entry("update: 200 when it asks for no change (its own plan, no parameters)", []call{provision(provisionBody())},
			update(noChange), http.StatusOK, `{}`),
		Entry("update: 200 without a plan_id", []call{provision(provisionBody())},
			update(func(b map[string]any) { delete(b, "plan_id") }), http.StatusOK, `{}`),
		Entry("update: 200 with empty parameters", []call{provision(provisionBody())},
			update(func(b map[string]any) { b["parameters"] = map[string]any{} }), http.StatusOK, `{}`),
		Entry("update: 200 for an instance without a record (from the Ruby era)", nil, update(noChange), http.StatusOK, `{}`),
		Entry("update: 400 with parameters, which belong to bindings", []call{provision(provisionBody())},
			update(func(b map[string]any) { b["parameters"] = map[string]any{"path": "/m"} }), http.StatusBadRequest, ""),
		Entry("update: 400 for a plan not in the catalog", []call{provision(provisionBody())},
			update(func(b map[string]any) { b["plan_id"] = unknownID }), http.StatusBadRequest, ""),
		Entry("update: 400 for a service not in the catalog", []call{provision(provisionBody())},
			update(func(b map[string]any) { b["service_id"] = unknownID }), http.StatusBadRequest, ""),
		Entry("update: 400 for an instance id that is not a GUID", nil,
			call{method: "PATCH", path: "/v2/service_instances/x..y", body: map[string]any{"service_id": serviceID}}, http.StatusBadRequest, ""),

		Entry("get instance: its service, plan and parameters", []call{provision(provisionBody())}, getInstance(), http.StatusOK,
			`{"service_id":"`+serviceID+`","plan_id":"`+planID+`","parameters":{}}`),
		Entry("get instance: 404 without a record", nil, getInstance(), http.StatusNotFound, ""),
		Entry("get instance: 404 once deprovisioned", []call{provision(provisionBody()), deprovision()}, getInstance(), http.StatusNotFound, ""),

		Entry("bind: 201 to an instance provisioned in the Ruby era (no record)", nil,
			bindCall(bindingID, bindBody(appGUID)), http.StatusCreated, `{}`),
		Entry("bind: 201 to a provisioned instance", []call{provision(provisionBody())},
			bindCall(bindingID, bindWithParams(appGUID, map[string]any{"path": "/m"})), http.StatusCreated, `{}`),
		Entry("bind: 200 when app and parameters are identical",
			[]call{bindCall(bindingID, bindWithParams(appGUID, map[string]any{"path": "/m", "job": "j"}))},
			bindCall(bindingID, bindWithParams(appGUID, map[string]any{"job": "j", "path": "/m"})), http.StatusOK, `{}`),
		Entry("bind: 409 when the parameters differ",
			[]call{bindCall(bindingID, bindWithParams(appGUID, map[string]any{"path": "/m"}))},
			bindCall(bindingID, bindWithParams(appGUID, map[string]any{"path": "/n"})), http.StatusConflict, ""),
		Entry("bind: 409 when parameters are added",
			[]call{bindCall(bindingID, bindBody(appGUID))},
			bindCall(bindingID, bindWithParams(appGUID, map[string]any{"path": "/n"})), http.StatusConflict, ""),
		Entry("bind: 409 when the app differs",
			[]call{bindCall(bindingID, bindBody(appGUID))}, bindCall(bindingID, bindBody(app2GUID)), http.StatusConflict, ""),
		Entry("bind: 400 for invalid parameters", nil,
			bindCall(bindingID, bindWithParams(appGUID, map[string]any{"port": "x"})), http.StatusBadRequest, ""),
		Entry("bind: 400 for parameters conflicting with another binding of the app",
			[]call{bindCall(binding2ID, bindWithParams(appGUID, map[string]any{"path": "/m"}))},
			bindCall(bindingID, bindWithParams(appGUID, map[string]any{"path": "/n"})), http.StatusBadRequest, ""),
		Entry("bind: 422 RequiresApp for a service key", nil,
			bindCall(bindingID, map[string]any{"service_id": serviceID, "plan_id": planID}), http.StatusUnprocessableEntity,
			`{"error":"RequiresApp","description":"this service can only be bound to an app: service keys are not supported"}`),

		Entry("get binding: its parameters", []call{bindCall(bindingID, bindWithParams(appGUID, map[string]any{"path": "/m", "labels": map[string]any{"team": "t"}}))},
			getBinding(bindingID), http.StatusOK, `{"parameters":{"path":"/m","labels":{"team":"t"}}}`),
		Entry("get binding: {} for a binding without parameters", []call{bindCall(bindingID, bindBody(appGUID))},
			getBinding(bindingID), http.StatusOK, `{"parameters":{}}`),
		Entry("get binding: 404 without a record", nil, getBinding(bindingID), http.StatusNotFound, ""),
		Entry("get binding: 404 for a binding of another instance", []call{bindCall(bindingID, bindBody(appGUID))},
			call{method: "GET", path: "/v2/service_instances/" + otherGUID + "/service_bindings/" + bindingID}, http.StatusNotFound, ""),

		Entry("unbind: 200", []call{bindCall(bindingID, bindBody(appGUID))},
			call{method: "DELETE", path: bindingPath(bindingID) + deprovisionQuery}, http.StatusOK, `{}`),
		Entry("unbind: 410 for an unknown binding", nil,
			call{method: "DELETE", path: bindingPath(bindingID) + deprovisionQuery}, http.StatusGone, `{}`),
	)

	It("records the instance: service, plan, org and space, and when", func() {
		Expect(h.do("PUT", instancePath, provisionBody()).status).To(Equal(http.StatusCreated))
		record, err := store.UnmarshalInstance([]byte(h.read("instances/" + instanceID + ".json")))
		Expect(err).NotTo(HaveOccurred())
		Expect(record.InstanceGUID).To(Equal(instanceID))
		Expect(record.ServiceID).To(Equal(serviceID))
		Expect(record.PlanID).To(Equal(planID))
		Expect(record.OrganizationGUID).To(Equal(orgGUID))
		Expect(record.SpaceGUID).To(Equal(spaceGUID))
		Expect(record.CreatedAt).NotTo(BeZero())
		Expect(h.operations("provision", "created")).To(Equal(1.0))
		Expect(h.do("PUT", instancePath, provisionBody()).status).To(Equal(http.StatusOK))
		Expect(h.operations("provision", "already-exists")).To(Equal(1.0))
	})

	It("removes the record on deprovision", func() {
		Expect(h.do("PUT", instancePath, provisionBody()).status).To(Equal(http.StatusCreated))
		Expect(h.do(deprovision().method, deprovision().path, nil).status).To(Equal(http.StatusOK))
		Expect(h.files()).To(BeEmpty())
	})

	It("tells the tenant where parameters go when create-service is given some", func() {
		r := h.do("PUT", instancePath, provisionWith(func(b map[string]any) { b["parameters"] = map[string]any{"path": "/m"} }))
		Expect(r.body).To(HaveKeyWithValue("description", ContainSubstring("cf bind-service")))
		Expect(h.files()).To(BeEmpty())
	})

	It("names both guids it needs when the org or space is missing", func() {
		r := h.do("PUT", instancePath, provisionWith(func(b map[string]any) { delete(b, "space_guid"); delete(b, "context") }))
		Expect(r.body).To(HaveKeyWithValue("description", "organization_guid and space_guid are required, as GUIDs"))
	})

	It("answers 503 when the bucket fails, and Cloud Controller retries", func() {
		h.st.setFail(func(op, key string) bool { return key == "instances/"+instanceID+".json" })
		for _, c := range []call{provision(provisionBody()), deprovision(), getInstance()} {
			r := h.do(c.method, c.path, c.body)
			Expect(r.status).To(Equal(http.StatusServiceUnavailable), "%s: %s", c.method, r.raw)
		}
	})

	It("tells the tenant where parameters go when update-service is given some, and keeps the record", func() {
		Expect(h.do("PUT", instancePath, provisionBody()).status).To(Equal(http.StatusCreated))
		before := h.read("instances/" + instanceID + ".json")
		c := update(func(b map[string]any) { b["parameters"] = map[string]any{"path": "/m"} })
		r := h.do(c.method, c.path, c.body)
		Expect(r.body).To(HaveKeyWithValue("description", ContainSubstring("cf bind-service")))
		Expect(h.read("instances/" + instanceID + ".json")).To(Equal(before))
		Expect(h.operations("update", "instance-parameters")).To(Equal(1.0))
	})

	DescribeTable("polling, which Cloud Controller never does after a synchronous answer, is refused with 400",
		func(path string) {
			Expect(h.do("GET", path, nil).status).To(Equal(http.StatusBadRequest))
		},
		Entry("an instance operation", instancePath+"/last_operation"),
		Entry("a binding operation", bindingPath(bindingID)+"/last_operation"),
	)
})
