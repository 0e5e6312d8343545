package targets_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"

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
		o := targets.Options{PaaSDomain: "paas.example", Addressing: addressing}
		out := targets.RenderWith(app, o)
		if !bytes.Equal(out, targets.RenderWith(app, o)) {
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

// FuzzParseParameters parses arbitrary bind parameters and checks what an
// accepted one does to the target groups: every label name is one
// Prometheus accepts, the labels the renderer writes for the scrape
// contract (instance, org, space, __param_*) are never replaced, and the
// scrape interval and timeout come together with the timeout at most the
// interval. A refused one gives a *ParametersError.
func FuzzParseParameters(f *testing.F) {
	f.Add([]byte(`{"path":"/admin/metrics","port":9090,"scrape_interval":"30s","scrape_timeout":"10s","job":"shop","labels":{"team":"payments"}}`))
	f.Add([]byte(`{"scrape_timeout":"90s"}`))
	f.Add([]byte(`{"labels":{"_":"","instance":"x","__param_cf_app_guid":"y"}}`))
	f.Add([]byte(`{"port":8080.0,"path":"/"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[1,{"a":2}]`))
	app := targets.App{
		GUID: "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b", Name: "my-app", State: "STARTED",
		Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: 2}},
		Org:       "org", Space: "space",
		Routes: []targets.Route{{Host: "a", Domain: "example.com", Protocol: "http1", Port: 8080}, {Host: "b", Domain: "example.com", Protocol: "http1", Port: 9090}},
	}
	base := targets.Groups(app, "paas.example")
	f.Fuzz(func(t *testing.T, raw []byte) {
		settings, err := targets.ParseParameters(raw)
		if err != nil {
			var perr *targets.ParametersError
			if !errors.As(err, &perr) || len(perr.Invalid) == 0 {
				t.Fatalf("refused without naming a parameter: %v", err)
			}
			return
		}
		groups := targets.GroupsWith(app, targets.Options{PaaSDomain: "paas.example", Settings: settings})
		if len(groups) != len(base) {
			t.Fatalf("%d groups, want %d", len(groups), len(base))
		}
		for i, g := range groups {
			for name := range g.Labels {
				if !model.LegacyValidation.IsValidLabelName(name) {
					t.Fatalf("label name %q is not one Prometheus accepts", name)
				}
			}
			for name, value := range base[i].Labels {
				if name != "job" && name != "__metrics_path__" && g.Labels[name] != value {
					t.Fatalf("label %s is %q, want %q", name, g.Labels[name], value)
				}
			}
			interval, hasInterval := g.Labels["__scrape_interval__"]
			timeout, hasTimeout := g.Labels["__scrape_timeout__"]
			if hasInterval != hasTimeout {
				t.Fatalf("scrape interval %q without timeout %q, or the reverse", interval, timeout)
			}
			if hasInterval {
				i, ierr := model.ParseDuration(interval)
				to, terr := model.ParseDuration(timeout)
				if ierr != nil || terr != nil || to > i {
					t.Fatalf("scrape interval %q and timeout %q", interval, timeout)
				}
			}
		}
	})
}
