package targets_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/alphagov/cf-app-discovery/targets"
)

// FuzzRender renders target files from arbitrary CF data and checks the
// file_sd contract: valid JSON, one group per instance, only targets and
// labels, the same bytes every time.
func FuzzRender(f *testing.F) {
	f.Add("my-app-venerable", "my-app", "example.com", "/metrics", "http1", false, "org", "space", uint8(3))
	f.Add("", "", "", "", "tcp", true, "", "", uint8(0))
	f.Add("a\"b</script>", "h\u2028", "d.\x00", "/p?x=1", "http2", false, "o\n", "s\t", uint8(1))
	f.Fuzz(func(t *testing.T, name, host, domain, path, protocol string, internal bool, org, space string, instances uint8) {
		app := targets.App{
			GUID: "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b", Name: name, State: "STARTED", Instances: int(instances % 16),
			Org: org, Space: space,
			Routes: []targets.Route{{Host: host, Domain: domain, Path: path, Protocol: protocol, Internal: internal}},
		}
		out := targets.Render(app, "paas.example")
		if !bytes.Equal(out, targets.Render(app, "paas.example")) {
			t.Fatal("rendering is not deterministic")
		}
		var groups []map[string]json.RawMessage
		if err := json.Unmarshal(out, &groups); err != nil {
			t.Fatalf("invalid JSON: %v\n%s", err, out)
		}
		if len(groups) != app.Instances {
			t.Fatalf("%d groups for %d instances", len(groups), app.Instances)
		}
		for i, g := range groups {
			if len(g) != 2 || g["targets"] == nil || g["labels"] == nil {
				t.Fatalf("group %d has keys other than targets and labels: %s", i, out)
			}
			var labels map[string]string
			if err := json.Unmarshal(g["labels"], &labels); err != nil {
				t.Fatal(err)
			}
			if labels["__param_cf_app_instance_index"] != strconv.Itoa(i) {
				t.Fatalf("group %d has index %q", i, labels["__param_cf_app_instance_index"])
			}
			if utf8.ValidString(name) && labels["job"] != strings.TrimSuffix(name, "-venerable") {
				t.Fatalf("job %q for name %q", labels["job"], name)
			}
		}
	})
}

// FuzzParseScrapeParams feeds arbitrary query strings to the parser the
// proxy uses: accepted parameters are well formed and survive a round trip
// through the labels Prometheus turns into a query.
func FuzzParseScrapeParams(f *testing.F) {
	f.Add("cf_app_guid=6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b&cf_app_instance=6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b%3A0&cf_app_instance_index=0")
	f.Add("cf_app_instance=x%0d%0aInjected:%20yes")
	f.Add("cf_app_guid=..%2F..&cf_app_instance_index=-1")
	f.Add("cf_app_instance_index=99999999999999999999")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, ok, err := targets.ParseScrapeParams(q)
		if err != nil || !ok {
			return
		}
		if !targets.ValidGUID(p.AppGUID) || p.Index < 0 {
			t.Fatalf("accepted %+v from %q", p, raw)
		}
		if strings.ContainsAny(p.Instance(), "\r\n\x00") {
			t.Fatalf("header value with control characters from %q", raw)
		}
		back, ok, err := targets.ParseScrapeParams(p.Query())
		if err != nil || !ok || back != p {
			t.Fatalf("round trip of %+v gave %+v, %v, %v", p, back, ok, err)
		}
	})
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
		if got, want := targets.ValidGUID(s), guidPattern.MatchString(s); got != want {
			t.Fatalf("ValidGUID(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
