package broker_test

import (
	"bytes"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/cfapi"
)

// sibling serves a second broker on h's store and CF API: another instance
// behind the same route, with locks of its own.
func (h *harness) sibling() *harness {
	s := *h
	s.logs, s.reg = &bytes.Buffer{}, prometheus.NewRegistry()
	return s.serve()
}

// forgetBinding removes a binding from the fake CF API, as Cloud Controller
// does once the broker has answered its unbind.
func (f *fakeCF) forgetBinding(guid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.bindings, guid)
}

var _ = Describe("Two broker instances on one route", func() {
	var (
		one, two *harness
		target   = "active/" + appGUID + ".json"
	)

	BeforeEach(func() {
		one = newHarness().serve()
		two = one.sibling()
		one.cf.setBinding(cfapi.Binding{GUID: bindingID, AppGUID: appGUID})
		Expect(one.bind(bindingID, appGUID).status).To(Equal(http.StatusCreated))
	})

	// unbindHeld unbinds bindingID through one, as Cloud Controller does,
	// and holds its removal of the target file: one has decided that it is
	// the app's last binding.
	unbindHeld := func() (*heldOp, chan response) {
		one.cf.setBinding(cfapi.Binding{GUID: bindingID, AppGUID: appGUID, Deleting: true})
		removal := one.st.hold("DELETE", target)
		unbinds := make(chan response, 1)
		go func() {
			defer GinkgoRecover()
			unbinds <- one.unbind(bindingID)
		}()
		<-removal.entered
		return removal, unbinds
	}

	It("an unbind of an app's last binding on one, racing a bind of the app on the other, leaves the target file", func() {
		removal, unbinds := unbindHeld()
		// Cloud Controller creates the new binding and binds through two,
		// which writes the target file the held removal is about to take.
		two.cf.setBinding(cfapi.Binding{GUID: binding2ID, AppGUID: appGUID})
		Expect(two.bind(binding2ID, appGUID).status).To(Equal(http.StatusCreated))
		removal.release()
		Expect((<-unbinds).status).To(Equal(http.StatusOK))
		one.cf.forgetBinding(bindingID)

		Expect(one.files()).To(ConsistOf("bindings/"+binding2ID+".json", target))
		Expect(one.read(target)).To(ContainSubstring(appGUID + ":1"))
	})

	It("writes the target file again with the settings of the binding that remains", func() {
		removal, unbinds := unbindHeld()
		two.cf.setBinding(cfapi.Binding{GUID: binding2ID, AppGUID: appGUID})
		body := bindBody(appGUID)
		body["parameters"] = map[string]any{"path": "/admin/metrics"}
		Expect(two.bindWith(binding2ID, body).status).To(Equal(http.StatusCreated))
		removal.release()
		Expect((<-unbinds).status).To(Equal(http.StatusOK))
		one.cf.forgetBinding(bindingID)

		Expect(one.read(target)).To(ContainSubstring(`"__metrics_path__": "/admin/metrics"`))
	})

	It("a target file written again for a binding that goes meanwhile is removed again", func() {
		removal, unbinds := unbindHeld()
		two.cf.setBinding(cfapi.Binding{GUID: binding2ID, AppGUID: appGUID})
		Expect(two.bind(binding2ID, appGUID).status).To(Equal(http.StatusCreated))
		// one removes the file, sees binding2 and writes the file again;
		// hold that write until binding2 is gone too, unbound through two.
		rewrite := one.st.hold("PUT", target)
		removal.release()
		Eventually(rewrite.entered, "5s").Should(BeClosed(), "one writes the target file again")
		two.cf.setBinding(cfapi.Binding{GUID: binding2ID, AppGUID: appGUID, Deleting: true})
		Expect(two.unbind(binding2ID).status).To(Equal(http.StatusOK))
		two.cf.forgetBinding(binding2ID)
		rewrite.release()
		Expect((<-unbinds).status).To(Equal(http.StatusOK))

		Expect(one.files()).To(BeEmpty())
	})
})
