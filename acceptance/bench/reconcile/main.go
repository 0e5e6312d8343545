// Command reconcile benchmarks the target updater the way it runs in
// production: the real binary, run with --once, against a fake CF API that
// adds a fixed latency to every request and an S3-compatible server. It
// prints CF requests, wall time, CPU time, peak RSS and S3 operations of
// each run.
//
//	go run ./acceptance/bench/reconcile -updater bin/target-updater
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
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
	flag.Parse()
	if *apps == 0 {
		*apps = *bound * 6 / 5
	}
	if err := run(*updater, *apps, *bound, *latency); err != nil {
		fmt.Fprintln(os.Stderr, "bench-reconcile:", err)
		os.Exit(1)
	}
}

func run(updater string, apps, bound int, latency time.Duration) error {
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
	fmt.Printf("bench-reconcile: %d bound apps of %d visible, %d routes on other domains, CF latency %s per request\n",
		bound, apps, apps*3/10, latency)
	fmt.Printf("%-26s %12s %10s %8s %12s  %s\n", "run", "CF requests", "wall", "CPU", "peak RSS", "S3 operations")
	for _, name := range []string{"1: writes every target", "2: nothing changed"} {
		cf.ResetCounts()
		s3.reset()
		m, err := runOnce(updater, cf.URL(), s3srv.URL, pop.Plan.BrokerCatalogID)
		if err != nil {
			return fmt.Errorf("run %q: %w", name, err)
		}
		fmt.Printf("%-26s %12d %10s %7.2fs %9.1f MB  %s\n", name, cf.Requests(), m.wall.Round(time.Millisecond),
			m.cpu.Seconds(), float64(m.peakRSS)/1024, s3.String())
		fmt.Printf("%-26s %s\n", "", byPath(cf.RequestLog()))
	}
	return nil
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

func runOnce(updater, cfURL, s3URL, planID string) (measures, error) {
	cmd := exec.Command(updater, "--once")
	cmd.Env = append(os.Environ(),
		"API_ENDPOINT="+cfURL,
		"UAA_USERNAME="+fakecf.DefaultUsername, "UAA_PASSWORD="+fakecf.DefaultPassword,
		"PLAN_ID="+planID, "PAAS_DOMAIN=apps.example.com",
		"BUCKET_NAME="+bucket, "AWS_REGION=us-east-1", "S3_ENDPOINT="+s3URL,
		"AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench",
		"LOG_LEVEL=error",
	)
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
