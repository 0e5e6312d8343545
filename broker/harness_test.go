package broker_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"

	"code.cloudfoundry.org/lager/v3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/broker"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

const (
	serviceID  = "5a1b2c3d-0000-4000-8000-00000000000a"
	planID     = "5a1b2c3d-0000-4000-8000-00000000000b"
	instanceID = "11111111-1111-4111-8111-111111111111"
	bindingID  = "22222222-2222-4222-8222-222222222222"
	binding2ID = "22222222-2222-4222-8222-333333333333"
	appGUID    = "33333333-3333-4333-8333-333333333333"
	app2GUID   = "44444444-4444-4444-8444-444444444444"
	spaceGUID  = "55555555-5555-4555-8555-555555555555"
	orgGUID    = "66666666-6666-4666-8666-666666666666"
	hiddenApp  = "77777777-7777-4777-8777-777777777777"
	unknownID  = "99999999-9999-4999-8999-999999999999"

	paasDomain     = "paas.example"
	monitoringUser = "prometheus-monitor"
	brokerUser     = "broker-user"
	brokerPass     = "broker-pass"
)

// startedApp and stoppedApp are the apps the fake CF API knows at first.
func startedApp() targets.App {
	return targets.App{GUID: appGUID, Name: "my-app", State: "STARTED", Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: 2}}, Org: "my-org", Space: "my-space",
		Routes: []targets.Route{{Host: "my-app", Domain: "apps.example.com", Protocol: "http1"}}}
}

// startedAppIn is startedApp, in another state.
func startedAppIn(state string) targets.App {
	a := startedApp()
	a.State = state
	return a
}

func stoppedApp() targets.App {
	return targets.App{GUID: app2GUID, Name: "stopped-app", State: "STOPPED", Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: 1}}, Org: "o", Space: "s"}
}

// response is an answer of the broker as Cloud Controller would read it.
type response struct {
	status int
	body   map[string]any
	raw    string
}

// harness is the real handler (brokerapi, auth, metrics) over a broker with
// a fake CF API and a directory store that can be told to fail, served on
// loopback and called the way Cloud Controller calls it.
type harness struct {
	cf      *fakeCF
	st      *failingStore
	dir     string
	server  *httptest.Server
	logs    *bytes.Buffer
	reg     *prometheus.Registry
	headers map[string]string
	// apps, when set before serve, replaces cf as the broker's AppLookup.
	apps broker.AppLookup
	// addressing, set before serve, is the broker's Addressing.
	addressing targets.Addressing
}

// newHarness arranges the collaborators; serve starts the broker on them,
// so that a test can swap one in between.
func newHarness() *harness {
	h := &harness{cf: newFakeCF(), dir: GinkgoT().TempDir(), logs: &bytes.Buffer{}, reg: prometheus.NewRegistry()}
	h.cf.setApp(startedApp())
	h.cf.setApp(stoppedApp())
	dirStore, err := store.NewDir(h.dir)
	Expect(err).NotTo(HaveOccurred())
	h.st = &failingStore{Store: dirStore}
	h.headers = map[string]string{
		"X-Broker-API-Version":              "2.15",
		"X-Broker-API-Originating-Identity": "cloudfoundry eyJ1c2VyX2lkIjoiYWJjIn0=",
		"X-Broker-API-Request-Identity":     "e26cea95-0000-4000-8000-000000000001",
		"Content-Type":                      "application/json",
		"Authorization":                     basicAuth(brokerUser, brokerPass),
	}
	return h
}

func (h *harness) serve() *harness {
	logger := lager.NewLogger("broker-test")
	logger.RegisterSink(lager.NewWriterSink(h.logs, lager.DEBUG))
	apps := h.apps
	if apps == nil {
		apps = h.cf
	}
	b := broker.New(broker.Options{
		Catalog: broker.Catalog{ServiceID: serviceID, ServiceName: "gds-prometheus", PlanID: planID, PlanName: "prometheus"},
		Store:   h.st, Apps: apps, Bindings: h.cf, PaaSDomain: paasDomain, MonitoringUser: monitoringUser,
		Logger: logger, Registerer: h.reg, Addressing: h.addressing,
	})
	h.server = httptest.NewServer(broker.NewHandler(b, logger, broker.Credentials{Username: brokerUser, Password: brokerPass}, h.reg, h.reg))
	DeferCleanup(h.server.Close)
	return h
}

func basicAuth(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}

// noRedirects shows the broker's own answer: Cloud Controller does not
// follow redirects, so a redirect is an answer to assert on.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// do sends a request with Cloud Controller's headers. body is JSON-encoded
// unless it is already []byte.
func (h *harness) do(method, path string, body any) response {
	var reader io.Reader
	if raw, ok := body.([]byte); ok {
		reader = bytes.NewReader(raw)
	} else if body != nil {
		data, err := json.Marshal(body)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.server.URL+path, reader)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects.Do(req)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	r := response{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

// bindBody is what Cloud Controller sends on `cf bind-service`.
func bindBody(app string) map[string]any {
	return map[string]any{
		"service_id": serviceID, "plan_id": planID, "app_guid": app,
		"bind_resource": map[string]any{"app_guid": app, "space_guid": spaceGUID},
		"context": map[string]any{"platform": "cloudfoundry", "organization_guid": orgGUID, "space_guid": spaceGUID,
			"organization_name": "my-org", "space_name": "my-space"},
	}
}

func bindingPath(binding string) string {
	return "/v2/service_instances/" + instanceID + "/service_bindings/" + binding
}

func (h *harness) bindWith(binding string, body any) response {
	return h.do("PUT", bindingPath(binding)+"?accepts_incomplete=true", body)
}

func (h *harness) bind(binding, app string) response {
	return h.bindWith(binding, bindBody(app))
}

func (h *harness) unbind(binding string) response {
	return h.do("DELETE", bindingPath(binding)+"?service_id="+serviceID+"&plan_id="+planID+"&accepts_incomplete=true", nil)
}

// files lists the store's objects as keys.
func (h *harness) files() []string {
	var out []string
	_ = filepath.WalkDir(h.dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(h.dir, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func (h *harness) read(key string) string {
	data, err := os.ReadFile(filepath.Join(h.dir, filepath.FromSlash(key)))
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return string(data)
}

func (h *harness) record(binding string) store.Binding {
	record, err := store.UnmarshalBinding([]byte(h.read("bindings/" + binding + ".json")))
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return record
}

// operations is cf_app_discovery_broker_operations_total{operation,outcome}.
func (h *harness) operations(operation, outcome string) float64 {
	families, err := h.reg.Gather()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "cf_app_discovery_broker_operations_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["operation"] == operation && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
