// Command freshness measures how soon the target updater's bucket shows a
// change made in Cloud Foundry: the real binary, watching every 10 s,
// against a fake CF API that adds a fixed latency to every request and an
// S3-compatible server. After the updater's first full reconcile it counts
// the CF requests of an idle minute, then makes changes at random moments
// (scales, stops, starts, renames, route changes, rolling deploys) and
// times each until the bucket shows it. It prints p50, p95 and max, and CF
// requests per minute idle and busy.
//
//	go run ./acceptance/bench/freshness -updater bin/target-updater
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alphagov/cf-app-discovery/acceptance/bench/benchkit"
	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

const bucket = "bench-freshness"

type options struct {
	updater  string
	apps     int
	bound    int
	latency  time.Duration
	watch    time.Duration
	idle     time.Duration
	spread   time.Duration
	timeout  time.Duration
	seed     uint64
	schedule string
}

func main() {
	var o options
	flag.StringVar(&o.updater, "updater", "bin/target-updater", "path of the target-updater binary")
	flag.IntVar(&o.apps, "apps", 12000, "apps visible to the monitoring user")
	flag.IntVar(&o.bound, "bound", 10000, "apps bound to the service")
	flag.DurationVar(&o.latency, "latency", 20*time.Millisecond, "latency the fake CF API adds to every request")
	flag.DurationVar(&o.watch, "watch", 10*time.Second, "the updater's WATCH_INTERVAL")
	flag.DurationVar(&o.idle, "idle", time.Minute, "how long to count the requests of an idle updater")
	flag.DurationVar(&o.spread, "spread", 2*time.Minute, "the changes start at random moments within this time")
	flag.DurationVar(&o.timeout, "timeout", time.Minute, "give up on a change the bucket has not shown after this long")
	flag.Uint64Var(&o.seed, "seed", 14, "seed of the random apps and moments")
	flag.StringVar(&o.schedule, "schedule", "@every 5m", "the updater's UPDATE_SCHEDULE (full reconciles)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-freshness:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cf := fakecf.New(fakecf.Options{})
	defer cf.Close()
	pop, err := cf.Populate(fakecf.Fleet{Orgs: 10, SpacesPerOrg: 10, Apps: o.apps, Bound: o.bound})
	if err != nil {
		return err
	}
	cf.Warm()

	s3 := benchkit.NewS3(nil)
	defer s3.Close()
	st, err := s3.Store(ctx, bucket)
	if err != nil {
		return err
	}
	if err := benchkit.SeedRecords(ctx, st, pop.Bindings); err != nil {
		return err
	}

	cf.SetLatency(o.latency)
	fmt.Printf("bench-freshness: %d bound apps of %d visible, CF latency %s per request, WATCH_INTERVAL=%s, UPDATE_SCHEDULE=%s\n",
		o.bound, o.apps, o.latency, o.watch, o.schedule)
	updater, err := startUpdater(ctx, o, cf.URL(), s3, pop.Plan.BrokerCatalogID)
	if err != nil {
		return err
	}
	defer updater.stop()
	start := time.Now()
	if err := updater.waitFor(ctx, `cf_app_discovery_reconcile_runs_total{outcome="success"}`, 1, 2*time.Minute); err != nil {
		return fmt.Errorf("the first full reconcile: %w", err)
	}
	fmt.Printf("first full reconcile done after %s\n", time.Since(start).Round(100*time.Millisecond))

	cf.ResetCounts()
	idleStart := time.Now()
	time.Sleep(o.idle)
	idle := perMinute(cf.Requests(), time.Since(idleStart))
	fmt.Printf("idle for %s: %d CF requests (audit events %d, deployments %d): %.1f per minute\n",
		o.idle, cf.Requests(), cf.RequestsTo("/v3/audit_events"), cf.RequestsTo("/v3/deployments"), idle)

	rng := rand.New(rand.NewPCG(o.seed, o.seed))
	b := &bench{cf: cf, st: st, rng: rng, timeout: o.timeout, domain: pop.Domain, spaces: map[string]string{}}
	for _, a := range pop.Apps {
		b.spaces[a.GUID] = a.SpaceGUID
	}
	apps := make([]string, 0, o.bound)
	for _, a := range pop.Apps[:o.bound] {
		apps = append(apps, a.GUID)
	}
	rng.Shuffle(len(apps), func(i, j int) { apps[i], apps[j] = apps[j], apps[i] })
	cf.ResetCounts()
	busyStart := time.Now()
	results, err := b.run(ctx, apps, o.spread)
	if err != nil {
		return err
	}
	busyTook := time.Since(busyStart)
	busy := perMinute(cf.Requests(), busyTook)
	report(results)
	fmt.Printf("busy for %s: %d CF requests (audit events %d, deployments %d): %.1f per minute\n",
		busyTook.Round(time.Second), cf.Requests(), cf.RequestsTo("/v3/audit_events"), cf.RequestsTo("/v3/deployments"), busy)
	if m, err := updater.metrics(); err == nil {
		fmt.Printf("updater: %s reconciles, %s watches (%s failed), %s events handled, %s apps refreshed\n",
			m[`cf_app_discovery_reconcile_runs_total{outcome="success"}`], m[`cf_app_discovery_watch_runs_total{outcome="success"}`],
			m[`cf_app_discovery_watch_runs_total{outcome="failure"}`], m["cf_app_discovery_watch_events_total"],
			m["cf_app_discovery_watch_apps_refreshed_total"])
	}
	return nil
}

func perMinute(n int, d time.Duration) float64 {
	return float64(n) / d.Minutes()
}

// change is one thing done to an app in the fake CF API, and how to tell
// that the bucket shows it.
type change struct {
	kind  string
	app   string
	due   time.Time
	do    func() error
	shown func(active, inactive []targets.TargetGroup, hasActive, hasInactive bool) bool
	// then is the change that follows this one once the bucket shows it
	// (a start after a stop, the end of a deploy after its start).
	then func() *change
	// measured is false for a deploy's intermediate step.
	measured bool

	done time.Time
}

type result struct {
	kind  string
	delay time.Duration
	ok    bool
}

type bench struct {
	cf      *fakecf.Server
	st      store.Store
	rng     *rand.Rand
	timeout time.Duration
	domain  fakecf.Domain
	spaces  map[string]string // space guid by app guid
}

// plan returns the first changes: 20 scales, 15 stops (each followed by a
// start), 15 renames, 15 route changes and 10 rolling deploys (each
// followed by a step and its end), each on an app of its own, at random
// moments within spread: 100 measured changes.
func (b *bench) plan(apps []string, spread time.Duration) []*change {
	now := time.Now()
	due := func() time.Time { return now.Add(time.Duration(b.rng.Int64N(int64(spread)))) }
	var out []*change
	next := 0
	take := func() string { next++; return apps[next-1] }
	for range 20 {
		out = append(out, b.scale(take(), due()))
	}
	for range 15 {
		out = append(out, b.stop(take(), due()))
	}
	for i := range 15 {
		out = append(out, b.rename(take(), due(), i))
	}
	for i := range 15 {
		out = append(out, b.route(take(), due(), i))
	}
	for range 10 {
		out = append(out, b.deploy(take(), due()))
	}
	return out
}

// later is a moment 3 to 10 s from now, for a change that follows another.
func (b *bench) later() time.Time {
	return time.Now().Add(3*time.Second + time.Duration(b.rng.Int64N(int64(7*time.Second))))
}

func (b *bench) scale(app string, due time.Time) *change {
	return &change{kind: "scale", app: app, due: due, measured: true,
		do: func() error { return b.cf.Scale(app, 4) },
		shown: func(active, _ []targets.TargetGroup, ok, _ bool) bool {
			return ok && len(active) == 4
		}}
}

func (b *bench) stop(app string, due time.Time) *change {
	return &change{kind: "stop", app: app, due: due, measured: true,
		do: func() error { return b.cf.StopApp(app) },
		shown: func(_, _ []targets.TargetGroup, hasActive, hasInactive bool) bool {
			return !hasActive && hasInactive
		},
		then: func() *change {
			return &change{kind: "start", app: app, due: b.later(), measured: true,
				do: func() error { return b.cf.StartApp(app) },
				shown: func(_, _ []targets.TargetGroup, hasActive, hasInactive bool) bool {
					return hasActive && !hasInactive
				}}
		}}
}

func (b *bench) rename(app string, due time.Time, i int) *change {
	name := "renamed-" + strconv.Itoa(i)
	return &change{kind: "rename", app: app, due: due, measured: true,
		do: func() error { return b.cf.Rename(app, name) },
		shown: func(active, _ []targets.TargetGroup, ok, _ bool) bool {
			return ok && len(active) > 0 && active[0].Labels["job"] == name
		}}
}

func (b *bench) route(app string, due time.Time, i int) *change {
	host := "fresh-" + strconv.Itoa(i)
	return &change{kind: "route", app: app, due: due, measured: true,
		do: func() error {
			r, err := b.cf.AddRoute(fakecf.Route{Host: host, DomainGUID: b.domain.GUID, Path: "/metrics", SpaceGUID: b.spaces[app]})
			if err != nil {
				return err
			}
			return b.cf.MapRoute(r.GUID, app, "web")
		},
		shown: func(active, _ []targets.TargetGroup, ok, _ bool) bool {
			return ok && len(active) > 0 && active[0].Targets[0] == host+"."+b.domain.Name &&
				active[0].Labels["__metrics_path__"] == "/metrics"
		}}
}

// deploy starts a rolling deploy; once the bucket shows the new process,
// a step moves an instance over, and then the deploy ends (no audit event
// marks the end: the old process is gone from the bucket once the watch
// sees the deployment leave the active list).
func (b *bench) deploy(app string, due time.Time) *change {
	var newProcess, oldProcess string
	hasProcess := func(groups []targets.TargetGroup, guid string) bool {
		return slices.ContainsFunc(groups, func(g targets.TargetGroup) bool {
			return strings.HasPrefix(g.Labels["__param_cf_process_instance"], guid+":")
		})
	}
	end := func() *change {
		return &change{kind: "deploy-end", app: app, due: b.later(), measured: true,
			do: func() error { _, err := b.cf.FinishDeployment(app); return err },
			shown: func(active, _ []targets.TargetGroup, ok, _ bool) bool {
				return ok && len(active) > 0 && !hasProcess(active, oldProcess)
			}}
	}
	step := func() *change {
		return &change{kind: "deploy-step", app: app, due: b.later(),
			do:    func() error { _, err := b.cf.StepDeployment(app); return err },
			shown: func(_, _ []targets.TargetGroup, _, _ bool) bool { return true },
			then:  end}
	}
	return &change{kind: "deploy-start", app: app, due: due, measured: true,
		do: func() error {
			procs, err := b.cf.WebProcesses(app)
			if err != nil || len(procs) == 0 {
				return fmt.Errorf("processes of %s: %v", app, err)
			}
			oldProcess = procs[0].GUID
			d, err := b.cf.Deploy(app, fakecf.Rolling)
			newProcess = d.NewProcessGUID
			return err
		},
		shown: func(active, _ []targets.TargetGroup, ok, _ bool) bool {
			return ok && hasProcess(active, newProcess)
		},
		then: step}
}

// run makes the planned changes when they are due and polls the bucket for
// each one made, four times a second, until it shows every one.
func (b *bench) run(ctx context.Context, apps []string, spread time.Duration) ([]result, error) {
	queue := b.plan(apps, spread)
	var pending []*change
	var results []result
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for len(queue) > 0 || len(pending) > 0 {
		now := time.Now()
		slices.SortFunc(queue, func(x, y *change) int { return x.due.Compare(y.due) })
		for len(queue) > 0 && !queue[0].due.After(now) {
			c := queue[0]
			queue = queue[1:]
			if err := c.do(); err != nil {
				return nil, fmt.Errorf("%s %s: %w", c.kind, c.app, err)
			}
			c.done = time.Now()
			pending = append(pending, c)
		}
		var still []*change
		for _, c := range pending {
			shown, err := b.shows(ctx, c)
			if err != nil {
				return nil, err
			}
			switch {
			case shown:
				if c.measured {
					results = append(results, result{kind: c.kind, delay: time.Since(c.done), ok: true})
				}
				if c.then != nil {
					queue = append(queue, c.then())
				}
			case time.Since(c.done) > b.timeout:
				results = append(results, result{kind: c.kind, delay: time.Since(c.done)})
			default:
				still = append(still, c)
			}
		}
		pending = still
		select {
		case <-poll.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return results, nil
}

func (b *bench) shows(ctx context.Context, c *change) (bool, error) {
	active, hasActive, err := b.read(ctx, c.app, true)
	if err != nil {
		return false, err
	}
	inactive, hasInactive, err := b.read(ctx, c.app, false)
	if err != nil {
		return false, err
	}
	return c.shown(active, inactive, hasActive, hasInactive), nil
}

func (b *bench) read(ctx context.Context, app string, started bool) ([]targets.TargetGroup, bool, error) {
	key, err := store.TargetKey(app, started)
	if err != nil {
		return nil, false, err
	}
	body, _, err := b.st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	groups, err := decodeGroups(body)
	return groups, true, err
}

func report(results []result) {
	var delays []time.Duration
	byKind := map[string][]time.Duration{}
	missed := 0
	for _, r := range results {
		if !r.ok {
			missed++
			continue
		}
		delays = append(delays, r.delay)
		byKind[r.kind] = append(byKind[r.kind], r.delay)
	}
	fmt.Printf("%-14s %6s %8s %8s %8s\n", "change", "count", "p50", "p95", "max")
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		printRow(k, byKind[k])
	}
	printRow("all", delays)
	if missed > 0 {
		fmt.Printf("%d changes not shown within the timeout\n", missed)
	}
}

func printRow(name string, delays []time.Duration) {
	slices.Sort(delays)
	fmt.Printf("%-14s %6d %8s %8s %8s\n", name, len(delays), quantile(delays, 0.5), quantile(delays, 0.95), quantile(delays, 1))
}

// quantile is the nearest-rank quantile q of sorted delays.
func quantile(sorted []time.Duration, q float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	rank := max(int(float64(len(sorted))*q+0.999999)-1, 0)
	return (sorted[min(rank, len(sorted)-1)]).Round(100 * time.Millisecond).String()
}

func decodeGroups(body []byte) ([]targets.TargetGroup, error) {
	var groups []targets.TargetGroup
	err := json.Unmarshal(body, &groups)
	return groups, err
}

// process is the running updater.
type process struct {
	cmd     *exec.Cmd
	metrics func() (map[string]string, error)
}

func startUpdater(ctx context.Context, o options, cfURL string, s3 *benchkit.S3, planID string) (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.CommandContext(ctx, o.updater)
	cmd.Env = append(s3.Env(cfURL, bucket),
		"PLAN_ID="+planID,
		"PORT="+strconv.Itoa(port), "WATCH_INTERVAL="+o.watch.String(), "UPDATE_SCHEDULE="+o.schedule,
		"INSTANCE_ADDRESSING=process", "LOG_LEVEL="+cmp.Or(os.Getenv("BENCH_LOG_LEVEL"), "error"),
	)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	metricsURL := "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	return &process{cmd: cmd, metrics: func() (map[string]string, error) { return scrape(metricsURL) }}, nil
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
}

// waitFor waits until the updater's metric series reaches want.
func (p *process) waitFor(ctx context.Context, series string, want float64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if m, err := p.metrics(); err == nil {
			if v, err := strconv.ParseFloat(m[series], 64); err == nil && v >= want {
				return nil
			}
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("%s did not reach %v within %s", series, want, limit)
}

// scrape reads a Prometheus text exposition into series → value.
func scrape(url string) (map[string]string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			out[line[:i]] = line[i+1:]
		}
	}
	return out, sc.Err()
}
