package broker_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/alphagov/cf-app-discovery/cfapi"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("Unbind", func() {
	var (
		h       *harness
		binding string
		r       response
	)

	BeforeEach(func() {
		h = newHarness().serve()
		binding = bindingID
		Expect(h.bind(bindingID, appGUID).status).To(Equal(http.StatusCreated))
		// Cloud Controller marks the binding as being deleted before it
		// calls the broker.
		h.cf.setBinding(cfapi.Binding{GUID: bindingID, AppGUID: appGUID, Deleting: true})
	})

	JustBeforeEach(func() {
		r = h.unbind(binding)
	})

	Context("when it is the app's last binding", func() {
		It("answers 200 with an empty object", func() {
			Expect(r.status).To(Equal(http.StatusOK))
			Expect(r.raw).To(MatchJSON(`{}`))
		})

		It("removes the record and the target file", func() {
			Expect(h.files()).To(BeEmpty())
			Expect(h.operations("unbind", "target-removed")).To(Equal(1.0))
		})

		It("logs the ids", func() {
			Expect(h.logs.String()).To(MatchRegexp(`unbind\.unbound".*"app_guid":"` + appGUID + `"`))
		})
	})

	Context("when the app is stopped", func() {
		BeforeEach(func() {
			Expect(h.bind(binding2ID, app2GUID).status).To(Equal(http.StatusCreated))
			h.cf.setBinding(cfapi.Binding{GUID: binding2ID, AppGUID: app2GUID, Deleting: true})
			binding = binding2ID
		})

		It("removes its inactive/ file", func() {
			Expect(r.status).To(Equal(http.StatusOK))
			Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+bindingID+".json"))
		})
	})

	Context("when another binding of the app remains", func() {
		BeforeEach(func() {
			Expect(h.bind(binding2ID, appGUID).status).To(Equal(http.StatusCreated))
			h.cf.setBinding(cfapi.Binding{GUID: binding2ID, AppGUID: appGUID})
		})

		It("keeps the target file and the other record", func() {
			Expect(r.status).To(Equal(http.StatusOK))
			Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+binding2ID+".json"))
			Expect(h.operations("unbind", "target-kept")).To(Equal(1.0))
		})
	})

	Context("when the app's other bindings are being deleted too (cf delete of the app)", func() {
		BeforeEach(func() {
			Expect(h.bind(binding2ID, appGUID).status).To(Equal(http.StatusCreated))
			h.cf.setBinding(cfapi.Binding{GUID: binding2ID, AppGUID: appGUID, Deleting: true})
		})

		It("removes the target file", func() {
			Expect(r.status).To(Equal(http.StatusOK))
			Expect(h.files()).To(ConsistOf("bindings/" + binding2ID + ".json"))
		})
	})

	Context("when the CF API cannot list the app's bindings", func() {
		BeforeEach(func() { h.cf.appsErr = cfapi.ErrUnavailable })

		It("keeps the target file, removes the record, and logs why", func() {
			Expect(r.status).To(Equal(http.StatusOK))
			Expect(h.files()).To(ConsistOf("active/" + appGUID + ".json"))
			Expect(h.logs.String()).To(ContainSubstring("app-bindings-lookup-failed-keeping-target"))
		})
	})

	Context("when the bucket was written by the Ruby service (a target file, no record)", func() {
		BeforeEach(func() {
			Expect(os.Remove(filepath.Join(h.dir, "bindings", bindingID+".json"))).To(Succeed())
		})

		It("finds the app in the CF API and removes its target file", func() {
			Expect(r.status).To(Equal(http.StatusOK))
			Expect(h.files()).To(BeEmpty())
		})

		Context("and the CF API is unavailable", func() {
			BeforeEach(func() { h.cf.err = cfapi.ErrUnavailable })

			It("answers 503 and keeps the target file, so that Cloud Controller retries", func() {
				Expect(r.status).To(Equal(http.StatusServiceUnavailable))
				Expect(h.files()).To(ConsistOf("active/" + appGUID + ".json"))
			})
		})
	})

	Context("when the binding record cannot be parsed", func() {
		BeforeEach(func() {
			Expect(os.WriteFile(filepath.Join(h.dir, "bindings", bindingID+".json"), []byte("{not json"), 0o644)).To(Succeed())
		})

		It("finds the app in the CF API, removes its target file and the record, and logs why", func() {
			Expect(r.status).To(Equal(http.StatusOK))
			Expect(h.files()).To(BeEmpty())
			Expect(h.logs.String()).To(ContainSubstring("unreadable-record-asking-cf-api"))
		})

		Context("and the CF API does not know the binding", func() {
			BeforeEach(func() { h.cf.bindings = nil })

			It("answers 410 and leaves the record for the target updater to remove once old", func() {
				Expect(r.status).To(Equal(http.StatusGone))
				Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+bindingID+".json"))
			})
		})

		Context("and the CF API is unavailable", func() {
			BeforeEach(func() { h.cf.err = cfapi.ErrUnavailable })

			It("answers 503 and changes nothing, so that Cloud Controller retries", func() {
				Expect(r.status).To(Equal(http.StatusServiceUnavailable))
				Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+bindingID+".json"))
			})
		})
	})

	Context("when neither the bucket nor the CF API knows the binding", func() {
		BeforeEach(func() { binding = unknownID })

		It("answers 410 and changes nothing", func() {
			Expect(r.status).To(Equal(http.StatusGone))
			Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+bindingID+".json"))
		})
	})

	Context("when the store fails to delete", func() {
		BeforeEach(func() {
			h.st.setFail(func(op, _ string) bool { return op == "DELETE" })
		})

		It("answers 503 and keeps the record, so that Cloud Controller retries", func() {
			Expect(r.status).To(Equal(http.StatusServiceUnavailable))
			Expect(h.files()).To(ContainElement("bindings/" + bindingID + ".json"))
		})

		Context("and Cloud Controller retries once the store is back", func() {
			JustBeforeEach(func() {
				h.st.setFail(nil)
				r = h.unbind(binding)
			})

			It("finishes the unbind", func() {
				Expect(r.status).To(Equal(http.StatusOK))
				Expect(h.files()).To(BeEmpty())
			})
		})
	})

	Context("when the record cannot be read", func() {
		BeforeEach(func() {
			h.st.setFail(func(op, key string) bool { return op == "GET" && strings.HasPrefix(key, "bindings/") })
		})

		It("answers 503 and removes nothing", func() {
			Expect(r.status).To(Equal(http.StatusServiceUnavailable))
			Expect(h.files()).To(HaveLen(2))
		})
	})
})

