package httpsd_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"code.cloudfoundry.org/lager/v3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/broker"
	"github.com/alphagov/cf-app-discovery/httpsd"
)

const (
	osbUser     = "cloud-controller"
	osbPassword = "osb-secret"
)

var _ = Describe("Handler", func() {
	var (
		e    *endpoint
		keys []string
	)

	BeforeEach(func() {
		e = newEndpoint()
		keys = []string{
			putApp(e.st, app(1, "org-a", "space-1", 2)),
			putApp(e.st, app(2, "org-a", "space-2", 1)),
			putApp(e.st, app(3, "org-b", "space-1", 3)),
		}
		Expect(e.view.Refresh(context.Background())).To(Succeed())
	})

	// groupsOf returns the groups of the apps numbered ns, in order.
	groupsOf := func(ns ...int) []string {
		var out []string
		for _, n := range ns {
			body, _, err := e.st.Get(context.Background(), keys[n-1])
			Expect(err).NotTo(HaveOccurred())
			out = append(out, canonicalGroups(body)...)
		}
		return out
	}

	It("answers every group as JSON, with the view's age", func() {
		a := get(e.handler, httpsd.Path)
		Expect(a.groups()).To(Equal(groupsOf(1, 2, 3)))
		Expect(a.header.Get("Content-Encoding")).To(BeEmpty())
		Expect(a.header.Get(httpsd.AgeHeader)).To(Equal("0"))
		Expect(metric(e.reg, "cf_app_discovery_httpsd_requests_total", "outcome", "all", "code", "200")).To(Equal(1.0))
	})

	DescribeTable("refuses requests without the http_sd credentials",
		func(authorization string) {
			req := httptest.NewRequest(http.MethodGet, httpsd.Path, nil)
			if authorization != "" {
				req.Header.Set("Authorization", authorization)
			}
			a := serve(e.handler, req)
			Expect(a.status).To(Equal(http.StatusUnauthorized))
			Expect(a.header.Get("WWW-Authenticate")).To(HavePrefix("Basic "))
			Expect(string(a.body)).NotTo(ContainSubstring("targets"))
			Expect(metric(e.reg, "cf_app_discovery_httpsd_requests_total", "outcome", "unauthorized", "code", "401")).To(Equal(1.0))
		},
		Entry("no credentials", ""),
		Entry("a wrong password", basic(sdUser, "wrong")),
		Entry("a wrong username", basic("someone", sdPassword)),
		Entry("the password as username", basic(sdPassword, sdUser)),
		Entry("a password with a suffix", basic(sdUser, sdPassword+"x")),
		Entry("the OSB credentials", basic(osbUser, osbPassword)),
		Entry("not basic auth", "Bearer "+sdPassword),
	)

	Context("mounted beside the OSB API", func() {
		var server http.Handler

		BeforeEach(func() {
			reg := prometheus.NewRegistry()
			osb := broker.NewHandler(broker.New(broker.Options{Registerer: reg}), lager.NewLogger("test"),
				broker.Credentials{Username: osbUser, Password: osbPassword}, reg, reg)
			server = httpsd.Mount(e.handler, osb)
		})

		request := func(path, user, password string) int {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.SetBasicAuth(user, password)
			req.Header.Set("X-Broker-API-Version", "2.15")
			return serve(server, req).status
		}

		It("takes only its own credentials, and the OSB API only its own", func() {
			Expect(request(httpsd.Path, sdUser, sdPassword)).To(Equal(http.StatusOK))
			Expect(request(httpsd.Path, osbUser, osbPassword)).To(Equal(http.StatusUnauthorized))
			Expect(request("/v2/catalog", osbUser, osbPassword)).To(Equal(http.StatusOK))
			Expect(request("/v2/catalog", sdUser, sdPassword)).To(Equal(http.StatusUnauthorized))
		})

		It("leaves other paths, even close ones, to the OSB API", func() {
			Expect(request(httpsd.Path+"/", sdUser, sdPassword)).To(Equal(http.StatusNotFound))
			Expect(request("/v1/targets/../targets", sdUser, sdPassword)).To(Equal(http.StatusBadRequest))
		})
	})

	It("is not there without credentials", func() {
		off := httpsd.NewHandler(e.view, httpsd.Credentials{Username: sdUser}, nil)
		Expect(get(off, httpsd.Path).status).To(Equal(http.StatusNotFound))
		req := httptest.NewRequest(http.MethodGet, httpsd.Path, nil)
		req.SetBasicAuth("", "")
		Expect(serve(httpsd.NewHandler(e.view, httpsd.Credentials{}, nil), req).status).To(Equal(http.StatusNotFound))
	})

	It("answers only GET and HEAD", func() {
		req := httptest.NewRequest(http.MethodPost, httpsd.Path, strings.NewReader("[]"))
		req.SetBasicAuth(sdUser, sdPassword)
		a := serve(e.handler, req)
		Expect(a.status).To(Equal(http.StatusMethodNotAllowed))
		Expect(a.header.Get("Allow")).To(Equal("GET, HEAD"))

		req = httptest.NewRequest(http.MethodHead, httpsd.Path, nil)
		req.SetBasicAuth(sdUser, sdPassword)
		Expect(serve(e.handler, req).status).To(Equal(http.StatusOK))
	})

	DescribeTable("filters by org and space labels",
		func(query string, apps ...int) {
			a := get(e.handler, httpsd.Path+query)
			if len(apps) == 0 {
				Expect(a.groups()).To(BeEmpty())
				Expect(strings.TrimSpace(string(a.body))).To(Equal("[]"))
			} else {
				Expect(a.groups()).To(Equal(groupsOf(apps...)))
			}
			Expect(metric(e.reg, "cf_app_discovery_httpsd_requests_total", "outcome", "filtered", "code", "200")).To(Equal(1.0))
		},
		Entry("an org", "?org=org-a", 1, 2),
		Entry("a space, in every org", "?space=space-1", 1, 3),
		Entry("an org and a space", "?org=org-a&space=space-1", 1),
		Entry("a space given first", "?space=space-2&org=org-a", 2),
		Entry("an escaped name", "?org=org%2Da", 1, 2),
		Entry("an org with no groups", "?org=org-c"),
		Entry("a space of another org", "?org=org-b&space=space-2"),
	)

	It("filters the view as it is now, not as it was when the filter was first asked for", func() {
		Expect(get(e.handler, httpsd.Path+"?org=org-a").groups()).To(Equal(groupsOf(1, 2)))
		putApp(e.st, app(2, "org-a", "space-2", 3))
		putApp(e.st, app(3, "org-a", "space-1", 1))
		Expect(e.view.Refresh(context.Background())).To(Succeed())
		Expect(get(e.handler, httpsd.Path+"?org=org-a").groups()).To(Equal(groupsOf(1, 2, 3)))
		Expect(get(e.handler, httpsd.Path+"?org=org-a").groups()).To(HaveLen(2 + 3 + 1))
	})

	It("keeps the answers of different filters apart", func() {
		for range 2 {
			Expect(get(e.handler, httpsd.Path+"?org=org-a").groups()).To(Equal(groupsOf(1, 2)))
			Expect(get(e.handler, httpsd.Path+"?org=org-a&space=space-1").groups()).To(Equal(groupsOf(1)))
			Expect(get(e.handler, httpsd.Path+"?space=space-1").groups()).To(Equal(groupsOf(1, 3)))
			Expect(get(e.handler, httpsd.Path).groups()).To(Equal(groupsOf(1, 2, 3)))
		}
	})

	It("gives concurrent requests for the same filters the same answer", func() {
		const n = 8
		answers := make(chan answer, n)
		for range n {
			go func() {
				defer GinkgoRecover()
				answers <- get(e.handler, httpsd.Path+"?space=space-1", "Accept-Encoding", "gzip")
			}()
		}
		first := <-answers
		Expect(first.groups()).To(Equal(groupsOf(1, 3)))
		for range n - 1 {
			Expect((<-answers).body).To(Equal(first.body))
		}
	})

	DescribeTable("refuses filters it does not understand, rather than serve every group",
		func(query string) {
			a := get(e.handler, httpsd.Path+query)
			Expect(a.status).To(Equal(http.StatusBadRequest), string(a.body))
			Expect(a.header.Get("Content-Type")).To(Equal("application/json"))
			Expect(metric(e.reg, "cf_app_discovery_httpsd_requests_total", "outcome", "bad-request", "code", "400")).To(Equal(1.0))
		},
		Entry("another parameter", "?organization=org-a"),
		Entry("an empty org", "?org="),
		Entry("an org given twice", "?org=org-a&org=org-b"),
		Entry("a malformed query", "?org=%zz"),
	)

	DescribeTable("gzips the answer when the client accepts it",
		func(acceptEncoding, query string, gzipped bool) {
			plain := get(e.handler, httpsd.Path+query)
			a := get(e.handler, httpsd.Path+query, "Accept-Encoding", acceptEncoding)
			Expect(a.header.Get("Vary")).To(Equal("Accept-Encoding"))
			if gzipped {
				Expect(a.header.Get("Content-Encoding")).To(Equal("gzip"))
				zr, err := gzip.NewReader(bytes.NewReader(a.body))
				Expect(err).NotTo(HaveOccurred())
				body, err := io.ReadAll(zr)
				Expect(err).NotTo(HaveOccurred())
				Expect(body).To(Equal(plain.body))
			} else {
				Expect(a.header.Get("Content-Encoding")).To(BeEmpty())
				Expect(a.body).To(Equal(plain.body))
			}
		},
		Entry("gzip, as Prometheus sends it", "gzip", "", true),
		Entry("gzip, filtered", "gzip", "?org=org-b", true),
		Entry("among others", "br;q=1.0, gzip;q=0.5", "", true),
		Entry("x-gzip", "x-gzip", "", true),
		Entry("any coding", "*", "", true),
		Entry("any coding but gzip", "*, gzip;q=0", "", false),
		Entry("gzip refused", "gzip;q=0", "", false),
		Entry("gzip refused, filtered", "gzip;q=0", "?org=org-b", false),
		Entry("another coding", "br", "", false),
		Entry("identity", "identity", "", false),
		Entry("a malformed q-value", "gzip;q=x", "", false),
	)

	It("serves Go's default client, which asks for gzip and unzips transparently, over HTTP", func() {
		server := httptest.NewServer(e.handler)
		DeferCleanup(server.Close)
		req, err := http.NewRequest(http.MethodGet, server.URL+httpsd.Path, nil)
		Expect(err).NotTo(HaveOccurred())
		req.SetBasicAuth(sdUser, sdPassword)
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		Expect(resp.Uncompressed).To(BeTrue(), "the transport asked for gzip and got it")
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		Expect(canonicalGroups(body)).To(Equal(groupsOf(1, 2, 3)))
	})

	It("answers 503 with a description before the view has read the bucket", func() {
		fresh := newEndpoint()
		a := get(fresh.handler, httpsd.Path)
		Expect(a.status).To(Equal(http.StatusServiceUnavailable))
		Expect(string(a.body)).To(ContainSubstring("not been read"))
		Expect(metric(fresh.reg, "cf_app_discovery_httpsd_requests_total", "outcome", "not-ready", "code", "503")).To(Equal(1.0))
	})
})

func basic(user, password string) string {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(user, password)
	return req.Header.Get("Authorization")
}
