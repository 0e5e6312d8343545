// Command httpsd benchmarks the broker's http_sd endpoint the way it runs in
// production: the real broker binary, serving GET /v1/targets from an
// S3-compatible server holding the target files of 10,000 apps. It prints
// the S3 operations of the view's refreshes, the answer's size, its p50 and
// p99 answer times (gzip on) under the refresh load of 3 Prometheus hosts
// and under bursts of 50 concurrent requests, gzipped and not (Prometheus
// does not ask for gzip), and the broker's RSS.
//
//	go run ./acceptance/bench/httpsd -broker bin/broker
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/alphagov/cf-app-discovery/acceptance/bench/benchkit"
	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/httpsd"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

const (
	bucket     = "bench-targets"
	sdUser     = "prometheus"
	sdPassword = "bench-sd-password"
	orgs       = 10
	spaces     = 10 // per org
)

type options struct {
	broker   string
	apps     int
	inactive int
	interval time.Duration
	pollers  int
	poll     time.Duration
	duration time.Duration
	burst    int
	rounds   int
}

func main() {
	var o options
	flag.StringVar(&o.broker, "broker", "bin/broker", "path of the broker binary")
	flag.IntVar(&o.apps, "apps", 10000, "started apps, with 1 to 3 instances each, in active/")
	flag.IntVar(&o.inactive, "inactive", 1000, "stopped apps in inactive/, which are never served")
	flag.DurationVar(&o.interval, "interval", 3*time.Second, "SD_REFRESH_INTERVAL of the broker")
	flag.IntVar(&o.pollers, "pollers", 3, "Prometheus hosts polling the endpoint")
	flag.DurationVar(&o.poll, "poll", 100*time.Millisecond, "pause between two requests of one host (Prometheus' default is 60s)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long the hosts poll")
	flag.IntVar(&o.burst, "burst", 50, "concurrent requests in a burst")
	flag.IntVar(&o.rounds, "rounds", 20, "bursts of each kind")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-httpsd:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx := context.Background()
	cf := fakecf.New(fakecf.Options{})
	defer cf.Close()
	s3 := benchkit.NewS3(nil)
	defer s3.Close()
	st, err := s3.Store(ctx, bucket)
	if err != nil {
		return err
	}
	var fleet []targets.App
	for i := range o.apps + o.inactive {
		fleet = append(fleet, benchApp(i, i >= o.apps, 0))
	}
	if err := putApps(ctx, st, fleet); err != nil {
		return err
	}
	fmt.Printf("bench-httpsd: %d started apps (1-3 instances) and %d stopped ones in an S3-compatible server (gofakes3); SD_REFRESH_INTERVAL %s; %d cores, load average %s\n",
		o.apps, o.inactive, o.interval, runtime.NumCPU(), loadAverage())

	port, err := freePort()
	if err != nil {
		return err
	}
	b := &broker{base: "http://127.0.0.1:" + port, client: client(o.burst)}
	s3.Reset()
	started := time.Now()
	cmd, err := startBroker(o, port, cf.URL(), s3)
	if err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := b.waitReady(2 * time.Minute); err != nil {
		return err
	}
	ready := time.Since(started)
	n, _, err := b.refreshes()
	if err != nil {
		return err
	}
	fmt.Printf("\nfirst read of the bucket: ready %s after the broker started; S3 %s (%d refreshes ended)\n", ready.Round(time.Millisecond), s3, n)

	fmt.Printf("\n%-34s %10s  %s\n", "refresh", "took", "S3 operations")
	for _, changed := range []int{0, 100, 1000} {
		took, ops, err := b.measureRefresh(s3, func() error {
			var apps []targets.App
			for i := range changed {
				apps = append(apps, benchApp(i*(o.apps/changed), false, changed))
			}
			return putApps(ctx, st, apps)
		})
		if err != nil {
			return err
		}
		fmt.Printf("%-34s %10s  %s\n", fmt.Sprintf("%d of %d apps changed", changed, o.apps), took.Round(time.Millisecond), ops)
	}

	raw, err := b.get(httpsd.Path, false)
	if err != nil {
		return err
	}
	gz, err := b.get(httpsd.Path, true)
	if err != nil {
		return err
	}
	fmt.Printf("\nanswer: %d groups, %.2f MB raw, %.2f MB gzipped\n",
		strings.Count(string(raw), `"targets"`), float64(len(raw))/1e6, float64(len(gz))/1e6)
	filtered, err := b.get(filterPath(0), true)
	if err != nil {
		return err
	}
	fmt.Printf("filtered by org and space (1 space of %d): %.1f KB gzipped\n", orgs*spaces, float64(len(filtered))/1e3)

	fmt.Printf("\n%-62s %8s %10s %10s %10s %14s\n", "load", "answers", "p50", "p99", "max", "broker CPU")
	pid := cmd.Process.Pid
	cpu := benchkit.CPUTime(pid)
	for _, gzipped := range []bool{true, false} {
		polled, err := b.poll(o.pollers, o.poll, o.duration, gzipped)
		if err != nil {
			return err
		}
		cpu = printLatency(fmt.Sprintf("%d hosts, each every %s, for %s, %s", o.pollers, o.poll, o.duration, coding(gzipped)), polled, pid, cpu)
	}
	for _, gzipped := range []bool{true, false} {
		rounds := o.rounds
		if !gzipped {
			rounds = max(o.rounds/4, 1) // 50 answers of 6.5 MB a round
		}
		full, err := b.bursts(o.burst, rounds, func(int) string { return httpsd.Path }, gzipped)
		if err != nil {
			return err
		}
		cpu = printLatency(fmt.Sprintf("bursts of %d, every group, %s", o.burst, coding(gzipped)), full, pid, cpu)
	}
	byFilter, err := b.bursts(o.burst, o.rounds, filterPath, true)
	if err != nil {
		return err
	}
	printLatency(fmt.Sprintf("bursts of %d, by org and space, answers made, gzip", o.burst), byFilter, pid, cpu)
	var cold []time.Duration
	var coldCPU time.Duration
	for round := range o.rounds / 2 {
		// A change makes a new view, whose filtered answers are made by
		// the first request for each.
		changed := benchApp(round, false, 100000+round)
		if err := putApps(ctx, st, []targets.App{changed}); err != nil {
			return err
		}
		if err := b.waitFor(changed.Routes[0].Address()); err != nil {
			return err
		}
		before := benchkit.CPUTime(pid)
		took, err := b.bursts(o.burst, 0, func(i int) string { return filterPath(round*o.burst + i) }, true)
		if err != nil {
			return err
		}
		coldCPU += benchkit.CPUTime(pid) - before
		cold = append(cold, took...)
	}
	printLatency(fmt.Sprintf("bursts of %d, by org and space, after a change, gzip", o.burst), cold, pid, benchkit.CPUTime(pid)-coldCPU)

	fmt.Printf("the broker's CPU time includes its refreshes every %s; load average now %s\n", o.interval, loadAverage())
	rss, hwm := benchkit.Memory(cmd.Process.Pid)
	fmt.Printf("\nbroker RSS (the broker process's VmRSS, /proc): %.1f MB now, %.1f MB peak (VmHWM)\n", float64(rss)/1024, float64(hwm)/1024)
	return nil
}

