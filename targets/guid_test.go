package targets_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("keys", func() {
	DescribeTable("ValidGUID",
		func(s string, valid bool) {
			Expect(targets.ValidGUID(s)).To(Equal(valid))
		},
		Entry("lower case", appGUID, true),
		Entry("upper case", "6B5F1A2E-0C3D-4E5F-8A9B-0C1D2E3F4A5B", true),
		Entry("empty", "", false),
		Entry("traversal", "../active/x", false),
		Entry("encoded traversal", "..%2Factive%2Fx", false),
		Entry("trailing newline", appGUID+"\n", false),
		Entry("too short", "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5", false),
		Entry("not hex", "zb5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b", false),
		Entry("not hex at the end", "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5g", false),
		Entry("a dash moved", "6b5f1a2e0-c3d-4e5f-8a9b-0c1d2e3f4a5b", false),
		Entry("no dashes", "6b5f1a2e00c3d04e5f08a9b00c1d2e3f4a5b", false),
		Entry("36 bytes of non-ASCII", "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4\u00e9b", false),
	)

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
		Expect(err).To(MatchError(targets.ErrInvalidGUID))
		_, err = targets.BindingKey("x")
		Expect(err).To(MatchError(targets.ErrInvalidGUID))
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
		Expect(err).To(MatchError(targets.ErrInvalidGUID))
	})
})
