package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// The demo's updater and broker address each web process's instances
// (INSTANCE_ADDRESSING=process), and the updater watches the fake CF API
// often, so that a rolling deploy shows in the targets within seconds.
const (
	watchInterval  = "2s"
	updateSchedule = "@every 1m"
)

// deployCommands are the printed commands that drive a rolling deploy of
// an app on the fake CF API, as `cf push --strategy rolling` and Cloud
// Controller's deployment updater would.
func deployCommands(cfURL, app string) string {
	base := cfURL + "/fake/apps/" + app + "/deploy"
	return fmt.Sprintf(`Roll out a new version of shop (cf push shop --strategy rolling), a step at a time, and see
its targets and up{job="shop"} follow below (the updater watches CF every %s):
  curl -s -X POST '%s?strategy=rolling'
  curl -s -X POST '%s/step'      # again, until the old process has no instance left
  curl -s -X POST '%s/finish'    # the old process goes: CF writes no audit event for that
`, watchInterval, base, base, base)
}

// view is what the demo shows of an app: its target groups and, when
// Prometheus runs, up of each of its targets.
type view struct {
	groups []group
	// up is instance label → value; nil without Prometheus.
	up map[string]string
}

// group is one target group: its instance label, and the process
// instance it addresses ("" when it addresses the app's instance index).
type group struct {
	instance, process string
}

// fromProcess counts the groups that address an instance of process.
func (v view) fromProcess(process string) int {
	n := 0
	for _, g := range v.groups {
		if strings.HasPrefix(g.process, process+":") {
			n++
		}
	}
	return n
}

func (v view) String() string {
	var groups []string
	for _, g := range v.groups {
		via := "app"
		if g.process != "" {
			via = "process " + short(g.process)
		}
		groups = append(groups, short(g.instance)+" via "+via)
	}
	s := "targets: " + strings.Join(groups, ", ")
	if v.up != nil {
		var up []string
		for instance, value := range v.up {
			up = append(up, short(instance)+"="+value)
		}
		slices.Sort(up)
		s += "\n         up: " + strings.Join(up, ", ")
	}
	return s
}

// settled reports whether Prometheus scrapes exactly the file's targets,
// every one of them up.
func (v view) settled() bool {
	if v.up == nil {
		return true
	}
	if len(v.up) != len(v.groups) {
		return false
	}
	for _, g := range v.groups {
		if v.up[g.instance] != "1" {
			return false
		}
	}
	return true
}

// look reads the app's target file and asks Prometheus for up.
func look(file, upQuery string) (view, error) {
	var v view
	data, err := os.ReadFile(file)
	if err != nil {
		return v, err
	}
	var groups []struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(data, &groups); err != nil {
		return v, err
	}
	for _, g := range groups {
		v.groups = append(v.groups, group{instance: g.Labels["instance"], process: g.Labels["__param_cf_process_instance"]})
	}
	if upQuery != "" {
		v.up, err = queryUp(upQuery)
	}
	return v, err
}

// queryUp returns instance label → value of an instant query for up.
func queryUp(query string) (map[string]string, error) {
	resp, err := http.Get(query)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var answer struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range answer.Data.Result {
		if len(r.Value) == 2 {
			out[r.Metric["instance"]] = fmt.Sprint(r.Value[1])
		}
	}
	return out, nil
}

// short abbreviates "<guid>:<index>" to the guid's first 8 digits.
func short(instance string) string {
	guid, index, ok := strings.Cut(instance, ":")
	if !ok || len(guid) < 8 {
		return instance
	}
	return guid[:8] + ":" + index
}

// follow prints the app's view each time it changes, until ctx ends.
func follow(ctx context.Context, out io.Writer, app, file, upQuery string) {
	var last string
	for ctx.Err() == nil {
		if v, err := look(file, upQuery); err == nil && v.String() != last {
			last = v.String()
			fmt.Fprintf(out, "%s %s %s\n", time.Now().Format("15:04:05"), app, last)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// rollingDeploy runs the printed deploy commands and, after each, waits
// until the target file shows the step and Prometheus scrapes every target
// in it, up.
func rollingDeploy(ctx context.Context, out io.Writer, cfURL, app, file, upQuery string) error {
	base := cfURL + "/fake/apps/" + app + "/deploy"
	var procs []struct {
		GUID      string `json:"guid"`
		Instances int    `json:"instances"`
	}
	if err := get(cfURL+"/fake/apps/"+app+"/processes", &procs); err != nil {
		return err
	}
	if len(procs) != 1 {
		return fmt.Errorf("app %s has %d web processes, not 1", app, len(procs))
	}
	old := procs[0]
	var d struct {
		NewProcessGUID string `json:"new_process_guid"`
	}
	if err := post(base+"?strategy=rolling", &d); err != nil {
		return err
	}
	if err := await(ctx, out, "deploy", file, upQuery, func(v view) bool { return v.fromProcess(d.NewProcessGUID) == 1 }); err != nil {
		return err
	}
	for left := old.Instances - 1; left > 0; left-- {
		if err := post(base+"/step", nil); err != nil {
			return err
		}
		if err := await(ctx, out, "step", file, upQuery, func(v view) bool { return v.fromProcess(old.GUID) == left }); err != nil {
			return err
		}
	}
	if err := post(base+"/finish", nil); err != nil {
		return err
	}
	return await(ctx, out, "finish", file, upQuery, func(v view) bool {
		return len(v.groups) == old.Instances && v.fromProcess(old.GUID) == 0 && v.fromProcess(d.NewProcessGUID) == 0
	})
}

// await waits until the view shows what a step should and Prometheus has
// caught up with it, then prints it.
func await(ctx context.Context, out io.Writer, step, file, upQuery string, shows func(view) bool) error {
	start := time.Now()
	var last view
	for time.Since(start) < time.Minute && ctx.Err() == nil {
		v, err := look(file, upQuery)
		if err == nil && shows(v) && v.settled() {
			fmt.Fprintf(out, "%-7s after %4.1fs  %s\n", step, time.Since(start).Seconds(), v)
			return nil
		}
		last = v
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("the targets never showed the deploy's %s (last: %s)", step, last)
}

func post(url string, out any) error {
	resp, err := http.Post(url, "application/json", nil)
	if err != nil {
		return err
	}
	return decode(resp, url, out)
}

func get(url string, out any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	return decode(resp, url, out)
}

func decode(resp *http.Response, url string, out any) error {
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, body)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