// benchApp is app number i of the fleet; version changes its routes.
func benchApp(i int, stopped bool, version int) targets.App {
	guid := fmt.Sprintf("6b5f1a2e-0c3d-4e5f-8a9b-%012d", i)
	state := "STARTED"
	if stopped {
		state = "STOPPED"
	}
	a := targets.App{
		GUID: guid, Name: fmt.Sprintf("app-%d", i), State: state,
		Org: fmt.Sprintf("org-%d", i%orgs), Space: fmt.Sprintf("space-%d", i/orgs%spaces),
		Processes: []targets.Process{{GUID: guid, Instances: 1 + i%3}},
		Routes:    []targets.Route{{Host: fmt.Sprintf("app-%d-v%d", i, version), Domain: "apps.example.com", Protocol: "http1"}},
	}
	if i%5 == 0 {
		a.Routes[0].Path = "/metrics"
	}
	return a
}

// filterPath asks for the groups of one space, a different one for each i.
func filterPath(i int) string {
	return fmt.Sprintf("%s?org=org-%d&space=space-%d", httpsd.Path, i%orgs, i/orgs%spaces)
}

func putApps(ctx context.Context, st *store.S3Store, apps []targets.App) error {
	var g errgroup.Group
	g.SetLimit(16)
	for _, a := range apps {
		g.Go(func() error {
			key, err := store.TargetKey(a.GUID, a.Started())
			if err != nil {
				return err
			}
			_, err = st.Put(ctx, key, targets.Render(a, "apps.example.com"), store.Condition{})
			return err
		})
	}
	return g.Wait()
}

func startBroker(o options, port, cfURL string, s3 *benchkit.S3) (*exec.Cmd, error) {
	cmd := exec.Command(o.broker)
	cmd.Env = append(s3.Env(cfURL, bucket),
		"PORT="+port, "LOG_LEVEL=error",
		"BROKER_USERNAME=cc", "BROKER_PASSWORD=bench-osb-password",
		"SD_USERNAME="+sdUser, "SD_PASSWORD="+sdPassword, "SD_REFRESH_INTERVAL="+o.interval.String(),
		"SERVICE_ID=service-id", "PLAN_ID=plan-id",
	)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd, cmd.Start()
}

type broker struct {
	base   string
	client *http.Client
}

func client(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableCompression:  true, // the bench asks for gzip itself and times the compressed answer
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
	}}
}

// get returns the body of path, gzipped or not.
func (b *broker) get(path string, gzipped bool) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(sdUser, sdPassword)
	if gzipped {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body, nil
}

