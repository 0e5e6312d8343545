package cfapi_test

import (
	"errors"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
)

var _ = Describe("Binding", func() {
	f := useFakeCF()

	It("looks a binding up with its app and plan", func() {
		b, err := f.cf.Binding(f.ctx, fakecf.GUID("binding", 3))
		Expect(err).NotTo(HaveOccurred())
		Expect(b.GUID).To(Equal(fakecf.GUID("binding", 3)))
		Expect(b.AppGUID).To(Equal(fakecf.GUID("app", 3)))
		Expect(b.PlanGUID).To(Equal(f.pop.Plan.GUID))
		Expect(b.CreatedAt).To(Equal(f.pop.Bindings[3].CreatedAt))
		Expect(b.Deleting).To(BeFalse())
	})

	DescribeTable("Deleting is set only while Cloud Controller unbinds",
		func(op fakecf.LastOperation, deleting bool) {
			guid := fakecf.GUID("binding", 3)
			Expect(f.server.SetBindingLastOperation(guid, op)).To(Succeed())
			b, err := f.cf.Binding(f.ctx, guid)
			Expect(err).NotTo(HaveOccurred())
			Expect(b.Deleting).To(Equal(deleting))
		},
		Entry("delete in progress", fakecf.LastOperation{Type: fakecf.OpDelete, State: fakecf.OpInProgress}, true),
		Entry("delete failed", fakecf.LastOperation{Type: fakecf.OpDelete, State: fakecf.OpFailed}, false),
		Entry("create in progress", fakecf.LastOperation{Type: fakecf.OpCreate, State: fakecf.OpInProgress}, false),
		Entry("create succeeded", fakecf.LastOperation{Type: fakecf.OpCreate, State: fakecf.OpSucceeded}, false),
	)

	It("answers ErrBindingNotFound for an unknown binding", func() {
		_, err := f.cf.Binding(f.ctx, fakecf.GUID("binding", 999))
		Expect(err).To(MatchError(cfapi.ErrBindingNotFound))
	})

	It("answers ErrCFUnavailable when CF fails", func() {
		f.server.InjectFault(fakecf.Fault{Path: "/v3/service_credential_bindings/", Status: http.StatusBadGateway})
		_, err := f.cf.Binding(f.ctx, fakecf.GUID("binding", 3))
		Expect(err).To(MatchError(cfapi.ErrUnavailable))
		Expect(errors.Is(err, cfapi.ErrBindingNotFound)).To(BeFalse())
	})
})

var _ = Describe("AppBindings and PlanBindings", func() {
	f := useFakeCF()

	JustBeforeEach(func() {
		otherPlan := f.server.AddServicePlan(fakecf.ServicePlan{Name: "other", BrokerCatalogID: "other-plan"})
		_, err := f.server.AddBinding(fakecf.Binding{AppGUID: fakecf.GUID("app", 1), PlanGUID: otherPlan.GUID})
		Expect(err).NotTo(HaveOccurred())
		_, err = f.server.AddBinding(fakecf.Binding{Type: fakecf.KeyBinding, PlanGUID: f.pop.Plan.GUID, SpaceGUID: f.pop.Spaces[0].GUID})
		Expect(err).NotTo(HaveOccurred())
		_, err = f.server.AddBinding(fakecf.Binding{GUID: fakecf.GUID("second-binding", 1), AppGUID: fakecf.GUID("app", 1), PlanGUID: f.pop.Plan.GUID,
			ServiceInstanceGUID: fakecf.GUID("instance", 2)})
		Expect(err).NotTo(HaveOccurred())
	})

	It("lists the app bindings of our plan for one app, oldest first", func() {
		bindings, err := f.cf.AppBindings(f.ctx, fakecf.GUID("app", 1))
		Expect(err).NotTo(HaveOccurred())
		Expect(bindings).To(HaveLen(2))
		Expect(bindings[0].GUID).To(Equal(fakecf.GUID("binding", 1)))
		Expect(bindings[1].GUID).To(Equal(fakecf.GUID("second-binding", 1)))
		for _, b := range bindings {
			Expect(b.AppGUID).To(Equal(fakecf.GUID("app", 1)))
			Expect(b.PlanGUID).To(Equal(f.pop.Plan.GUID))
		}
	})

	It("lists every app binding of our plan, and no keys or other plans", func() {
		bindings, err := f.cf.PlanBindings(f.ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(bindings).To(HaveLen(f.fleet.Bound + 1))
		for _, b := range bindings {
			Expect(b.PlanGUID).To(Equal(f.pop.Plan.GUID))
			Expect(b.AppGUID).NotTo(BeEmpty())
		}
	})

	It("looks the plan guids up once", func() {
		_, err := f.cf.PlanBindings(f.ctx)
		Expect(err).NotTo(HaveOccurred())
		_, err = f.cf.AppBindings(f.ctx, fakecf.GUID("app", 2))
		Expect(err).NotTo(HaveOccurred())
		Expect(f.server.RequestsTo("/v3/service_plans")).To(Equal(1))
		Expect(f.server.RequestLog()).To(ContainElement(ContainSubstring("per_page=5000")))
	})

	It("leaves out bindings CF does not show", func() {
		f.server.RestrictToSpaces(f.pop.Spaces[0].GUID)
		bindings, err := f.cf.PlanBindings(f.ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(bindings).To(HaveLen(5), "apps 0, 4, 8, 12 and 16")
	})

	Context("when our plan is not visible", func() {
		BeforeEach(func() {
			f.cfg.PlanID = "no-such-plan"
		})

		It("fails instead of answering an empty list", func() {
			bindings, err := f.cf.PlanBindings(f.ctx)
			Expect(err).To(MatchError(cfapi.ErrUnavailable))
			Expect(bindings).To(BeNil())
		})
	})
})
