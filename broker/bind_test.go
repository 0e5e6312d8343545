package broker_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("Bind", func() {
	var (
		h       *harness
		binding string
		body    any
		r       response
	)

	BeforeEach(func() {
		h = newHarness()
		binding = bindingID
		body = bindBody(appGUID)
	})

	// The broker starts here unless a Context started it to arrange state,
	// so that a Context's BeforeEach can replace a collaborator first.
	JustBeforeEach(func() {
		if h.server == nil {
			h.serve()
		}
		r = h.bindWith(binding, body)
	})

	Context("when the app is started and the monitoring user can see it", func() {
		It("answers 201 with no credentials", func() {
			Expect(r.status).To(Equal(http.StatusCreated), r.raw)
			Expect(r.body).NotTo(HaveKey("credentials"))
		})

		It("writes the app's target file to active/, as targets.Render renders it", func() {
			Expect(h.read("active/" + appGUID + ".json")).To(Equal(string(targets.Render(startedApp(), paasDomain))))
		})

		It("writes the binding record and nothing else", func() {
			Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+bindingID+".json"))
			record := h.record(bindingID)
			Expect(record.BindingGUID).To(Equal(bindingID))
			Expect(record.AppGUID).To(Equal(appGUID))
			Expect(record.InstanceGUID).To(Equal(instanceID))
			Expect(record.ServiceID).To(Equal(serviceID))
			Expect(record.PlanID).To(Equal(planID))
			Expect(record.Source).To(Equal(store.SourceBroker))
			Expect(record.CreatedAt).NotTo(BeZero())
			Expect(record.Parameters).To(BeEmpty())
		})

		It("asks the CF API about the app once", func() {
			Expect(h.cf.callCount()).To(Equal(1))
		})

		It("logs the ids and never the bind parameters", func() {
			Expect(h.logs.String()).To(ContainSubstring(`"binding_id":"` + bindingID + `"`))
			Expect(h.logs.String()).To(ContainSubstring(`"app_guid":"` + appGUID + `"`))
			Expect(h.logs.String()).NotTo(ContainSubstring("tenant-value"))
		})

		It("counts a created binding", func() {
			Expect(h.operations("bind", "created")).To(Equal(1.0))
		})
	})

	Context("when the app is stopped", func() {
		BeforeEach(func() { body = bindBody(app2GUID) })

		It("writes its target file to inactive/", func() {
			Expect(r.status).To(Equal(http.StatusCreated))
			Expect(h.files()).To(ConsistOf("inactive/"+app2GUID+".json", "bindings/"+bindingID+".json"))
			Expect(h.read("inactive/" + app2GUID + ".json")).To(Equal(string(targets.Render(stoppedApp(), paasDomain))))
		})
	})

	// How a file moves, and what a failure halfway leaves, are the bucket's
	// rules, tested with store.Bucket; here, that a bind follows the app's
	// state now and keeps the other binding's record.
	Context("when the app was bound while stopped and has started since", func() {
		BeforeEach(func() {
			h.serve()
			h.cf.setApp(startedAppIn("STOPPED"))
			Expect(h.bind(binding2ID, appGUID).status).To(Equal(http.StatusCreated))
			Expect(h.files()).To(ContainElement("inactive/" + appGUID + ".json"))
			h.cf.setApp(startedApp())
		})

		It("moves the file to active/, never leaving both", func() {
			Expect(r.status).To(Equal(http.StatusCreated))
			Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+bindingID+".json", "bindings/"+binding2ID+".json"))
		})
	})

	Context("when only the deprecated top-level app_guid names the app", func() {
		BeforeEach(func() { delete(body.(map[string]any), "bind_resource") })

		It("binds that app", func() {
			Expect(r.status).To(Equal(http.StatusCreated))
			Expect(h.files()).To(ContainElement("active/" + appGUID + ".json"))
		})
	})

	Context("when bind_resource and the top-level app_guid disagree", func() {
		BeforeEach(func() { body.(map[string]any)["app_guid"] = app2GUID })

		It("binds bind_resource's app", func() {
			Expect(r.status).To(Equal(http.StatusCreated))
			Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+bindingID+".json"))
		})
	})

	Context("when the same binding is bound again", func() {
		BeforeEach(func() {
			h.serve()
			Expect(h.bind(bindingID, appGUID).status).To(Equal(http.StatusCreated))
		})

		It("answers 200 and changes nothing", func() {
			Expect(r.status).To(Equal(http.StatusOK), r.raw)
			Expect(h.files()).To(ConsistOf("active/"+appGUID+".json", "bindings/"+bindingID+".json"))
			Expect(h.operations("bind", "already-exists")).To(Equal(1.0))
		})

		Context("and its target file was lost", func() {
			BeforeEach(func() {
				Expect(os.Remove(filepath.Join(h.dir, "active", appGUID+".json"))).To(Succeed())
			})

			It("writes it again", func() {
				Expect(r.status).To(Equal(http.StatusOK))
				Expect(h.read("active/" + appGUID + ".json")).To(Equal(string(targets.Render(startedApp(), paasDomain))))
			})
		})
	})

	Context("when the binding id is already bound to another app", func() {
		BeforeEach(func() {
			h.serve()
			Expect(h.bind(bindingID, app2GUID).status).To(Equal(http.StatusCreated))
		})

		It("answers 409 and writes nothing for this app", func() {
			Expect(r.status).To(Equal(http.StatusConflict))
			Expect(h.files()).To(ConsistOf("inactive/"+app2GUID+".json", "bindings/"+bindingID+".json"))
			Expect(h.record(bindingID).AppGUID).To(Equal(app2GUID))
		})
	})

	Context("when the target updater adopted the binding while Cloud Controller was creating it", func() {
		BeforeEach(func() {
			body.(map[string]any)["parameters"] = map[string]any{"job": "tenant-value"}
			adopted, err := store.Binding{BindingGUID: bindingID, AppGUID: appGUID, PlanID: planID,
				CreatedAt: time.Now(), Source: store.SourceReconcile}.Marshal()
			Expect(err).NotTo(HaveOccurred())
			Expect(os.MkdirAll(filepath.Join(h.dir, "bindings"), 0o755)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(h.dir, "bindings", bindingID+".json"), adopted, 0o644)).To(Succeed())
		})

		It("answers 201 and completes the record", func() {
			Expect(r.status).To(Equal(http.StatusCreated), r.raw)
			record := h.record(bindingID)
			Expect(record.Source).To(Equal(store.SourceBroker))
			Expect(record.InstanceGUID).To(Equal(instanceID))
			Expect(string(record.Parameters)).To(MatchJSON(`{"job":"tenant-value"}`))
			Expect(h.files()).To(ContainElement("active/" + appGUID + ".json"))
		})
	})

	Context("when the target updater adopts the binding between our read and our write", func() {
		BeforeEach(func() {
			var once sync.Once
			h.st.before = func(op, key string) {
				if op == "PUT" && key == "bindings/"+bindingID+".json" {
					once.Do(func() {
						adopted, err := store.Binding{BindingGUID: bindingID, AppGUID: appGUID, PlanID: planID,
							CreatedAt: time.Now(), Source: store.SourceReconcile}.Marshal()
						Expect(err).NotTo(HaveOccurred())
						Expect(os.WriteFile(filepath.Join(h.dir, "bindings", bindingID+".json"), adopted, 0o644)).To(Succeed())
					})
				}
			}
			Expect(os.MkdirAll(filepath.Join(h.dir, "bindings"), 0o755)).To(Succeed())
		})

		It("completes the adopted record", func() {
			Expect(r.status).To(BeElementOf(http.StatusCreated, http.StatusOK), r.raw)
			Expect(h.record(bindingID).Source).To(Equal(store.SourceBroker))
			Expect(h.record(bindingID).InstanceGUID).To(Equal(instanceID))
		})
	})

	Context("when another broker instance records the binding between our read and our write", func() {
		var otherApp string

		BeforeEach(func() {
			otherApp = appGUID
			var once sync.Once
			h.st.before = func(op, key string) {
				if op == "PUT" && key == "bindings/"+bindingID+".json" {
					once.Do(func() {
						other, err := store.Binding{BindingGUID: bindingID, InstanceGUID: instanceID, AppGUID: otherApp,
							PlanID: planID, CreatedAt: time.Now(), Source: store.SourceBroker}.Marshal()
						Expect(err).NotTo(HaveOccurred())
						Expect(os.WriteFile(filepath.Join(h.dir, "bindings", bindingID+".json"), other, 0o644)).To(Succeed())
					})
				}
			}
			Expect(os.MkdirAll(filepath.Join(h.dir, "bindings"), 0o755)).To(Succeed())
		})

		It("answers 200 when that is the same binding", func() {
			Expect(r.status).To(Equal(http.StatusOK), r.raw)
			Expect(h.files()).To(ContainElement("active/" + appGUID + ".json"))
		})

		Context("for another app", func() {
			BeforeEach(func() { otherApp = app2GUID })

			It("answers 409 and writes no target file", func() {
				Expect(r.status).To(Equal(http.StatusConflict), r.raw)
				Expect(h.files()).To(ConsistOf("bindings/" + bindingID + ".json"))
			})
		})
	})

	Context("when it is a service key (no app)", func() {
		BeforeEach(func() {
			b := bindBody("")
			delete(b, "app_guid")
			b["bind_resource"] = map[string]any{"credential_client_id": "cc-client"}
			body = b
		})

		It("answers 422 with the RequiresApp error key and writes nothing", func() {
			Expect(r.status).To(Equal(http.StatusUnprocessableEntity))
			Expect(r.body).To(HaveKeyWithValue("error", "RequiresApp"))
			Expect(r.body).To(HaveKeyWithValue("description", ContainSubstring("service keys are not supported")))
			Expect(h.files()).To(BeEmpty())
			Expect(h.cf.callCount()).To(BeZero())
		})
	})

	Context("when the monitoring user cannot see the app", func() {
		BeforeEach(func() { body = bindBody(hiddenApp) })

		It("answers 422 telling the tenant the command that grants access, and writes nothing", func() {
			Expect(r.status).To(Equal(http.StatusUnprocessableEntity))
			Expect(r.body).To(HaveKeyWithValue("description",
				ContainSubstring("cf set-space-role "+monitoringUser+" <org> <space> SpaceAuditor")))
			Expect(h.files()).To(BeEmpty())
			Expect(h.operations("bind", "app-not-visible")).To(Equal(1.0))
		})
	})

	Context("when the target file cannot be written", func() {
		BeforeEach(func() {
			h.st.setFail(func(op, key string) bool { return op == "PUT" && strings.HasPrefix(key, "active/") })
		})

		It("answers 503, leaving only the record", func() {
			Expect(r.status).To(Equal(http.StatusServiceUnavailable))
			Expect(h.files()).To(ConsistOf("bindings/" + bindingID + ".json"))
			Expect(h.operations("bind", "store-unavailable")).To(Equal(1.0))
		})

		Context("and Cloud Controller then unbinds (orphan mitigation)", func() {
			JustBeforeEach(func() {
				h.st.setFail(nil)
				h.cf.setBinding(cfapi.Binding{GUID: bindingID, AppGUID: appGUID, Deleting: true})
				Expect(h.unbind(bindingID).status).To(Equal(http.StatusOK))
			})

			It("leaves no record and no target file", func() {
				Expect(h.files()).To(BeEmpty())
			})
		})
	})

	Context("when the old target file cannot be removed after the app changed state", func() {
		BeforeEach(func() {
			h.serve()
			Expect(h.bind(binding2ID, appGUID).status).To(Equal(http.StatusCreated))
			h.cf.setApp(startedAppIn("STOPPED"))
			h.st.setFail(func(op, key string) bool { return op == "DELETE" && strings.HasPrefix(key, "active/") })
		})

		It("answers 503, so that Cloud Controller cleans up", func() {
			Expect(r.status).To(Equal(http.StatusServiceUnavailable))
		})
	})
})

