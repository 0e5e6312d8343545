// Command reconcile benchmarks the target updater the way it runs in
// production: the real binary, serving, against a fake CF API that adds a
// fixed latency to every request and an S3-compatible server. It measures
// the updater's first run (at start) and its next scheduled one, in which
// nothing changed, and prints for each the CF requests, wall time, the
// updater's own CPU time and peak RSS, and S3 operations. With -once it
// runs `target-updater --once` twice instead: two cold processes, which
// know nothing of the bucket from a run before.
//
//	go run ./acceptance/bench/reconcile -updater bin/target-updater
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
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
)

const bucket = "bench-targets"

func main() {
	updater := flag.String("updater", "bin/target-updater", "path of the target-updater binary")
	bound := flag.Int("bound", 10000, "apps bound to the service")
	apps := flag.Int("apps", 0, "apps visible to the monitoring user (default: 6 for every 5 bound)")
	latency := flag.Duration("latency", 20*time.Millisecond, "latency the fake CF API adds to every request")
	once := flag.Bool("once", false, "run target-updater --once twice instead of serving")
	memory := flag.String("memory", "256m", "the container's memory quota, as \"256m\" or \"1g\" (\"\": none); the bench has no container, so it gives the updater the GOMEMLIMIT and GOGC it sets itself in one with that quota")
	flag.Parse()
	if *apps == 0 {
		*apps = *bound * 6 / 5
	}
	if err := run(*updater, *apps, *bound, *latency, *once, *memory); err != nil {
		fmt.Fprintln(os.Stderr, "bench-reconcile:", err)
		os.Exit(1)
	}
}

func run(updater string, apps, bound int, latency time.Duration, once bool, memory string) error {
	ctx := context.Background()
	cf := fakecf.New(fakecf.Options{})
	defer cf.Close()
	pop, err := cf.Populate(fakecf.Fleet{Orgs: 10, SpacesPerOrg: 10, Apps: apps, Bound: bound})
	if err != nil {
		return err
	}
	// 3 routes per 10 apps on other domains, besides each app's own route.
	other := cf.AddDomain(fakecf.Domain{Name: "other.example.org"})
	for i, app := range pop.Apps {
		if i%10 < 3 {
			if _, err := cf.AddRoute(fakecf.Route{Host: fmt.Sprintf("alt-%d", i), DomainGUID: other.GUID,
				Destinations: []fakecf.Destination{{AppGUID: app.GUID, ProcessType: "web"}}}); err != nil {
				return err
			}
		}
	}
	cf.Warm()

	// The lease is the serving updater's, not the run's: left uncounted.
	s3 := benchkit.NewS3(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/"+store.LeaseKey) })
	defer s3.Close()
	st, err := s3.Store(ctx, bucket)
	if err != nil {
		return err
	}
	if err := benchkit.SeedRecords(ctx, st, pop.Bindings); err != nil {
		return err
	}

	cf.SetLatency(latency)
	how := "one serving updater: its run at start, then its next scheduled run"
	if once {
		how = "target-updater --once, twice"
	}
	memEnv, err := memoryEnv(memory)
	if err != nil {
		return err
	}
	fmt.Printf("bench-reconcile: %d bound apps of %d visible, %d routes on other domains, CF latency %s per request; %s; container memory %s: %s\n",
		bound, apps, apps*3/10, latency, how, cmp.Or(memory, "unlimited"), cmp.Or(strings.Join(memEnv, " "), "no GOMEMLIMIT"))
	fmt.Printf("%-26s %12s %10s %8s %12s  %s\n", "run", "CF requests", "wall", "CPU", "peak RSS", "S3 operations")
	env := append(s3.Env(cf.URL(), bucket), "PLAN_ID="+pop.Plan.BrokerCatalogID, "LOG_LEVEL=error")
	env = append(env, memEnv...)
	names := []string{"1: writes every target", "2: nothing changed"}
	report := func(run int, m measures) {
		fmt.Printf("%-26s %12d %10s %7.2fs %9.1f MB  %s\n", names[run], cf.Requests(), m.wall.Round(time.Millisecond),
			m.cpu.Seconds(), float64(m.peakRSS)/1024, s3.String())
		fmt.Printf("%-26s %s\n", "", byPath(cf.RequestLog()))
		cf.ResetCounts()
		s3.Reset()
	}
	cf.ResetCounts()
	s3.Reset()
	if !once {
		// A run begins by listing the bucket, then asks CF; the lease
		// renewals in between runs never list.
		return serve(updater, env, func() bool { return s3.Count("LIST") > 0 || cf.Requests() > 0 }, report)
	}
	for i, name := range names {
		m, err := runOnce(updater, env)
		if err != nil {
			return fmt.Errorf("run %q: %w", name, err)
		}
		report(i, m)
	}
	return nil
}

// memoryEnv is the environment that stands for a container with the
// memory quota given (as "256m", CF's manifest's memory: 256M; "" for
// none): the updater, finding that limit in its cgroup, sets the Go
// runtime's soft limit to 70% of it and GOGC to 200; the bench's updater
// has no such cgroup, so it is given both.
func memoryEnv(quota string) ([]string, error) {
	if quota == "" {
		return nil, nil
	}
	units := map[byte]int64{'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}
	unit := units[strings.ToLower(quota)[len(quota)-1]]
	n, err := strconv.ParseInt(quota[:len(quota)-1], 10, 64)
	if unit == 0 || err != nil || n <= 0 {
		return nil, fmt.Errorf("-memory %q: not a whole number of k, m or g", quota)
	}
	return []string{"GOMEMLIMIT=" + strconv.FormatInt(int64(float64(n*unit)*0.7), 10), "GOGC=200"}, nil
}

// serve runs the updater until it has finished two runs, measuring each
// as it ends (report's counts are those of the run), then stops it. A run's
// CPU time counts from the process's start for the first, and from the
// second's start (started: its first listing of the bucket) for the second, so that the updater's
// idle time between (lease renewals, this program's reading its
// /metrics) is left out.
func serve(updater string, env []string, started func() bool, report func(run int, m measures)) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command(updater)
	// The run at start, then one every 15 s; a run still going skips the
	// ticks, so the second run starts within 15 s of the first's end. No
	// watch in between: its requests would count with the second run.
	cmd.Env = append(env, "PORT="+strconv.Itoa(port), "UPDATE_SCHEDULE=@every 15s", "WATCH_INTERVAL=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()
	pid := cmd.Process.Pid
	metrics := "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	var cpuBefore time.Duration
	var durationBefore float64
	for run := range 2 {
		if run > 0 {
			for !started() {
				select {
				case <-exited:
					return errors.New("the updater exited")
				case <-time.After(5 * time.Millisecond):
				}
			}
			cpuBefore = benchkit.CPUTime(pid)
			// The peak RSS from here on: the kernel resets VmHWM to the
			// current RSS.
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
				return fmt.Errorf("resetting the peak RSS: %w", err)
			}
		}
		for {
			success, failure, duration := runCounters(metrics)
			if failure > 0 {
				return fmt.Errorf("run %d failed", run+1)
			}
			if success > float64(run) {
				cpu := benchkit.CPUTime(pid)
				report(run, measures{wall: time.Duration((duration - durationBefore) * float64(time.Second)),
					cpu: cpu - cpuBefore, peakRSS: peakRSS(pid)})
				durationBefore = duration
				break
			}
			select {
			case <-exited:
				return errors.New("the updater exited")
			case <-time.After(250 * time.Millisecond): // polling the updater's metrics
			}
		}
	}
	return nil
}

// runCounters reads the updater's successful and failed runs and the sum
// of their durations from its /metrics; zeros until it answers.
func runCounters(url string) (success, failure, duration float64) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, 0, 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case `cf_app_discovery_reconcile_runs_total{outcome="success"}`:
			success = v
		case `cf_app_discovery_reconcile_runs_total{outcome="failure"}`:
			failure = v
		case "cf_app_discovery_reconcile_duration_seconds_sum":
			duration = v
		}
	}
	return success, failure, duration
}

