package httpsd

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("snapshot", func() {
	var s *snapshot

	BeforeEach(func() {
		files := map[string]file{}
		for i := range 4 {
			body := fmt.Sprintf(`[{"targets":["app-%d.example.com"],"labels":{"org":"org-%d","space":"space"}}]`, i, i%2)
			groups, err := parseTargetFile([]byte(body))
			Expect(err).NotTo(HaveOccurred())
			files[fmt.Sprintf("active/%d.json", i)] = file{groups: groups}
		}
		s = newSnapshot(files)
	})

	It("keeps a filtered answer once made", func() {
		a := s.answer(filters{org: "org-1"})
		Expect(s.answer(filters{org: "org-1"})).To(BeIdenticalTo(a))
		Expect(string(a.body)).To(Equal(`[{"targets":["app-1.example.com"],"labels":{"org":"org-1","space":"space"}},` +
			`{"targets":["app-3.example.com"],"labels":{"org":"org-1","space":"space"}}]` + "\n"))
		Expect(s.cached).To(Equal(len(a.body) + len(a.gzipped)))
	})

	It("still answers, without keeping the answer, once the cache is full", func() {
		s.cached = s.cacheBudget()
		a := s.answer(filters{org: "org-1"})
		Expect(a.body).To(ContainSubstring("app-3.example.com"))
		Expect(a.body).NotTo(ContainSubstring("app-2.example.com"))
		Expect(s.filtered).To(BeEmpty())
		Expect(s.answer(filters{org: "org-1"})).NotTo(BeIdenticalTo(a))
	})
})
