package targets_test

import (
	"bytes"
	"encoding/json"
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
			GUID: "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b", Name: name, State: "STARTED", Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: int(instances % 16)}},
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
		if len(groups) != app.Instances() {
			t.Fatalf("%d groups for %d instances", len(groups), app.Instances())
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