// timed returns how long a GET of path took, to the end of its body.
func (b *broker) timed(path string, gzipped bool) (time.Duration, error) {
	start := time.Now()
	_, err := b.get(path, gzipped)
	return time.Since(start), err
}

// coding says whether answers were asked for gzipped. Prometheus' http_sd
// does not ask (its HTTP client disables compression).
func coding(gzipped bool) string {
	if gzipped {
		return "gzip"
	}
	return "no gzip (as Prometheus asks)"
}

func (b *broker) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := b.get(httpsd.Path, true); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("the endpoint was not ready after %s", limit)
}

// refreshes reads from the broker's metrics how many refreshes of the view
// have ended and how long they took in all.
func (b *broker) refreshes() (count int, seconds float64, err error) {
	resp, err := b.client.Get(b.base + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		name, value, _ := strings.Cut(lines.Text(), " ")
		switch name {
		case "cf_app_discovery_httpsd_refresh_duration_seconds_count":
			count, err = strconv.Atoi(value)
		case "cf_app_discovery_httpsd_refresh_duration_seconds_sum":
			seconds, err = strconv.ParseFloat(value, 64)
		}
		if err != nil {
			return 0, 0, err
		}
	}
	return count, seconds, lines.Err()
}

// waitRefresh waits until more than count refreshes have ended.
func (b *broker) waitRefresh(count int) (int, float64, error) {
	for {
		n, s, err := b.refreshes()
		if err != nil || n > count {
			return n, s, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// measureRefresh changes the bucket right after a refresh has ended, then
// counts the S3 operations of the next refresh and reads its duration from
// the broker's metrics. The changes are PUTs; the view only lists and
// reads.
func (b *broker) measureRefresh(s3 *benchkit.S3, change func() error) (time.Duration, string, error) {
	n, _, err := b.refreshes()
	if err != nil {
		return 0, "", err
	}
	n, before, err := b.waitRefresh(n)
	if err != nil {
		return 0, "", err
	}
	s3.Reset()
	if err := change(); err != nil {
		return 0, "", err
	}
	puts := s3.Count("PUT")
	after, sum, err := b.waitRefresh(n)
	if err != nil {
		return 0, "", err
	}
	if after != n+1 || s3.Count("GET") != puts {
		return 0, "", fmt.Errorf("a refresh overlapped the change (%d refreshes, %d PUTs, %d GETs): use a longer -interval", after-n, puts, s3.Count("GET"))
	}
	return time.Duration((sum - before) * float64(time.Second)), fmt.Sprintf("LIST %d, GET %d", s3.Count("LIST"), s3.Count("GET")), nil
}

// poll has hosts ask for every group, each every pause, for d.
func (b *broker) poll(hosts int, pause, d time.Duration, gzipped bool) ([]time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var g errgroup.Group
	deadline := time.Now().Add(d)
	for range hosts {
		g.Go(func() error {
			for time.Now().Before(deadline) {
				took, err := b.timed(httpsd.Path, gzipped)
				if err != nil {
					return err
				}
				mu.Lock()
				all = append(all, took)
				mu.Unlock()
				time.Sleep(pause)
			}
			return nil
		})
	}
	return all, g.Wait()
}

// waitFor waits until the answer without filters has s.
func (b *broker) waitFor(s string) error {
	for range 1000 {
		body, err := b.get(httpsd.Path, false)
		if err != nil {
			return err
		}
		if strings.Contains(string(body), s) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s never showed", s)
}

// bursts sends rounds of n requests released together, after a round that
// opens the connections (with rounds 0, that one round only).
func (b *broker) bursts(n, rounds int, path func(int) string, gzipped bool) ([]time.Duration, error) {
	var all []time.Duration
	for round := range rounds + 1 {
		took := make([]time.Duration, n)
		release := make(chan struct{})
		var g errgroup.Group
		for i := range n {
			g.Go(func() error {
				<-release
				var err error
				took[i], err = b.timed(path(i), gzipped)
				return err
			})
		}
		close(release)
		if err := g.Wait(); err != nil {
			return nil, err
		}
		if round > 0 || rounds == 0 {
			all = append(all, took...)
		}
	}
	return all, nil
}

// printLatency prints the percentiles of d and the broker's CPU time per
// answer since cpuBefore, and returns the broker's CPU time now.
func printLatency(name string, d []time.Duration, pid int, cpuBefore time.Duration) time.Duration {
	cpu := benchkit.CPUTime(pid)
	slices.Sort(d)
	pct := func(p float64) time.Duration {
		i := int(p*float64(len(d))+0.999999) - 1
		return d[max(i, 0)]
	}
	fmt.Printf("%-62s %8d %10s %10s %10s %9.2f ms/answer\n", name, len(d),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond),
		float64(cpu-cpuBefore)/float64(time.Millisecond)/float64(len(d)))
	return cpu
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

// loadAverage returns the machine's load averages over 1, 5 and 15 minutes.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}
