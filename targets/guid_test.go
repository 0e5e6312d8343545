package targets_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("keys", func() {
	It("builds target keys by state and parses them back", func() {
		active, err := targets.TargetKey(appGUID, true)
		Expect(err).NotTo(HaveOccurred())
		Expect(active).To(Equal("active/" + appGUID + ".json"))
		inactive, err := targets.TargetKey(appGUID, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(inactive).To(Equal("inactive/" + appGUID + ".json"))
		prefix, guid, err := targets.ParseKey(inactive)
		Expect(err).NotTo(HaveOccurred())
		Expect(prefix).To(Equal(targets.InactivePrefix))
		Expect(guid).To(Equal(appGUID))
	})

	It("refuses to build a key from anything but a GUID", func() {
		_, err := targets.TargetKey("../../etc/passwd", true)
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
		_, err = targets.BindingKey("x")
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
	})

	DescribeTable("ParseKey refuses other shapes",
		func(key string) {
			_, _, err := targets.ParseKey(key)
			Expect(err).To(MatchError(targets.ErrInvalidKey))
		},
		Entry("empty", ""),
		Entry("unknown prefix", "other/"+appGUID+".json"),
		Entry("no suffix", "active/"+appGUID),
		Entry("traversal", "active/../"+appGUID+".json"),
		Entry("nested", "bindings/x/"+appGUID+".json"),
	)

	It("round-trips a binding record and validates it", func() {
		b := targets.Binding{BindingGUID: appGUID, AppGUID: appGUID, PlanID: "plan"}
		data, err := b.Marshal()
		Expect(err).NotTo(HaveOccurred())
		back, err := targets.UnmarshalBinding(data)
		Expect(err).NotTo(HaveOccurred())
		Expect(back).To(Equal(b))
		_, err = targets.UnmarshalBinding([]byte(`{"binding_guid":"../x","app_guid":"` + appGUID + `"}`))
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
	})
})