var _ = Describe("Bind when a dependency fails before the target file is written", func() {
	DescribeTable("answers an error Cloud Controller understands and writes nothing",
		func(arrange func(*harness), status int, outcome string) {
			h := newHarness()
			arrange(h)
			h.serve()
			Expect(h.bindWith(bindingID, bindBody(appGUID)).status).To(Equal(status))
			Expect(h.files()).To(BeEmpty())
			if outcome != "" {
				Expect(h.operations("bind", outcome)).To(Equal(1.0))
			}
		},
		Entry("the CF API unavailable", func(h *harness) { h.cf.err = cfapi.ErrUnavailable },
			http.StatusServiceUnavailable, "cf-unavailable"),
		Entry("the CF API failing in an unexpected way", func(h *harness) { h.cf.err = errStore },
			http.StatusInternalServerError, ""),
		Entry("the record unreadable", func(h *harness) {
			h.st.setFail(func(op, key string) bool { return op == "GET" && strings.HasPrefix(key, "bindings/") })
		}, http.StatusServiceUnavailable, ""),
		Entry("the record unwritable", func(h *harness) {
			h.st.setFail(func(op, key string) bool { return op == "PUT" && strings.HasPrefix(key, "bindings/") })
		}, http.StatusServiceUnavailable, ""),
	)
})

