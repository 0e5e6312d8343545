package store_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/store"
)

const appGUID = "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b"

var _ = Describe("keys", func() {
	It("builds target keys by state and parses them back", func() {
		active, err := store.TargetKey(appGUID, true)
		Expect(err).NotTo(HaveOccurred())
		Expect(active).To(Equal("active/" + appGUID + ".json"))
		inactive, err := store.TargetKey(appGUID, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(inactive).To(Equal("inactive/" + appGUID + ".json"))
		prefix, guid, err := store.ParseKey(inactive)
		Expect(err).NotTo(HaveOccurred())
		Expect(prefix).To(Equal(store.InactivePrefix))
		Expect(guid).To(Equal(appGUID))
	})

	It("refuses to build a key from anything but a GUID", func() {
		_, err := store.TargetKey("../../etc/passwd", true)
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
		_, err = store.BindingKey("x")
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
		_, err = store.InstanceKey("x")
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
	})

	It("builds instance keys and parses them back", func() {
		key, err := store.InstanceKey(appGUID)
		Expect(err).NotTo(HaveOccurred())
		Expect(key).To(Equal("instances/" + appGUID + ".json"))
		prefix, guid, err := store.ParseKey(key)
		Expect(err).NotTo(HaveOccurred())
		Expect(prefix).To(Equal(store.InstancePrefix))
		Expect(guid).To(Equal(appGUID))
		Expect(store.ValidPrefix(store.InstancePrefix)).To(BeTrue())
	})

	DescribeTable("ParseKey refuses other shapes",
		func(key string) {
			_, _, err := store.ParseKey(key)
			Expect(err).To(MatchError(store.ErrInvalidKey))
		},
		Entry("empty", ""),
		Entry("unknown prefix", "other/"+appGUID+".json"),
		Entry("no suffix", "active/"+appGUID),
		Entry("traversal", "active/../"+appGUID+".json"),
		Entry("nested", "bindings/x/"+appGUID+".json"),
	)

	It("round-trips a binding record and validates it", func() {
		b := store.Binding{BindingGUID: appGUID, AppGUID: appGUID, PlanID: "plan"}
		data, err := b.Marshal()
		Expect(err).NotTo(HaveOccurred())
		back, err := store.UnmarshalBinding(data)
		Expect(err).NotTo(HaveOccurred())
		Expect(back).To(Equal(b))
		_, err = store.UnmarshalBinding([]byte(`{"binding_guid":"../x","app_guid":"` + appGUID + `"}`))
		Expect(err).To(MatchError(scrape.ErrInvalidGUID))
	})
})
