package scrape_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/scrape"
)

const appGUID = "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b"

var _ = Describe("GUIDs", func() {
	DescribeTable("ValidGUID",
		func(s string, valid bool) {
			Expect(scrape.ValidGUID(s)).To(Equal(valid))
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
})