// byPath counts CF requests by path, most first.
func byPath(log []string) string {
	counts := map[string]int{}
	for _, line := range log {
		_, uri, _ := strings.Cut(line, " ")
		path, _, _ := strings.Cut(uri, "?")
		counts[path]++
	}
	paths := slices.Collect(maps.Keys(counts))
	slices.SortFunc(paths, func(a, b string) int { return cmp.Or(counts[b]-counts[a], strings.Compare(a, b)) })
	var parts []string
	for _, p := range paths {
		parts = append(parts, fmt.Sprintf("%s %d", p, counts[p]))
	}
	return strings.Join(parts, ", ")
}

// measures is what one run of the updater cost.
type measures struct {
	wall    time.Duration
	cpu     time.Duration // user and system time of the updater alone
	peakRSS int64         // KiB
}

func runOnce(updater string, env []string) (measures, error) {
	cmd := exec.Command(updater, "--once")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return measures{}, err
	}
	// The child's ru_maxrss would include this process's own RSS, inherited
	// through vfork and exec, so the peak is read from the child's VmHWM.
	peak := make(chan int64)
	done := make(chan struct{})
	go func() {
		var hwm int64
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		for {
			if v := peakRSS(cmd.Process.Pid); v > hwm {
				hwm = v
			}
			select {
			case <-done:
				peak <- hwm
				return
			case <-ticker.C:
			}
		}
	}()
	err := cmd.Wait()
	m := measures{wall: time.Since(start)}
	close(done)
	m.peakRSS = <-peak
	if cmd.ProcessState != nil {
		m.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return m, err
}

// peakRSS is a live process's peak resident set size in KiB, or 0.
func peakRSS(pid int) int64 {
	_, peak := benchkit.Memory(pid)
	return peak
}