var _ = Describe("Bind requests Cloud Controller would never send", func() {
	var h *harness

	BeforeEach(func() {
		h = newHarness().serve()
	})

	DescribeTable("change nothing",
		func(path string, reqBody any, status int) {
			resp := h.do("PUT", path, reqBody)
			Expect(resp.status).To(Equal(status), resp.raw)
			Expect(h.files()).To(BeEmpty())
			Expect(h.cf.callCount()).To(BeZero())
		},
		Entry("an encoded path in the binding id", bindingPath("..%2Factive%2Fx"), bindBody(appGUID), http.StatusBadRequest),
		Entry("a dot-dot binding id", bindingPath(".."), bindBody(appGUID), http.StatusBadRequest),
		Entry("a dot binding id", bindingPath("."), bindBody(appGUID), http.StatusBadRequest),
		Entry("an empty path segment", "/v2/service_instances//service_bindings/"+bindingID, bindBody(appGUID), http.StatusBadRequest),
		Entry("a dot-dot segment inside the path", "/v2/service_instances/"+instanceID+"/../service_bindings/"+bindingID, bindBody(appGUID), http.StatusBadRequest),
		Entry("a binding id that is not a GUID", bindingPath("not-a-guid"), bindBody(appGUID), http.StatusBadRequest),
		Entry("a GUID with a trailing newline", bindingPath(bindingID+"%0A"), bindBody(appGUID), http.StatusBadRequest),
		Entry("an instance id that is not a GUID", "/v2/service_instances/x..y/service_bindings/"+bindingID, bindBody(appGUID), http.StatusBadRequest),
		Entry("an app guid that is a path", bindingPath(bindingID), bindBody("../../etc"), http.StatusBadRequest),
		Entry("an unknown service", bindingPath(bindingID), map[string]any{"service_id": unknownID, "plan_id": planID, "app_guid": appGUID}, http.StatusBadRequest),
		Entry("an unknown plan", bindingPath(bindingID), map[string]any{"service_id": serviceID, "plan_id": unknownID, "app_guid": appGUID}, http.StatusBadRequest),
		Entry("no service_id", bindingPath(bindingID), map[string]any{"plan_id": planID, "app_guid": appGUID}, http.StatusBadRequest),
		Entry("no plan_id", bindingPath(bindingID), map[string]any{"service_id": serviceID, "app_guid": appGUID}, http.StatusBadRequest),
		Entry("service_id of the wrong type", bindingPath(bindingID), []byte(`{"service_id":1,"plan_id":"`+planID+`","app_guid":"`+appGUID+`"}`), http.StatusUnprocessableEntity),
		Entry("bind_resource of the wrong type", bindingPath(bindingID), []byte(`{"service_id":"`+serviceID+`","plan_id":"`+planID+`","bind_resource":"`+appGUID+`"}`), http.StatusUnprocessableEntity),
		Entry("broken JSON", bindingPath(bindingID), []byte(`{"service_id":`), http.StatusUnprocessableEntity),
		Entry("no body", bindingPath(bindingID), nil, http.StatusUnprocessableEntity),
	)
})
