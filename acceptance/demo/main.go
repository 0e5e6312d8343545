// Command demo runs cf-app-discovery locally on embedded defaults: a fake
// CF API with sample apps, a fake CF router serving their metrics, the
// broker and target updater on a local directory store, paas-proxy, and
// Prometheus (2.x or 3.x) when it is installed. It prints the URLs and the
// curl commands to try the service. Ctrl-C stops everything it started.
//
//	make demo
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alphagov/cf-app-discovery/acceptance/ccsim"
	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/acceptance/router"
)

const (
	serviceID  = "0c8f3a6e-5d4b-4c2a-9e1f-7b6a5d4c3b2a"
	planID     = "0c8f3a6e-5d4b-4c2a-9e1f-7b6a5d4c3b2b"
	instanceID = "0c8f3a6e-5d4b-4c2a-9e1f-7b6a5d4c3b2c"
	bindingID  = "0c8f3a6e-5d4b-4c2a-9e1f-7b6a5d4c3b2d"
	brokerPass = "demo-password"
	appsDomain = "apps.example.com"
	paasDomain = "paas.example"
)

func main() {
	bin := flag.String("bin", "bin", "directory with the broker, target-updater and paas-proxy binaries")
	dir := flag.String("dir", "tmp/demo", "working directory: target files, Prometheus data, logs")
	base := flag.Int("port", 9100, "first of the loopback ports the demo listens on")
	prom := flag.String("prometheus", "prometheus", "the Prometheus to run, 2.x or 3.x (a name is looked up in PATH); none when not found")
	selfTest := flag.Bool("self-test", false, "run the printed provision/bind/unbind flow, check it, and exit")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *dir, *prom, *base, *selfTest); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(parent context.Context, bin, dir, prom string, base int, selfTest bool) error {
	ctx, cancel := context.WithCancel(parent)
	// Stop every program started below, and wait for them, however run ends.
	defer children.Wait()
	defer cancel()
	addr := func(offset int) string { return fmt.Sprintf("127.0.0.1:%d", base+offset) }
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	targetsPath := filepath.Join(dir, "targets")
	if err := os.MkdirAll(filepath.Join(targetsPath, "active"), 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "demo.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()

	// The fake CF API, seeded with an org, a space and three apps.
	cf := fakecf.NewUnstarted(fakecf.Options{})
	cfURL, err := cf.StartOn(addr(0))
	if err != nil {
		return fmt.Errorf("%w (is another demo running?)", err)
	}
	defer cf.Close()
	org := cf.AddOrg(fakecf.Org{Name: "demo-org"})
	space, _ := cf.AddSpace(fakecf.Space{Name: "demo-space", OrgGUID: org.GUID})
	domain := cf.AddDomain(fakecf.Domain{Name: appsDomain})
	plan := cf.AddServicePlan(fakecf.ServicePlan{Name: "prometheus", BrokerCatalogID: planID})
	shop, _ := cf.AddApp(fakecf.App{Name: "shop", SpaceGUID: space.GUID, Instances: 2})
	_, _ = cf.AddRoute(fakecf.Route{Host: "shop", DomainGUID: domain.GUID, Destinations: []fakecf.Destination{{AppGUID: shop.GUID}}})
	search, _ := cf.AddApp(fakecf.App{Name: "search", SpaceGUID: space.GUID, Instances: 1})
	_, _ = cf.AddRoute(fakecf.Route{Host: "search", DomainGUID: domain.GUID, Path: "/internal/metrics", Destinations: []fakecf.Destination{{AppGUID: search.GUID}}})
	worker, _ := cf.AddApp(fakecf.App{Name: "worker", SpaceGUID: space.GUID, Instances: 3})

	// The router answers for the apps' routes as the CF router would.
	if _, err := serve(ctx, addr(1), &router.Router{Apps: cf, PaaSDomain: paasDomain}); err != nil {
		return err
	}

	common := []string{
		"API_ENDPOINT=" + cfURL, "UAA_USERNAME=" + fakecf.DefaultUsername, "UAA_PASSWORD=" + fakecf.DefaultPassword,
		"PLAN_ID=" + planID, "SERVICE_ID=" + serviceID, "PAAS_DOMAIN=" + paasDomain, "TARGETS_PATH=" + targetsPath,
		"INSTANCE_ADDRESSING=process",
	}
	brokerAddr, updaterAddr, proxyAddr, ccAddr, promAddr := addr(2), addr(3), addr(4), addr(5), addr(6)
	if err := startProgram(ctx, filepath.Join(bin, "broker"), logFile, nil, append(common,
		"PORT="+port(brokerAddr), "BROKER_USERNAME=cc", "BROKER_PASSWORD="+brokerPass)...); err != nil {
		return err
	}
	if err := startProgram(ctx, filepath.Join(bin, "target-updater"), logFile, nil, append(common,
		"PORT="+port(updaterAddr), "UPDATE_SCHEDULE="+updateSchedule, "WATCH_INTERVAL="+watchInterval)...); err != nil {
		return err
	}
	if err := startProgram(ctx, filepath.Join(bin, "paas-proxy"), logFile, nil, "LISTEN_ADDR="+proxyAddr,
		"ALLOWED_DOMAINS="+appsDomain+","+paasDomain, "UPSTREAM_SCHEME=http", "UPSTREAM_ADDR="+addr(1)); err != nil {
		return err
	}
	for _, health := range []string{"http://" + brokerAddr + "/health", "http://" + updaterAddr + "/health", "http://" + proxyAddr + "/health"} {
		if err := waitHealthy(ctx, health); err != nil {
			return err
		}
	}

	// Cloud Controller's part: OSB requests sent here reach the broker, and
	// the fake CF API's bindings follow them.
	cc := &ccsim.Controller{Broker: "http://" + brokerAddr, Username: "cc", Password: brokerPass,
		ServiceID: serviceID, PlanID: planID, PlanGUID: plan.GUID, CF: cf,
		OrgGUID: org.GUID, SpaceGUID: space.GUID, OrgName: org.Name, SpaceName: space.Name}
	if _, err := serve(ctx, ccAddr, cc); err != nil {
		return err
	}

	// Prometheus' API, not its web UI: a build from the Go module has none.
	promNote := "Prometheus is not installed (apt-get install prometheus): the target files are the result"
	var upQuery string
	if promBin, err := exec.LookPath(prom); err == nil {
		if err := startPrometheus(ctx, promBin, dir, targetsPath, proxyAddr, promAddr, logFile); err != nil {
			return err
		}
		upQuery = "http://" + promAddr + "/api/v1/query?" + url.Values{"query": {`up{job="shop"}`}}.Encode()
		promNote = "Prometheus targets:  http://" + promAddr + "/api/v1/targets?state=active\n" +
			"  Prometheus query:    " + upQuery + "   (up{job=\"shop\"}, once bound)"
	}

	osb := fmt.Sprintf("curl -s -u cc:%s -H 'X-Broker-API-Version: 2.15' -H 'Content-Type: application/json'", brokerPass)
	instanceURL := "http://" + ccAddr + "/v2/service_instances/" + instanceID
	fmt.Printf(`
cf-app-discovery demo is running (logs: %s)

  fake CF API:         %s   (apps shop=%s, search=%s, worker=%s)
  broker:              http://%s   (its /metrics without credentials)
  target updater:      http://%s/metrics   (watches CF every %s, reconciles %s)
  paas-proxy:          http://%s
  Cloud Controller:    http://%s   (forwards OSB calls to the broker, as CC does)
  target files:        %s/active/
  %s

Provision (cf create-service):
  %s -X PUT '%s' -d '{"service_id":"%s","plan_id":"%s","organization_guid":"%s","space_guid":"%s"}'

Bind the shop app (cf bind-service shop my-prom):
  %s -X PUT '%s/service_bindings/%s' -d '{"service_id":"%s","plan_id":"%s","bind_resource":{"app_guid":"%s"}}'

See its targets, and scrape an instance through paas-proxy as Prometheus does:
  cat %s/active/%s.json
  curl -s -x http://%s 'http://shop.%s/metrics?cf_app_guid=%s&cf_app_instance=%s%%3A1&cf_app_instance_index=1'

%s
Unbind (cf unbind-service shop my-prom):
  %s -X DELETE '%s/service_bindings/%s?service_id=%s&plan_id=%s'

Ctrl-C stops everything.
`, filepath.Join(dir, "demo.log"), cfURL, shop.GUID, search.GUID, worker.GUID, brokerAddr, updaterAddr, watchInterval, updateSchedule, proxyAddr, ccAddr,
		targetsPath, promNote,
		osb, instanceURL, serviceID, planID, org.GUID, space.GUID,
		osb, instanceURL, bindingID, serviceID, planID, shop.GUID,
		targetsPath, shop.GUID, proxyAddr, appsDomain, shop.GUID, shop.GUID,
		deployCommands(cfURL, shop.GUID),
		osb, instanceURL, bindingID, serviceID, planID)

	if selfTest {
		return check(ctx, cc, cfURL, targetsPath, shop.GUID, proxyAddr, upQuery)
	}
	go follow(ctx, os.Stdout, "shop", filepath.Join(targetsPath, "active", shop.GUID+".json"), upQuery)
	<-ctx.Done()
	fmt.Println("\nstopping")
	return nil
}

// check runs the printed flow through the Cloud Controller stand-in and,
// when Prometheus runs, waits for the printed query to show shop up.
func check(ctx context.Context, cc *ccsim.Controller, cfURL, targetsPath, shop, proxyAddr, upQuery string) error {
	if r := cc.Provision(instanceID); r.Status != http.StatusCreated {
		return fmt.Errorf("provision answered %d: %s", r.Status, r.Raw)
	}
	if r := cc.Bind(instanceID, bindingID, shop); r.Status != http.StatusCreated {
		return fmt.Errorf("bind answered %d: %s", r.Status, r.Raw)
	}
	file := filepath.Join(targetsPath, "active", shop+".json")
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("no target file after bind: %w", err)
	}
	proxyURL, _ := url.Parse("http://" + proxyAddr)
	proxy := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := proxy.Get("http://shop." + appsDomain + "/metrics?cf_app_guid=" + shop + "&cf_app_instance=" + shop + "%3A1&cf_app_instance_index=1")
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "app_instance_info") {
		return fmt.Errorf("scrape through paas-proxy answered %d: %s", resp.StatusCode, body)
	}
	steps := "provision, bind, scrape through paas-proxy"
	if upQuery != "" {
		if err := waitUp(ctx, upQuery); err != nil {
			return err
		}
		steps += ", the Prometheus query"
	}
	if err := rollingDeploy(ctx, os.Stdout, cfURL, shop, file, upQuery); err != nil {
		return err
	}
	steps += ", a rolling deploy followed by the targets and unbind"
	if r := cc.Unbind(instanceID, bindingID); r.Status != http.StatusOK {
		return fmt.Errorf("unbind answered %d: %s", r.Status, r.Raw)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("target file still there after unbind: %v", err)
	}
	fmt.Printf("self-test: %s all worked\n", steps)
	return nil
}

