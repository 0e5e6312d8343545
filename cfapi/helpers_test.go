package cfapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
)

const planCatalogID = "prometheus-plan"

// testCFConfig keeps retry waits short so that the specs run quickly.
func testCFConfig(server *fakecf.Server, reg prometheus.Registerer) cfapi.Config {
	return cfapi.Config{
		API:            server.URL(),
		Username:       fakecf.DefaultUsername,
		Password:       fakecf.DefaultPassword,
		PlanID:         planCatalogID,
		Registerer:     reg,
		MaxAttempts:    3,
		RetryBaseDelay: time.Millisecond,
		RetryMaxDelay:  5 * time.Millisecond,
		AttemptTimeout: 2 * time.Second,
	}
}

// counterValue reads one series of a counter from a registry (-1 if absent).
func counterValue(reg *prometheus.Registry, name string, labels map[string]string) float64 {
	families, err := reg.Gather()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// cfRequests is the client's count of requests to an endpoint answered
// with code (0 when there were none).
func cfRequests(reg *prometheus.Registry, endpoint string, code int) float64 {
	return max(counterValue(reg, "cf_app_discovery_cf_requests_total", map[string]string{"endpoint": endpoint, "code": strconv.Itoa(code)}), 0)
}

// fakeCF is a fake CF API with a small fleet, and a client of it.
type fakeCF struct {
	ctx    context.Context
	server *fakecf.Server
	pop    fakecf.Population
	reg    *prometheus.Registry
	cfg    cfapi.Config
	cf     *cfapi.Client
	fleet  fakecf.Fleet
}

// useFakeCF gives each spec of the container it is called in a new fake CF
// API and a client of it. The fleet is populated and the client built in
// JustBeforeEach, so that a BeforeEach can change both.
func useFakeCF() *fakeCF {
	f := &fakeCF{}
	BeforeEach(func() {
		f.ctx = context.Background()
		f.server = fakecf.New(fakecf.Options{})
		DeferCleanup(f.server.Close)
		f.reg = prometheus.NewRegistry()
		f.cfg = testCFConfig(f.server, f.reg)
		f.fleet = fakecf.Fleet{Orgs: 2, SpacesPerOrg: 2, Apps: 40, Bound: 20, ExtraRoutes: 5, PlanCatalogID: planCatalogID}
	})
	JustBeforeEach(func() {
		var err error
		f.pop, err = f.server.Populate(f.fleet)
		Expect(err).NotTo(HaveOccurred())
		f.cf, err = cfapi.New(f.ctx, f.cfg)
		Expect(err).NotTo(HaveOccurred())
	})
	return f
}

// tamper changes what the fake CF API sees and says.
type tamper struct {
	// before, if set, sees each request before the fake does.
	before func(r *http.Request)
	// edit, if set, may rewrite the JSON body of each answer.
	edit func(r *http.Request, body []byte) []byte
}

// tampered serves the fake CF API through t and returns the URL to give the
// client. Token requests go to the fake itself, which the API root names as
// UAA.
func tampered(server *fakecf.Server, t tamper) string {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer GinkgoRecover()
		if t.before != nil {
			t.before(r)
		}
		rec := httptest.NewRecorder()
		server.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if t.edit != nil {
			body = t.edit(r, body)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}))
	DeferCleanup(proxy.Close)
	return proxy.URL
}

// editPage rewrites the top-level keys of a listing's page; a body that is
// not a JSON object stays as it is.
func editPage(body []byte, edit func(page map[string]json.RawMessage)) []byte {
	var page map[string]json.RawMessage
	if json.Unmarshal(body, &page) != nil {
		return body
	}
	edit(page)
	out, err := json.Marshal(page)
	if err != nil {
		return body
	}
	return out
}
