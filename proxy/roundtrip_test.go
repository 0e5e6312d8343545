package proxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/proxy"
	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/targets"
)

// fakeRouter answers like the CF router in front of one app with a number of
// instances: 200 only for a request naming one of them whose bearer token is
// the app guid, else 404 with X-Cf-Routererror: unknown_route.
type fakeRouter struct {
	host      string
	guid      string
	instances int

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
	instance := r.Header.Get(scrape.HeaderAppInstance)
	known := false
	for i := range f.instances {
		known = known || instance == (scrape.Params{AppGUID: f.guid, Index: i}).Instance()
	}
	if r.Host != f.host || !known || r.Header.Get(scrape.HeaderAppInstanceCopy) != instance ||
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
	const guid = "6a1c4c1e-2b1d-4e3f-9a8b-7c6d5e4f3a2b"
	var (
		router *fakeRouter
		client *http.Client
	)

	BeforeEach(func() {
		router = &fakeRouter{host: "my-app.example.com", guid: guid, instances: 3}
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
		}, "apps.example.com", targets.AppAddressing)
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
		}, "apps.example.com", targets.AppAddressing)
		var groups []targets.TargetGroup
		Expect(json.Unmarshal(file, &groups)).To(Succeed())
		resp, err := client.Get(prometheusScrapeURL(groups[0]))
		Expect(err).NotTo(HaveOccurred())
		Expect(resp.Body.Close()).To(Succeed())
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(router.requests()[0].RequestURI).To(Equal("/api/metrics"))
	})
})
