package proxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/proxy"
	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/targets"
)

// fakeRouter answers like the CF router in front of one app with a number of
// instances, and web processes with theirs: 200 only for a request naming
// one of them whose bearer token is the app guid, else 404 with
// X-Cf-Routererror: unknown_route. Like the router, it routes on
// X-CF-APP-INSTANCE when a request has it, and on X-CF-PROCESS-INSTANCE
// only when it has not.
type fakeRouter struct {
	host      string
	guid      string
	instances int
	processes map[string]int // web process guid: its number of instances

	mu   sync.Mutex
	seen []seenRequest
}

func (f *fakeRouter) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func (f *fakeRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone()})
	f.mu.Unlock()
	name, copyName := scrape.HeaderAppInstance, scrape.HeaderAppInstanceCopy
	if r.Header.Get(name) == "" {
		name, copyName = scrape.HeaderProcessInstance, scrape.HeaderProcessInstanceCopy
	}
	instance := r.Header.Get(name)
	known := false
	for i := range f.instances {
		known = known || name == scrape.HeaderAppInstance && instance == (scrape.Params{AppGUID: f.guid, Index: i}).Instance()
	}
	for process, n := range f.processes {
		for i := range n {
			known = known || name == scrape.HeaderProcessInstance && instance == (scrape.Params{AppGUID: f.guid, Index: i, ProcessGUID: process}).ProcessInstance()
		}
	}
	if r.Host != f.host || !known || r.Header.Get(copyName) != instance ||
		r.Header.Get("Authorization") != "Bearer "+f.guid {
		w.Header().Set(scrape.HeaderRouterError, "unknown_route")
		w.WriteHeader(http.StatusNotFound)
		return
	}
	_, _ = io.WriteString(w, "# instance "+instance+"\nup 1\n")
}

// prometheusScrapeURL builds the URL Prometheus scrapes for a target group:
// the target address, __metrics_path__ (default /metrics), and each
// __param_<x> label as query parameter x (scrape.go's target URL).
func prometheusScrapeURL(group targets.TargetGroup) string {
	Expect(group.Targets).To(HaveLen(1))
	path := group.Labels["__metrics_path__"]
	if path == "" {
		path = "/metrics"
	}
	params := url.Values{}
	for name, value := range group.Labels {
		if x, ok := strings.CutPrefix(name, "__param_"); ok {
			params.Set(x, value)
		}
	}
	return (&url.URL{Scheme: "http", Host: group.Targets[0], Path: path, RawQuery: params.Encode()}).String()
}

var _ = Describe("A scrape through the shared contract", func() {
	const (
		guid       = "6a1c4c1e-2b1d-4e3f-9a8b-7c6d5e4f3a2b"
		oldProcess = "0c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"
		newProcess = "f1e2d3c4-b5a6-4978-8a1b-2c3d4e5f6a7b"
	)
	var (
		router *fakeRouter
		client *http.Client
	)

	BeforeEach(func() {
		router = &fakeRouter{host: "my-app.example.com", guid: guid, instances: 3, processes: map[string]int{oldProcess: 3, newProcess: 1}}
		backend := httptest.NewServer(router)
		DeferCleanup(backend.Close)
		p, _ := newProxy(proxy.Options{UpstreamScheme: "http", UpstreamAddr: backend.Listener.Addr().String()}, nil)
		DeferCleanup(p.CloseIdleConnections)
		client = proxyClient("http://" + startProxy(p))
	})

	It("reaches each instance of a rendered target file with its header and token", func() {
		file := targets.Render(targets.App{
			GUID: guid, Name: "my-app", State: "STARTED", Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: 3}}, Org: "org", Space: "space",
			Routes: []targets.Route{{Host: "my-app", Domain: "example.com", Protocol: "http1"}},
		}, "apps.example.com")
		var groups []targets.TargetGroup
		Expect(json.Unmarshal(file, &groups)).To(Succeed())
		Expect(groups).To(HaveLen(3))

		for i, group := range groups {
			scrapeURL := prometheusScrapeURL(group)
			Expect(scrapeURL).To(ContainSubstring("cf_app_instance=" + guid + "%3A"))
			resp, err := client.Get(scrapeURL)
			Expect(err).NotTo(HaveOccurred())
			body, _ := io.ReadAll(resp.Body)
			Expect(resp.Body.Close()).To(Succeed())
			Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s: %s", scrapeURL, body)
			Expect(string(body)).To(ContainSubstring("# instance " + group.Labels["instance"]))

			seen := router.requests()[i]
			Expect(seen.RequestURI).To(Equal("/metrics"))
			Expect(seen.Header.Get(scrape.HeaderAppInstance)).To(Equal(guid + ":" + group.Labels["__param_cf_app_instance_index"]))
			Expect(seen.Header.Get("Authorization")).To(Equal("Bearer " + guid))
		}
		Expect(router.requests()).To(HaveLen(3))
	})

	It("reaches each instance of both web processes of an app during a rolling deployment", func() {
		for _, process := range []string{oldProcess, newProcess} {
			for i := range router.processes[process] {
				params := scrape.Params{AppGUID: guid, Index: i, ProcessGUID: process}
				scrapeURL := prometheusScrapeURL(targets.TargetGroup{Targets: []string{"my-app.example.com"}, Labels: params.Labels()})
				resp, err := client.Get(scrapeURL)
				Expect(err).NotTo(HaveOccurred())
				body, _ := io.ReadAll(resp.Body)
				Expect(resp.Body.Close()).To(Succeed())
				Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s: %s", scrapeURL, body)
				Expect(string(body)).To(ContainSubstring("# instance " + process + ":" + strconv.Itoa(i) + "\n"))

				seen := router.requests()[len(router.requests())-1]
				Expect(seen.Header).NotTo(HaveKey("X-Cf-App-Instance"), "the router would route on it instead")
				Expect(seen.Header).NotTo(HaveKey("Xx-Cf-App-Instance"))
				Expect(seen.Header.Get("Authorization")).To(Equal("Bearer " + guid))
			}
		}
		Expect(router.requests()).To(HaveLen(4))
	})

	It("passes the router's unknown_route back for a process instance the app does not have", func() {
		resp, err := client.Get("http://my-app.example.com/metrics?" + scrapeQuery(guid, "1") + "&cf_process_instance=" + newProcess + "%3A1")
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Body.Close()).To(Succeed())
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
		Expect(resp.Header.Get(scrape.HeaderRouterError)).To(Equal("unknown_route"))
	})

	It("passes the router's unknown_route back for an instance the app does not have", func() {
		resp, err := client.Get("http://my-app.example.com/metrics?" + scrapeQuery(guid, "3"))
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Body.Close()).To(Succeed())
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
		Expect(resp.Header.Get(scrape.HeaderRouterError)).To(Equal("unknown_route"))
	})

	It("keeps a route's metrics path", func() {
		file := targets.Render(targets.App{
			GUID: guid, Name: "my-app", State: "STARTED", Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: 1}},
			Routes: []targets.Route{{Host: "my-app", Domain: "example.com", Path: "/api", Protocol: "http1"}},
		}, "apps.example.com")
		var groups []targets.TargetGroup
		Expect(json.Unmarshal(file, &groups)).To(Succeed())
		resp, err := client.Get(prometheusScrapeURL(groups[0]))
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Body.Close()).To(Succeed())
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(router.requests()[0].RequestURI).To(Equal("/api/metrics"))
	})
})
