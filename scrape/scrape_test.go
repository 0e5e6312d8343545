package scrape_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/scrape"
)

var _ = Describe("The scrape contract", func() {
	const guid = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
	params := scrape.Params{AppGUID: guid, Index: 2}

	It("turns the labels of a target group into the query Prometheus sends, and back", func() {
		query := url.Values{}
		for name, value := range params.Labels() {
			x, ok := strings.CutPrefix(name, "__param_")
			Expect(ok).To(BeTrue(), name)
			query.Set(x, value)
		}
		Expect(query).To(Equal(params.Query()))
		Expect(query.Encode()).To(Equal("cf_app_guid=" + guid + "&cf_app_instance=" + guid + "%3A2&cf_app_instance_index=2"))

		parsed, err := url.ParseQuery(query.Encode())
		Expect(err).NotTo(HaveOccurred())
		got, ok, err := scrape.Parse(parsed)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeTrue())
		Expect(got).To(Equal(params))
	})

	It("sets the router's and the app's headers, replacing any already there", func() {
		h := http.Header{"Authorization": {"Bearer other"}, "X-Cf-App-Instance": {"other:0", "other:1"}}
		params.SetHeaders(h)
		Expect(h.Values("X-CF-APP-INSTANCE")).To(Equal([]string{guid + ":2"}))
		Expect(h.Values("XX-CF-APP-INSTANCE")).To(Equal([]string{guid + ":2"}))
		Expect(h.Values("Authorization")).To(Equal([]string{"Bearer " + guid}))
	})

	It("appends the same headers in HTTP/1.1 form", func() {
		b := params.AppendHeader([]byte("GET / HTTP/1.1\r\nHost: x\r\n"))
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(append(b, "\r\n"...))))
		Expect(err).NotTo(HaveOccurred())
		want := http.Header{}
		params.SetHeaders(want)
		Expect(r.Header).To(Equal(want))
	})

	It("strips only the scrape parameters", func() {
		q := params.Query()
		q.Set("format", "prometheus")
		scrape.Strip(q)
		Expect(q).To(Equal(url.Values{"format": {"prometheus"}}))
	})

	DescribeTable("ParseScrapeParams",
		func(query string, want scrape.Params, wantOK bool, problem string) {
			q, err := url.ParseQuery(query)
			Expect(err).NotTo(HaveOccurred())
			got, ok, err := scrape.Parse(q)
			if problem != "" {
				Expect(err).To(MatchError(ContainSubstring(problem)))
				Expect(err.Error()).NotTo(ContainSubstring(guid[:8]), "the guid is a bearer token")
				Expect(ok).To(BeFalse())
				return
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(ok).To(Equal(wantOK))
			Expect(got).To(Equal(want))
		},
		Entry("all three", "cf_app_guid="+guid+"&cf_app_instance="+guid+"%3A0&cf_app_instance_index=0", scrape.Params{AppGUID: guid}, true, ""),
		Entry("the instance alone", "cf_app_instance="+guid+"%3A12", scrape.Params{AppGUID: guid, Index: 12}, true, ""),
		Entry("guid and index", "cf_app_guid="+guid+"&cf_app_instance_index=3", scrape.Params{AppGUID: guid, Index: 3}, true, ""),
		Entry("none: nothing to set", "format=x", scrape.Params{}, false, ""),
		Entry("guid alone", "cf_app_guid="+guid, nil, false, "cf_app_instance_index is missing"),
		Entry("a guid one character too long", "cf_app_guid="+guid+"0&cf_app_instance_index=0", nil, false, "not a valid GUID"),
		Entry("index alone", "cf_app_instance_index=0", nil, false, "cf_app_guid is missing"),
		Entry("instance without index", "cf_app_instance="+guid, nil, false, "<app_guid>:<index>"),
		Entry("not a GUID", "cf_app_guid=../../etc&cf_app_instance_index=0", nil, false, "not a valid GUID"),
		Entry("empty guid", "cf_app_guid=&cf_app_instance_index=0", nil, false, "not a valid GUID"),
		Entry("negative index", "cf_app_guid="+guid+"&cf_app_instance_index=-1", nil, false, "not an instance index"),
		Entry("index with a sign", "cf_app_guid="+guid+"&cf_app_instance_index=%2B1", nil, false, "not an instance index"),
		Entry("index with a leading zero", "cf_app_guid="+guid+"&cf_app_instance_index=01", nil, false, "not an instance index"),
		Entry("index too large", "cf_app_guid="+guid+"&cf_app_instance_index=1000001", nil, false, "not an instance index"),
		Entry("index too long", "cf_app_guid="+guid+"&cf_app_instance_index=00000000", nil, false, "not an instance index"),
		Entry("CR LF in the instance", "cf_app_instance="+guid+"%3A0%0d%0aX:1", nil, false, "not an instance index"),
		Entry("CR LF in the guid", "cf_app_guid="+guid+"%0d%0a&cf_app_instance_index=0", nil, false, "not a valid GUID"),
		Entry("two colons", "cf_app_instance="+guid+"%3A0%3A1", nil, false, "not an instance index"),
		Entry("different apps", "cf_app_guid=0f0e0d0c-0b0a-4090-8070-605040302010&cf_app_instance="+guid+"%3A0", nil, false, "different apps"),
		Entry("different instances", "cf_app_instance="+guid+"%3A1&cf_app_instance_index=0", nil, false, "different instances"),
		Entry("repeated", "cf_app_guid="+guid+"&cf_app_guid="+guid+"&cf_app_instance_index=0", nil, false, "repeated"),
	)
})