var _ = Describe("Unbind requests Cloud Controller would never send", func() {
	var h *harness

	BeforeEach(func() {
		h = newHarness().serve()
		Expect(h.bind(bindingID, appGUID).status).To(Equal(http.StatusCreated))
	})

	DescribeTable("change nothing",
		func(path string, status int) {
			resp := h.do("DELETE", path, nil)
			Expect(resp.status).To(Equal(status), resp.raw)
			Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+bindingID+".json"))
		},
		Entry("an encoded path in the binding id", bindingPath("..%2Fbindings%2Fx")+"?service_id="+serviceID+"&plan_id="+planID, http.StatusBadRequest),
		Entry("an instance id that is not a GUID", "/v2/service_instances/x..y/service_bindings/"+bindingID+"?service_id="+serviceID+"&plan_id="+planID, http.StatusBadRequest),
		Entry("no service_id", bindingPath(bindingID)+"?plan_id="+planID, http.StatusBadRequest),
		Entry("no plan_id", bindingPath(bindingID)+"?service_id="+serviceID, http.StatusBadRequest),
		Entry("an unknown plan", bindingPath(bindingID)+"?service_id="+serviceID+"&plan_id="+unknownID, http.StatusBadRequest),
		Entry("an unknown service", bindingPath(bindingID)+"?service_id="+unknownID+"&plan_id="+planID, http.StatusBadRequest),
	)
})
