package httpsd_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/alphagov/cf-app-discovery/httpsd"
)

const (
	sdUser     = "prometheus"
	sdPassword = "sd-secret"
)

// answer is what a client of the endpoint got.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// get asks h for target with the http_sd credentials and the given headers.
func get(h http.Handler, target string, headers ...string) answer {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.SetBasicAuth(sdUser, sdPassword)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return serve(h, req)
}

func serve(h http.Handler, req *http.Request) answer {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return answer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// groups decodes an answer of 200, gunzipping it when it says so, into one
// canonical JSON line per group (object keys sorted), in the answer's
// order.
func (a answer) groups() []string {
	ExpectWithOffset(1, a.status).To(Equal(http.StatusOK), string(a.body))
	ExpectWithOffset(1, a.header.Get("Content-Type")).To(Equal("application/json"))
	body := a.body
	if a.header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		body, err = io.ReadAll(zr)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
	}
	return canonicalGroups(body)
}

// canonicalGroups re-encodes a JSON array of groups, one line per group.
func canonicalGroups(body []byte) []string {
	var groups []map[string]any
	ExpectWithOffset(2, json.Unmarshal(body, &groups)).To(Succeed(), string(body))
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		line, err := json.Marshal(g)
		ExpectWithOffset(2, err).NotTo(HaveOccurred())
		out = append(out, string(line))
	}
	return out
}

// sorted returns lines sorted, for comparisons that ignore order.
func sorted(lines []string) []string {
	return slices.Sorted(slices.Values(lines))
}

// metric returns the value of the series of name whose labels include
// labels (name, value pairs), or fails.
func metric(reg *prometheus.Registry, name string, labels ...string) float64 {
	families, err := reg.Gather()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	Fail("no series " + name)
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// endpoint is a view over a fake store and its handler, with the
// registry and clock they use.
type endpoint struct {
	st      *fakeStore
	view    *httpsd.View
	handler *httpsd.Handler
	reg     *prometheus.Registry
	clock   *clock
}

func newEndpoint() *endpoint {
	e := &endpoint{st: newFakeStore(), reg: prometheus.NewRegistry(), clock: newClock()}
	e.view = httpsd.NewView(httpsd.ViewOptions{Store: e.st, Registerer: e.reg, Now: e.clock.now})
	e.handler = httpsd.NewHandler(e.view, httpsd.Credentials{Username: sdUser, Password: sdPassword}, e.reg)
	return e
}
