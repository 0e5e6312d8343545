package scrape_test

import (
	"net/http"
	"net/url"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/scrape"
)

var _ = Describe("The scrape contract", func() {
	const (
		guid    = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
		process = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
	)
	params := scrape.Params{AppGUID: guid, Index: 2}
	processParams := scrape.Params{AppGUID: guid, Index: 2, ProcessGUID: process}

	// queryFromLabels builds the query Prometheus sends for a target
	// group's `__param_*` labels.
	queryFromLabels := func(labels map[string]string) url.Values {
		query := url.Values{}
		for name, value := range labels {
			x, ok := strings.CutPrefix(name, "__param_")
			Expect(ok).To(BeTrue(), name)
			query.Set(x, value)
		}
		return query
	}

	DescribeTable("turns the labels of a target group into the query Prometheus sends, and back",
		func(p scrape.Params, encoded string) {
			query := queryFromLabels(p.Labels())
			Expect(query).To(Equal(p.Query()))
			Expect(query.Encode()).To(Equal(encoded))

			parsed, err := url.ParseQuery(query.Encode())
			Expect(err).NotTo(HaveOccurred())
			got, ok, err := scrape.Parse(parsed)
			Expect(err).NotTo(HaveOccurred())
			Expect(ok).To(BeTrue())
			Expect(got).To(Equal(p))
		},
		Entry("an app instance", params,
			"cf_app_guid="+guid+"&cf_app_instance="+guid+"%3A2&cf_app_instance_index=2"),
		Entry("a process instance", processParams,
			"cf_app_guid="+guid+"&cf_app_instance="+guid+"%3A2&cf_app_instance_index=2&cf_process_instance="+process+"%3A2"),
	)

	DescribeTable("the headers the router and the app need",
		func(p scrape.Params, want [3]scrape.Header) {
			Expect(p.Headers()).To(Equal(want))
		},
		Entry("an app instance: X-CF-APP-INSTANCE", params, [3]scrape.Header{
			{Name: "X-CF-APP-INSTANCE", Value: guid + ":2"},
			{Name: "XX-CF-APP-INSTANCE", Value: guid + ":2"},
			{Name: "Authorization", Value: "Bearer " + guid},
		}),
		Entry("a process instance: X-CF-PROCESS-INSTANCE instead, the router reading it only without the app header", processParams, [3]scrape.Header{
			{Name: "X-CF-PROCESS-INSTANCE", Value: process + ":2"},
			{Name: "XX-CF-PROCESS-INSTANCE", Value: process + ":2"},
			{Name: "Authorization", Value: "Bearer " + guid},
		}),
	)

	It("sets the same headers on an http.Header, replacing any already there", func() {
		h := http.Header{"Authorization": {"Bearer other"}, "X-Cf-App-Instance": {"other:0", "other:1"}}
		params.SetHeaders(h)
		Expect(h.Values("X-CF-APP-INSTANCE")).To(Equal([]string{guid + ":2"}))
		Expect(h.Values("XX-CF-APP-INSTANCE")).To(Equal([]string{guid + ":2"}))
		Expect(h.Values("Authorization")).To(Equal([]string{"Bearer " + guid}))
	})

	It("strips only the scrape parameters", func() {
		q := processParams.Query()
		q.Set("format", "prometheus")
		scrape.Strip(q)
		Expect(q).To(Equal(url.Values{"format": {"prometheus"}}))
	})

	DescribeTable("Parse",
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
		Entry("all four", "cf_app_guid="+guid+"&cf_app_instance="+guid+"%3A1&cf_app_instance_index=1&cf_process_instance="+process+"%3A1", scrape.Params{AppGUID: guid, Index: 1, ProcessGUID: process}, true, ""),
		Entry("the guid and the process instance", "cf_app_guid="+guid+"&cf_process_instance="+process+"%3A4", scrape.Params{AppGUID: guid, Index: 4, ProcessGUID: process}, true, ""),
		Entry("none: nothing to set", "format=x", scrape.Params{}, false, ""),
		Entry("guid alone", "cf_app_guid="+guid, nil, false, "cf_app_instance_index is missing"),
		Entry("a guid one character too long", "cf_app_guid="+guid+"0&cf_app_instance_index=0", nil, false, "not a valid GUID"),
		Entry("index alone", "cf_app_instance_index=0", nil, false, "cf_app_guid is missing"),
		Entry("the process instance alone: no bearer token", "cf_process_instance="+process+"%3A0", nil, false, "cf_app_guid is missing"),
		Entry("instance without index", "cf_app_instance="+guid, nil, false, "<app_guid>:<index>"),
		Entry("process instance without index", "cf_app_guid="+guid+"&cf_process_instance="+process, nil, false, "<process_guid>:<index>"),
		Entry("not a GUID", "cf_app_guid=../../etc&cf_app_instance_index=0", nil, false, "not a valid GUID"),
		Entry("a process that is not a GUID", "cf_app_guid="+guid+"&cf_process_instance=..%2F..%3A0", nil, false, "cf_process_instance: not a valid GUID"),
		Entry("empty guid", "cf_app_guid=&cf_app_instance_index=0", nil, false, "not a valid GUID"),
		Entry("negative index", "cf_app_guid="+guid+"&cf_app_instance_index=-1", nil, false, "not an instance index"),
		Entry("a process index with a sign", "cf_app_guid="+guid+"&cf_process_instance="+process+"%3A-1", nil, false, "not an instance index"),
		Entry("index with a sign", "cf_app_guid="+guid+"&cf_app_instance_index=%2B1", nil, false, "not an instance index"),
		Entry("index with a leading zero", "cf_app_guid="+guid+"&cf_app_instance_index=01", nil, false, "not an instance index"),
		Entry("index too large", "cf_app_guid="+guid+"&cf_app_instance_index=1000001", nil, false, "not an instance index"),
		Entry("index too long", "cf_app_guid="+guid+"&cf_app_instance_index=00000000", nil, false, "not an instance index"),
		Entry("CR LF in the instance", "cf_app_instance="+guid+"%3A0%0d%0aX:1", nil, false, "not an instance index"),
		Entry("CR LF in the process instance", "cf_app_guid="+guid+"&cf_process_instance="+process+"%3A0%0d%0aX:1", nil, false, "not an instance index"),
		Entry("CR LF in the guid", "cf_app_guid="+guid+"%0d%0a&cf_app_instance_index=0", nil, false, "not a valid GUID"),
		Entry("two colons", "cf_app_instance="+guid+"%3A0%3A1", nil, false, "not an instance index"),
		Entry("different apps", "cf_app_guid=0f0e0d0c-0b0a-4090-8070-605040302010&cf_app_instance="+guid+"%3A0", nil, false, "different apps"),
		Entry("different instances", "cf_app_instance="+guid+"%3A1&cf_app_instance_index=0", nil, false, "different instances"),
		Entry("a process instance of another index", "cf_app_guid="+guid+"&cf_app_instance_index=0&cf_process_instance="+process+"%3A1", nil, false, "different instances"),
		Entry("repeated", "cf_app_guid="+guid+"&cf_app_guid="+guid+"&cf_app_instance_index=0", nil, false, "repeated"),
		Entry("a repeated process instance", "cf_app_guid="+guid+"&cf_process_instance="+process+"%3A0&cf_process_instance="+process+"%3A0", nil, false, "repeated"),
	)

	DescribeTable("ParseQuery: the scrape parameters of a raw query, and the rest of it forwarded upstream",
		func(raw string, want scrape.Params, wantOK bool, wantRest string, problem string) {
			p, ok, rest, err := scrape.ParseQuery(raw)
			if problem != "" {
				Expect(err).To(MatchError(ContainSubstring(problem)))
				Expect(err.Error()).NotTo(ContainSubstring(guid[:8]), "the guid is a bearer token")
				return
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(ok).To(Equal(wantOK))
			Expect(p).To(Equal(want))
			Expect(rest).To(Equal(wantRest))
		},
		Entry("none", "", scrape.Params{}, false, "", ""),
		Entry("other parameters only, kept as sent", "x=1&name%5B%5D=a+b&empty=&flag", scrape.Params{}, false, "x=1&name%5B%5D=a+b&empty=&flag", ""),
		Entry("scrape parameters only", "cf_app_guid="+guid+"&cf_app_instance="+guid+"%3A0&cf_process_instance="+process+":0",
			scrape.Params{AppGUID: guid, ProcessGUID: process}, true, "", ""),
		Entry("mixed: the others kept in order and encoding", "format=prom&cf_app_guid="+guid+"&name%5B%5D=a+b&cf_app_instance_index=7&empty=",
			scrape.Params{AppGUID: guid, Index: 7}, true, "format=prom&name%5B%5D=a+b&empty=", ""),
		Entry("an escaped parameter name", "cf%5Fapp%5Fguid="+guid+"&x=1&cf_app_instance_index=2", scrape.Params{AppGUID: guid, Index: 2}, true, "x=1", ""),
		Entry("empty fields dropped", "&&x=1&&", scrape.Params{}, false, "x=1", ""),
		Entry("repeated", "cf_app_guid="+guid+"&cf_app_guid="+guid+"&cf_app_instance_index=0", nil, false, "", "repeated"),
		Entry("malformed, as Parse says", "cf_app_guid="+guid+"&cf_app_instance_index=01", nil, false, "", "not an instance index"),
		Entry("%0d%0a in a value", "x=a%0d%0ab", nil, false, "", `control character in query parameter "x"`),
		Entry("%00 in a name", "x%00=1", nil, false, "", "control character in query parameter"),
		Entry("%0a in a scrape parameter: neither it nor the token quoted", "cf_app_guid="+guid+"%0a", nil, false, "", `control character in query parameter "cf_app_guid"`),
		Entry("a raw space", "x=a b", nil, false, "", "control character, space or semicolon"),
		Entry("a raw CR", "x=a\rb", nil, false, "", "control character, space or semicolon"),
		Entry("a malformed escape", "x=%zz", nil, false, "", "malformed query"),
		Entry("a malformed escape in a scrape parameter: the value not quoted", "cf_app_guid="+guid+"%zz", nil, false, "", "malformed query"),
		Entry("a semicolon", "x=1;y=2", nil, false, "", "semicolon"),
	)
})
