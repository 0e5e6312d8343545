package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/alphagov/cf-app-discovery/broker"
	"github.com/alphagov/cf-app-discovery/targets"
)

// roundTrip is v as a JSON client reads it.
func roundTrip(v any) map[string]any {
	data, err := json.Marshal(v)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	var out map[string]any
	ExpectWithOffset(1, json.Unmarshal(data, &out)).To(Succeed())
	return out
}

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

	It("says plans cannot be changed, and instances and bindings can be fetched", func() {
		Expect(service).To(HaveKeyWithValue("plan_updateable", false))
		Expect(service).To(HaveKeyWithValue("instances_retrievable", true))
		Expect(service).To(HaveKeyWithValue("bindings_retrievable", true))
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

	Describe("the plan's bind parameters", func() {
		var served map[string]any

		JustBeforeEach(func() {
			plan := service["plans"].([]any)[0].(map[string]any)
			Expect(plan).To(HaveKey("schemas"), r.raw)
			create := plan["schemas"].(map[string]any)["service_binding"].(map[string]any)["create"].(map[string]any)
			served = create["parameters"].(map[string]any)
		})

		It("are the schema bind validates with", func() {
			Expect(served).To(Equal(roundTrip(targets.ParametersSchema())))
			Expect(served).To(HaveKeyWithValue("$schema", "http://json-schema.org/draft-04/schema#"))
		})

		// The served schema refuses nothing bind accepts, and bind refuses
		// beyond it only what a schema cannot say: the duration bounds and
		// the timeout over the interval.
		DescribeTable("agree with bind's validation",
			func(params string, schemaAccepts, bindAccepts bool) {
				c := jsonschema.NewCompiler()
				Expect(c.AddResource("catalog.json", served)).To(Succeed())
				schema, err := c.Compile("catalog.json")
				Expect(err).NotTo(HaveOccurred())
				doc, err := jsonschema.UnmarshalJSON(strings.NewReader(params))
				Expect(err).NotTo(HaveOccurred())
				Expect(schema.Validate(doc) == nil).To(Equal(schemaAccepts), "the served schema")
				_, err = targets.ParseParameters(json.RawMessage(params))
				Expect(err == nil).To(Equal(bindAccepts), "bind's validation")
			},
			Entry("every parameter", `{"path":"/m","port":9090,"scrape_interval":"30s","scrape_timeout":"10s","job":"j","labels":{"team":"t"}}`, true, true),
			Entry("none", `{}`, true, true),
			Entry("an unknown key", `{"paht":"/m"}`, false, false),
			Entry("a relative path", `{"path":"m"}`, false, false),
			Entry("a port out of range", `{"port":0}`, false, false),
			Entry("a port as a string", `{"port":"9090"}`, false, false),
			Entry("a duration in Go's form", `{"scrape_interval":"1.5m"}`, false, false),
			Entry("a reserved label", `{"labels":{"instance":"x"}}`, false, false),
			Entry("a label starting __", `{"labels":{"__x":"x"}}`, false, false),
			Entry("11 labels", `{"labels":{"a":"","b":"","c":"","d":"","e":"","f":"","g":"","h":"","i":"","j":"","k":""}}`, false, false),
			Entry("an interval under the bound: code only", `{"scrape_interval":"1s"}`, true, false),
			Entry("a timeout over the bound: code only", `{"scrape_timeout":"3m"}`, true, false),
			Entry("a timeout over the interval: code only", `{"scrape_interval":"20s","scrape_timeout":"30s"}`, true, false),
		)
	})

	It("says create-service takes no parameters", func() {
		plan := service["plans"].([]any)[0].(map[string]any)
		create := plan["schemas"].(map[string]any)["service_instance"].(map[string]any)["create"].(map[string]any)
		Expect(create["parameters"]).To(HaveKeyWithValue("$schema", "http://json-schema.org/draft-04/schema#"))
		Expect(create["parameters"]).To(HaveKeyWithValue("type", "object"))
		Expect(create["parameters"]).To(HaveKeyWithValue("additionalProperties", false))
	})

	// OSB: each "parameters" under a plan's schemas is a JSON Schema;
	// Cloud Controller shows them in `cf marketplace -e`.
	DescribeTable("every schema the plan declares is a JSON Schema object",
		func(resource, action string) {
			plan := service["plans"].([]any)[0].(map[string]any)
			schemas, ok := plan["schemas"].(map[string]any)[resource].(map[string]any)
			Expect(ok).To(BeTrue(), r.raw)
			Expect(schemas).To(HaveKey(action), r.raw)
			parameters, ok := schemas[action].(map[string]any)["parameters"].(map[string]any)
			Expect(ok).To(BeTrue(), "%s.%s.parameters is not an object: %s", resource, action, r.raw)
			c := jsonschema.NewCompiler()
			Expect(c.AddResource("parameters.json", parameters)).To(Succeed())
			_, err := c.Compile("parameters.json")
			Expect(err).NotTo(HaveOccurred())
		},
		Entry(nil, "service_instance", "create"),
		Entry(nil, "service_instance", "update"),
		Entry(nil, "service_binding", "create"),
	)

	It("offers one free plan", func() {
		plans := service["plans"].([]any)
		Expect(plans).To(HaveLen(1))
		plan := plans[0].(map[string]any)
		Expect(plan).To(HaveKeyWithValue("id", planID))
		Expect(plan).To(HaveKeyWithValue("name", "prometheus"))
		Expect(plan).To(HaveKeyWithValue("free", true))
	})
})
