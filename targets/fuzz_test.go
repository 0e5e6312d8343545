package targets_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/alphagov/cf-app-discovery/targets"
)

// FuzzRender renders target files from arbitrary CF data, in both
// addressing modes and with one or two web processes, and checks the file_sd
// contract: valid JSON, one group per instance addressed, only targets and
// labels, no two groups with one label set (as Prometheus keeps them), the
// same bytes every time.
func FuzzRender(f *testing.F) {
	f.Add("my-app-venerable", "my-app", "example.com", "/metrics", "http1", false, "org", "space", uint8(3), uint8(0), false, false)
	f.Add("", "", "", "", "tcp", true, "", "", uint8(0), uint8(0), true, false)
	f.Add("a\"b</script>", "h\u2028", "d.\x00", "/p?x=1", "http2", false, "o\n", "s\t", uint8(1), uint8(2), true, false)
	f.Add("my-app", "my-app", "example.com", "", "http1", false, "org", "space", uint8(3), uint8(1), false, false)
	f.Add("my-app", "my-app", "example.com", "", "http1", false, "org", "space", uint8(2), uint8(3), true, true)
	f.Fuzz(func(t *testing.T, name, host, domain, path, protocol string, internal bool, org, space string, instances, newInstances uint8, process, firstIsApp bool) {
		const appGUID = "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b"
		first := "00000000-0000-4000-8000-000000000001"
		if firstIsApp {
			first = appGUID // CF gives an app's first web process the app's guid
		}
		app := targets.App{
			GUID: appGUID, Name: name, State: "STARTED",
			Processes: []targets.Process{{GUID: first, Instances: int(instances % 16)}},
			Org:       org, Space: space,
			Routes: []targets.Route{{Host: host, Domain: domain, Path: path, Protocol: protocol, Internal: internal}},
		}
		// A second web process while a deployment runs; 0 means none.
		if newInstances%8 != 0 {
			app.Processes = append(app.Processes, targets.Process{GUID: "00000000-0000-4000-8000-000000000002",
				Instances: int(newInstances%8) - 1, CreatedAt: time.Unix(1, 0)})
		}
		addressing := targets.AppAddressing
		want := app.Instances()
		if process && len(app.Processes) > 1 {
			addressing = targets.ProcessAddressing
			want = app.Processes[0].Instances + app.Processes[1].Instances
		}
		out := targets.Render(app, "paas.example", addressing)
		if !bytes.Equal(out, targets.Render(app, "paas.example", addressing)) {
			t.Fatal("rendering is not deterministic")
		}
		var groups []map[string]json.RawMessage
		if err := json.Unmarshal(out, &groups); err != nil {
			t.Fatalf("invalid JSON: %v\n%s", err, out)
		}
		if len(groups) != want {
			t.Fatalf("%d groups for %d instances", len(groups), want)
		}
		seen := map[string]bool{}
		for i, g := range groups {
			if len(g) != 2 || g["targets"] == nil || g["labels"] == nil {
				t.Fatalf("group %d has keys other than targets and labels: %s", i, out)
			}
			var labels map[string]string
			if err := json.Unmarshal(g["labels"], &labels); err != nil {
				t.Fatal(err)
			}
			// The labels Prometheus keeps: __param_* become the query.
			kept := map[string]string{}
			for k, v := range labels {
				if !strings.HasPrefix(k, "__") {
					kept[k] = v
				}
			}
			if key := fmt.Sprint(kept); seen[key] {
				t.Fatalf("group %d has the labels of another: %s", i, out)
			} else {
				seen[key] = true
			}
			if addressing == targets.AppAddressing && labels["__param_cf_app_instance_index"] != strconv.Itoa(i) {
				t.Fatalf("group %d has index %q", i, labels["__param_cf_app_instance_index"])
			}
			if utf8.ValidString(name) && labels["job"] != strings.TrimSuffix(name, "-venerable") {
				t.Fatalf("job %q for name %q", labels["job"], name)
			}
		}
	})
}
