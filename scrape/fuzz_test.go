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

// FuzzParseQuery checks ParseQuery against url.ParseQuery and Parse: what
// it accepts, they read the same way, with the scrape parameters all apart
// and every other field kept in rest in its order; what Parse refuses, it
// refuses; and nothing in rest could break a request line.
func FuzzParseQuery(f *testing.F) {
	f.Add("format=prom&cf_app_guid=6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b&name%5B%5D=a+b&cf_app_instance_index=7&empty=")
	f.Add("cf%5fprocess%5finstance=x%3A1&&x")
	f.Add("x=a%0d%0ab")
	f.Add("x=%zz;y")
	f.Fuzz(func(t *testing.T, raw string) {
		p, ok, rest, err := scrape.ParseQuery(raw)
		all, qerr := url.ParseQuery(raw)
		if err != nil {
			// Refused for what Parse refuses, or for a control character
			// or space, raw or escaped, which url.ParseQuery lets through.
			_, _, perr := scrape.Parse(all)
			if qerr == nil && perr == nil && !strings.ContainsFunc(raw, controlOrSpace) && !strings.ContainsFunc(strings.Join(flatten(all), ""), control) {
				t.Fatalf("ParseQuery refused %q (%v), which url.ParseQuery and Parse accept", raw, err)
			}
			return
		}
		if qerr != nil {
			t.Fatalf("ParseQuery accepted %q, which url.ParseQuery refuses: %v", raw, qerr)
		}
		if wantP, wantOK, perr := scrape.Parse(all); perr != nil || wantP != p || wantOK != ok {
			t.Fatalf("ParseQuery(%q) = %+v, %v; Parse says %+v, %v, %v", raw, p, ok, wantP, wantOK, perr)
		}
		others, err := url.ParseQuery(rest)
		if err != nil {
			t.Fatalf("rest %q of %q does not parse: %v", rest, raw, err)
		}
		scrape.Strip(all)
		if len(all) != len(others) {
			t.Fatalf("rest %q of %q holds %q, want %q", rest, raw, others, all)
		}
		for name, values := range all {
			if !slices.Equal(others[name], values) {
				t.Fatalf("%q: %q in rest %q, %q in %q", name, others[name], rest, values, raw)
			}
		}
		if strings.ContainsFunc(rest, controlOrSpace) {
			t.Fatalf("rest %q of %q has a space or control character", rest, raw)
		}
	})
}

func control(r rune) bool        { return r < ' ' || r == 0x7f }
func controlOrSpace(r rune) bool { return r == ' ' || control(r) }

// flatten lists the names and values of q.
func flatten(q url.Values) []string {
	var out []string
	for name, values := range q {
		out = append(append(out, name), values...)
	}
	return out
}

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
