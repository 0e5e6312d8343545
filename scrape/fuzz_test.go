package scrape_test

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alphagov/cf-app-discovery/scrape"
)

// FuzzParse feeds arbitrary query strings to the parser the
// proxy uses: accepted parameters are well formed and survive a round trip
// through the labels Prometheus turns into a query.
func FuzzParse(f *testing.F) {
	f.Add("cf_app_guid=6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b&cf_app_instance=6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b%3A0&cf_app_instance_index=0")
	f.Add("cf_app_guid=6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b&cf_process_instance=0f0e0d0c-0b0a-4090-8070-605040302010%3A3")
	f.Add("cf_app_instance=x%0d%0aInjected:%20yes")
	f.Add("cf_app_guid=..%2F..&cf_app_instance_index=-1")
	f.Add("cf_app_instance_index=99999999999999999999")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, ok, err := scrape.Parse(q)
		if err != nil || !ok {
			return
		}
		if !scrape.ValidGUID(p.AppGUID) || p.Index < 0 || p.ProcessGUID != "" && !scrape.ValidGUID(p.ProcessGUID) {
			t.Fatalf("accepted %+v from %q", p, raw)
		}
		for _, h := range p.Headers() {
			if strings.ContainsAny(h.Value, "\r\n\x00") {
				t.Fatalf("header value with control characters from %q", raw)
			}
		}
		back, ok, err := scrape.Parse(p.Query())
		if err != nil || !ok || back != p {
			t.Fatalf("round trip of %+v gave %+v, %v, %v", p, back, ok, err)
		}
	})
}

// FuzzSplit checks Split against url.ParseQuery: what it accepts,
// ParseQuery reads the same way, the scrape parameters all in params and
// none in rest, every other field kept in rest in its order, and nothing
// in either that could break a request line or a header.
func FuzzSplit(f *testing.F) {
	f.Add("format=prom&cf_app_guid=6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b&name%5B%5D=a+b&cf_app_instance_index=7&empty=")
	f.Add("cf%5fprocess%5finstance=x%3A1&&x")
	f.Add("x=a%0d%0ab")
	f.Add("x=%zz;y")
	f.Fuzz(func(t *testing.T, raw string) {
		params, rest, err := scrape.Split(raw)
		if err != nil {
			return
		}
		all, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("Split accepted %q, which url.ParseQuery refuses: %v", raw, err)
		}
		others, err := url.ParseQuery(rest)
		if err != nil {
			t.Fatalf("rest %q of %q does not parse: %v", rest, raw, err)
		}
		for name, values := range all {
			got := others[name]
			if slices.Contains(scrapeParams, name) {
				if len(got) > 0 {
					t.Fatalf("scrape parameter %q left in rest %q of %q", name, rest, raw)
				}
				got = params[name]
			}
			if !slices.Equal(got, values) {
				t.Fatalf("%q: %q, url.ParseQuery says %q (from %q)", name, got, values, raw)
			}
		}
		if strings.ContainsFunc(rest, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			t.Fatalf("rest %q of %q has a space or control character", rest, raw)
		}
		for _, values := range params {
			for _, v := range values {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("parameter %q with control characters from %q", v, raw)
				}
			}
		}
	})
}

var scrapeParams = []string{scrape.ParamAppGUID, scrape.ParamAppInstance, scrape.ParamAppInstanceIndex, scrape.ParamProcessInstance}

// guidPattern is the 8-4-4-4-12 form ValidGUID checks, as a regular
// expression to check it against.
var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// FuzzValidGUID checks ValidGUID against the regular expression of the
// GUID form.
func FuzzValidGUID(f *testing.F) {
	for _, seed := range []string{"6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b", "6B5F1A2E-0C3D-4E5F-8A9B-0C1D2E3F4A5B", "", "../x", "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := scrape.ValidGUID(s), guidPattern.MatchString(s); got != want {
			t.Fatalf("scrape.ValidGUID(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
