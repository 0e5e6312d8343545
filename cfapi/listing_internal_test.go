package cfapi

import (
	"encoding/json"
	"io"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("decodePage", func() {
	type named struct {
		GUID string `json:"guid"`
	}

	It("hands each resource over as soon as it has arrived", func() {
		body, w := io.Pipe()
		DeferCleanup(func() { _ = w.Close() })
		handed := make(chan string, 2)
		type result struct {
			page pageSummary
			err  error
		}
		done := make(chan result, 1)
		inc := newIncluded()
		go func() {
			page, err := decodePage(json.NewDecoder(body), func(r *named) { handed <- r.GUID }, inc)
			done <- result{page, err}
		}()

		_, err := io.WriteString(w, `{"pagination":{"total_results":2,"next":null},"resources":[{"guid":"a"},`)
		Expect(err).NotTo(HaveOccurred())
		Eventually(handed).Should(Receive(Equal("a")), "the first resource, before the rest of the page")

		_, err = io.WriteString(w, `{"guid":"b"}],"included":{"domains":[{"guid":"d","name":"apps.example.com"}]}}`)
		Expect(err).NotTo(HaveOccurred())
		Expect(w.Close()).To(Succeed())
		var r result
		Eventually(done).Should(Receive(&r))
		Expect(r.err).NotTo(HaveOccurred())
		Expect(handed).To(Receive(Equal("b")))
		Expect(r.page.resources).To(Equal(2))
		Expect(r.page.pagination.TotalResults).To(Equal(2))
		Expect(r.page.included).To(BeTrue())
		Expect(inc.domains).To(Equal(map[string]domain{"d": {name: "apps.example.com"}}))
	})
})
