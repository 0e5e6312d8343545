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
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

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
	flag.Parse()
	if *apps == 0 {
		*apps = *bound * 6 / 5
	}
	if err := run(*updater, *apps, *bound, *latency, *once); err != nil {
		fmt.Fprintln(os.Stderr, "bench-reconcile:", err)
		os.Exit(1)
	}
}

func run(updater string, apps, bound int, latency time.Duration, once bool) error {
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

	s3 := &opCounter{handler: gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server()}
	s3srv := httptest.NewServer(s3)
	defer s3srv.Close()
	if err := seedRecords(ctx, s3srv.URL, pop.Bindings); err != nil {
		return err
	}

	cf.SetLatency(latency)
	how := "one serving updater: its run at start, then its next scheduled run"
	if once {
		how = "target-updater --once, twice"
	}
	fmt.Printf("bench-reconcile: %d bound apps of %d visible, %d routes on other domains, CF latency %s per request; %s\n",
		bound, apps, apps*3/10, latency, how)
	fmt.Printf("%-26s %12s %10s %8s %12s  %s\n", "run", "CF requests", "wall", "CPU", "peak RSS", "S3 operations")
	env := updaterEnv(cf.URL(), s3srv.URL, pop.Plan.BrokerCatalogID)
	names := []string{"1: writes every target", "2: nothing changed"}
	report := func(run int, m measures) {
		fmt.Printf("%-26s %12d %10s %7.2fs %9.1f MB  %s\n", names[run], cf.Requests(), m.wall.Round(time.Millisecond),
			m.cpu.Seconds(), float64(m.peakRSS)/1024, s3.String())
		fmt.Printf("%-26s %s\n", "", byPath(cf.RequestLog()))
		cf.ResetCounts()
		s3.reset()
	}
	cf.ResetCounts()
	s3.reset()
	if !once {
		return serve(updater, env, func() bool { return cf.Requests() > 0 }, report)
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

// serve runs the updater until it has finished two runs, measuring each
// as it ends (report's counts are those of the run), then stops it. A run's
// CPU time counts from the process's start for the first, and from the
// second's first CF request (started) for the second, so that the updater's
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
			cpuBefore = cpuTime(pid)
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
				cpu := cpuTime(pid)
				report(run, measures{wall: time.Duration((duration - durationBefore) * float64(time.Second)),
					cpu: cpu - cpuBefore, peakRSS: vmHWM(pid)})
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

// cpuTime is a live process's user and system time so far, from
// /proc/<pid>/stat, whose clock ticks are hundredths of a second on Linux.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// updaterEnv is the updater's configuration against the fakes.
func updaterEnv(cfURL, s3URL, planID string) []string {
	return append(os.Environ(),
		"API_ENDPOINT="+cfURL,
		"UAA_USERNAME="+fakecf.DefaultUsername, "UAA_PASSWORD="+fakecf.DefaultPassword,
		"PLAN_ID="+planID, "PAAS_DOMAIN=apps.example.com",
		"BUCKET_NAME="+bucket, "AWS_REGION=us-east-1", "S3_ENDPOINT="+s3URL,
		"AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench",
		"LOG_LEVEL=error",
	)
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

// seedRecords writes the binding records the broker would have written.
func seedRecords(ctx context.Context, endpoint string, bindings []fakecf.Binding) error {
	creds := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("bench", "bench", "")}
	bucketStore, err := store.NewS3(ctx, store.S3Options{Bucket: bucket, Endpoint: endpoint, AWSConfig: &creds})
	if err != nil {
		return err
	}
	work := make(chan fakecf.Binding)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				key, _ := store.BindingKey(b.GUID)
				body, _ := store.Binding{BindingGUID: b.GUID, AppGUID: b.AppGUID, PlanID: "plan", CreatedAt: b.CreatedAt, Source: store.SourceBroker}.Marshal()
				if _, err := bucketStore.Put(ctx, key, body, store.Condition{}); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, b := range bindings {
		work <- b
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
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
			if v := vmHWM(cmd.Process.Pid); v > hwm {
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

// vmHWM returns a live process's peak resident set size in KiB, or 0.
func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb
		}
	}
	return 0
}

// opCounter counts S3 requests by operation.
type opCounter struct {
	handler http.Handler
	mu      sync.Mutex
	ops     map[string]int
}

func (c *opCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/"+store.LeaseKey) {
		// The lease is the serving updater's, not the run's.
		c.handler.ServeHTTP(w, r)
		return
	}
	op := r.Method
	if r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
		op = "LIST"
	}
	c.mu.Lock()
	if c.ops == nil {
		c.ops = map[string]int{}
	}
	c.ops[op]++
	c.mu.Unlock()
	c.handler.ServeHTTP(w, r)
}

func (c *opCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops = map[string]int{}
}

func (c *opCounter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, op := range []string{"LIST", "GET", "HEAD", "PUT", "DELETE"} {
		parts = append(parts, fmt.Sprintf("%s %d", op, c.ops[op]))
	}
	return strings.Join(parts, ", ")
}