// waitUp waits until Prometheus answers query, up of a job, with series
// that are all 1.
func waitUp(ctx context.Context, query string) error {
	var last string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(time.Second) {
		resp, err := http.Get(query)
		if err != nil {
			last = err.Error()
			continue
		}
		var answer struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if err != nil {
			last = err.Error()
			continue
		}
		up := len(answer.Data.Result) > 0
		for _, r := range answer.Data.Result {
			up = up && len(r.Value) == 2 && r.Value[1] == "1"
		}
		if up {
			return nil
		}
		last = fmt.Sprint(answer.Data.Result)
	}
	return fmt.Errorf("the printed query %s never showed every instance up (last answer: %s)", query, last)
}

func startPrometheus(ctx context.Context, promBin, dir, targetsPath, proxyAddr, promAddr string, log io.Writer) error {
	config := fmt.Sprintf(`global:
  scrape_interval: 5s
scrape_configs:
  - job_name: paas-apps
    scheme: http
    proxy_url: http://%s
    file_sd_configs:
      - files: ['%s/active/*.json']
        refresh_interval: 5s
`, proxyAddr, mustAbs(targetsPath))
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return err
	}
	return startProgram(ctx, promBin, log, []string{"--config.file=" + configPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "prometheus"), "--web.listen-address=" + promAddr})
}

// startProgram runs a program until ctx ends, in its own process group so
// that nothing it starts outlives the demo.
func startProgram(ctx context.Context, path string, log io.Writer, args []string, env ...string) error {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(env, "LOG_LEVEL=info", "PATH="+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w (run `make build` first)", path, err)
	}
	children.Add(1)
	go func() {
		defer children.Done()
		_ = cmd.Wait()
	}()
	return nil
}

// children are the programs the demo started.
var children sync.WaitGroup

// serve serves h on addr until ctx ends and returns its URL.
func serve(ctx context.Context, addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%w (is another demo running?)", err)
	}
	server := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = server.Serve(ln) }()
	go func() { <-ctx.Done(); _ = server.Close() }()
	return "http://" + addr, nil
}

func waitHealthy(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not become healthy (see the log)", url)
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func mustAbs(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return abs
}
