package targets_test

import (
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/model"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("ParametersSchema", func() {
	var schema map[string]any

	BeforeEach(func() {
		schema = targets.ParametersSchema()
	})

	It("is a draft-04 schema of an object, as Cloud Controller accepts in a catalog", func() {
		Expect(schema).To(HaveKeyWithValue("$schema", "http://json-schema.org/draft-04/schema#"))
		Expect(schema).To(HaveKeyWithValue("type", "object"))
		c := jsonschema.NewCompiler()
		Expect(c.AddResource("catalog.json", schema)).To(Succeed())
		Expect(c.Compile("catalog.json")).Error().NotTo(HaveOccurred())
	})

	It("is under Cloud Controller's 64 KB limit and has no references", func() {
		data, err := json.Marshal(schema)
		Expect(err).NotTo(HaveOccurred())
		Expect(len(data)).To(BeNumerically("<", 64*1024))
		Expect(string(data)).NotTo(ContainSubstring(`"$ref"`))
	})

	It("declares exactly the parameters the code reads", func() {
		Expect(schema["properties"]).To(HaveLen(6))
		for _, name := range []string{targets.ParamPath, targets.ParamPort, targets.ParamScrapeInterval,
			targets.ParamScrapeTimeout, targets.ParamJob, targets.ParamLabels} {
			Expect(schema["properties"]).To(HaveKey(name))
		}
	})

	It("states the duration bounds the code checks", func() {
		properties := schema["properties"].(map[string]any)
		interval := properties[targets.ParamScrapeInterval].(map[string]any)["description"]
		timeout := properties[targets.ParamScrapeTimeout].(map[string]any)["description"]
		Expect(interval).To(ContainSubstring("from %s to %s", model.Duration(targets.MinScrapeInterval), model.Duration(targets.MaxScrapeInterval)))
		Expect(timeout).To(ContainSubstring("from %s to %s", model.Duration(targets.MinScrapeTimeout), model.Duration(targets.MaxScrapeInterval)))
	})

	It("is a copy the caller may change", func() {
		schema["type"] = "array"
		Expect(targets.ParametersSchema()).To(HaveKeyWithValue("type", "object"))
	})
})
