package broker_test

import (
	"context"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/broker"
)

var _ = Describe("Catalog", func() {
	var (
		h       *harness
		r       response
		service map[string]any
	)

	BeforeEach(func() {
		h = newHarness().serve()
	})

	JustBeforeEach(func() {
		r = h.do("GET", "/v2/catalog", nil)
		Expect(r.status).To(Equal(http.StatusOK), r.raw)
		services, ok := r.body["services"].([]any)
		Expect(ok).To(BeTrue(), r.raw)
		Expect(services).To(HaveLen(1))
		service = services[0].(map[string]any)
	})

	It("offers one bindable service from the configuration", func() {
		Expect(service).To(HaveKeyWithValue("id", serviceID))
		Expect(service).To(HaveKeyWithValue("name", "gds-prometheus"))
		Expect(service).To(HaveKeyWithValue("description", Not(BeEmpty())))
		Expect(service).To(HaveKeyWithValue("bindable", true))
	})

	It("says plans cannot be changed and instances and bindings cannot be fetched", func() {
		Expect(service).To(HaveKeyWithValue("plan_updateable", false))
		Expect(service).NotTo(HaveKeyWithValue("instances_retrievable", true))
		Expect(service).NotTo(HaveKeyWithValue("bindings_retrievable", true))
	})

	It("links the documentation and names the monitoring user tenants must grant access to", func() {
		metadata := service["metadata"].(map[string]any)
		Expect(metadata).To(HaveKeyWithValue("documentationUrl", broker.DefaultDocumentationURL))
		Expect(metadata).To(HaveKeyWithValue("longDescription", ContainSubstring(monitoringUser+" the SpaceAuditor role")))
		Expect(metadata).To(HaveKeyWithValue("longDescription", ContainSubstring("cf set-space-role "+monitoringUser+" <org> <space> SpaceAuditor.")))
	})

	It("names the --client form of the command when the monitoring identity is a UAA client", func() {
		b := broker.New(broker.Options{
			Catalog:        broker.Catalog{ServiceID: serviceID, ServiceName: "s", PlanID: planID, PlanName: "p"},
			MonitoringUser: "monitor-client", MonitoringClient: true,
		})
		services, err := b.Services(context.Background())
		Expect(err).NotTo(HaveOccurred())
		Expect(services[0].Metadata.LongDescription).To(ContainSubstring("cf set-space-role monitor-client <org> <space> SpaceAuditor --client."))
	})

	It("offers one free plan", func() {
		plans := service["plans"].([]any)
		Expect(plans).To(HaveLen(1))
		plan := plans[0].(map[string]any)
		Expect(plan).To(HaveKeyWithValue("id", planID))
		Expect(plan).To(HaveKeyWithValue("name", "prometheus"))
		Expect(plan).To(HaveKeyWithValue("free", true))
	})
})
