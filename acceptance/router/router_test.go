package router_test

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/router"
	"github.com/alphagov/cf-app-discovery/scrape"
	"github.com/alphagov/cf-app-discovery/targets"
)

func TestRouter(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Router")
}

const guid = "0d7c1a3e-5b2f-4e8a-9c6d-1f2e3a4b5c6d"

// apps knows one started app with two instances.
type apps struct{}

func (apps) App(_ context.Context, appGUID string) (targets.App, error) {
	if appGUID != guid {
		return targets.App{}, errors.New("no such app")
	}
	return targets.App{GUID: guid, Name: "shop", State: "STARTED", Processes: []targets.Process{{GUID: guid, Instances: 2}}}, nil
}

var _ = Describe("Router", func() {
	var req *http.Request

	BeforeEach(func() {
		req = httptest.NewRequest(http.MethodGet, "http://shop.paas.example/metrics", nil)
		req.Header.Set(scrape.HeaderAppInstance, guid+":1")
		req.Header.Set("Authorization", "Bearer "+guid)
	})

	serve := func() *http.Response {
		rec := httptest.NewRecorder()
		(&router.Router{Apps: apps{}, PaaSDomain: "paas.example"}).ServeHTTP(rec, req)
		return rec.Result()
	}

	// body reads an answer, decompressing what Content-Encoding says.
	body := func(resp *http.Response) string {
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			z, err := gzip.NewReader(resp.Body)
			Expect(err).NotTo(HaveOccurred())
			r = z
		}
		b, err := io.ReadAll(r)
		Expect(err).NotTo(HaveOccurred())
		return string(b)
	}

	DescribeTable("answers in the format and compression the scrape asks for",
		func(accept, acceptEncoding, contentType, contentEncoding string) {
			req.Header.Set("Accept", accept)
			req.Header.Set("Accept-Encoding", acceptEncoding)
			resp := serve()
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(resp.Header.Get("Content-Type")).To(HavePrefix(contentType))
			Expect(resp.Header.Get("Content-Encoding")).To(Equal(contentEncoding))
			Expect(body(resp)).To(ContainSubstring(`app_instance_info{index="1",name="shop"} 1`))
		},
		Entry("Prometheus 3's default Accept: OpenMetrics, gzipped",
			"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,application/openmetrics-text;version=0.0.1;q=0.9,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.8,text/plain;version=0.0.4;q=0.7,*/*;q=0.6",
			"gzip", "application/openmetrics-text; version=1.0.0", "gzip"),
		Entry("text only, uncompressed", "text/plain;version=0.0.4;q=1,*/*;q=0.1", "", "text/plain; version=0.0.4", ""),
		Entry("no Accept at all: text", "", "gzip", "text/plain; version=0.0.4", "gzip"),
	)

	Context("when the instance does not exist", func() {
		BeforeEach(func() { req.Header.Set(scrape.HeaderAppInstance, guid+":2") })

		It("answers 404 unknown_route", func() {
			resp := serve()
			Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
			Expect(resp.Header.Get(scrape.HeaderRouterError)).To(Equal("unknown_route"))
		})
	})

	Context("when the bearer token is not the app's guid", func() {
		BeforeEach(func() { req.Header.Set("Authorization", "Bearer someone-else") })

		It("answers 401", func() {
			Expect(serve().StatusCode).To(Equal(http.StatusUnauthorized))
		})
	})
})
