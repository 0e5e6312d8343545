package router_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/acceptance/router"
)

var answeredBy = regexp.MustCompile(`(?m)^app_instance_info\{index="(\d+)",name="([^"]*)",process="([^"]*)"\} 1$`)

var _ = Describe("Router", func() {
	var (
		cf  *fakecf.Server
		rt  *router.Router
		app fakecf.App
		// The app's web processes while a rolling deployment runs: the old
		// one with 2 instances and the new one with 1.
		processes map[string]string
	)

	BeforeEach(func() {
		cf = fakecf.New(fakecf.Options{})
		DeferCleanup(cf.Close)
		org := cf.AddOrg(fakecf.Org{Name: "org"})
		space, err := cf.AddSpace(fakecf.Space{Name: "space", OrgGUID: org.GUID})
		Expect(err).NotTo(HaveOccurred())
		domain := cf.AddDomain(fakecf.Domain{Name: "apps.example.com"})
		app, err = cf.AddApp(fakecf.App{Name: "shop", SpaceGUID: space.GUID, Instances: 2})
		Expect(err).NotTo(HaveOccurred())
		_, err = cf.AddRoute(fakecf.Route{Host: "shop", DomainGUID: domain.GUID, Destinations: []fakecf.Destination{{AppGUID: app.GUID}}})
		Expect(err).NotTo(HaveOccurred())
		d, err := cf.Deploy(app.GUID, fakecf.Rolling)
		Expect(err).NotTo(HaveOccurred())
		processes = map[string]string{"app": app.GUID, "old": app.GUID, "new": d.NewProcessGUID, "unknown": fakecf.GUID("process", 404)}
		rt = &router.Router{Apps: cf, PaaSDomain: "paas.example.com"}
	})

	// expand replaces a process name in a header value ("new:0") by its
	// guid.
	expand := func(v string) string {
		name, index, found := strings.Cut(v, ":")
		guid, ok := processes[name]
		switch {
		case !ok:
			return v
		case found:
			return guid + ":" + index
		}
		return guid
	}

	// expandMessage replaces the quoted process names in a message.
	expandMessage := func(m string) string {
		for name, guid := range processes {
			m = strings.ReplaceAll(m, "('"+name+"')", "('"+guid+"')")
		}
		return m
	}

	// scrape sends a scrape of shop's /metrics with the app's token and
	// these headers ("header", "value" pairs; names in values expanded).
	scrape := func(host string, kv ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "http://"+host+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+app.GUID)
		for i := 0; i < len(kv); i += 2 {
			req.Header.Set(kv[i], expand(kv[i+1]))
		}
		resp := httptest.NewRecorder()
		rt.ServeHTTP(resp, req)
		return resp
	}

	// answered is "old:1" for the instance that answered.
	answered := func(resp *httptest.ResponseRecorder) string {
		m := answeredBy.FindStringSubmatch(resp.Body.String())
		if m == nil || m[2] != "shop" {
			return "no instance answered: " + resp.Body.String()
		}
		for name, guid := range processes {
			if guid == m[3] && name != "app" {
				return name + ":" + m[1]
			}
		}
		return m[3] + ":" + m[1]
	}

	DescribeTable("picks the instance a header names",
		func(header, value, want string) {
			resp := scrape("shop.apps.example.com", header, value)
			Expect(resp.Code).To(Equal(http.StatusOK), resp.Body.String())
			Expect(resp.Header().Get("Content-Type")).To(HavePrefix("text/plain; version=0.0.4"))
			Expect(answered(resp)).To(Equal(want))
		},
		Entry("app header, an index both processes have: the newest process", router.AppInstanceHeader, "app:0", "new:0"),
		Entry("app header, an index only the old process has", router.AppInstanceHeader, "app:1", "old:1"),
		Entry("process header, the old process", router.ProcessInstanceHeader, "old:0", "old:0"),
		Entry("process header, the old process's second instance", router.ProcessInstanceHeader, "old:1", "old:1"),
		Entry("process header, the new process", router.ProcessInstanceHeader, "new:0", "new:0"),
		Entry("process header without an index, a one-instance process", router.ProcessInstanceHeader, "new", "new:0"),
	)

	DescribeTable("answers in the format and compression the scrape asks for",
		func(accept, acceptEncoding, contentType, contentEncoding string) {
			resp := scrape("shop.apps.example.com", router.AppInstanceHeader, "app:1", "Accept", accept, "Accept-Encoding", acceptEncoding)
			Expect(resp.Code).To(Equal(http.StatusOK))
			Expect(resp.Header().Get("Content-Type")).To(HavePrefix(contentType))
			Expect(resp.Header().Get("Content-Encoding")).To(Equal(contentEncoding))
			var body io.Reader = resp.Body
			if contentEncoding == "gzip" {
				z, err := gzip.NewReader(resp.Body)
				Expect(err).NotTo(HaveOccurred())
				body = z
			}
			text, err := io.ReadAll(body)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(text)).To(MatchRegexp(`app_instance_info\{index="1",name="shop",process="[0-9a-f-]+"\} 1`))
		},
		Entry("Prometheus 3's default Accept: OpenMetrics, gzipped",
			"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,application/openmetrics-text;version=0.0.1;q=0.9,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.8,text/plain;version=0.0.4;q=0.7,*/*;q=0.6",
			"gzip", "application/openmetrics-text; version=1.0.0", "gzip"),
		Entry("text only, uncompressed", "text/plain;version=0.0.4;q=1,*/*;q=0.1", "", "text/plain; version=0.0.4", ""),
		Entry("no Accept at all: text", "", "gzip", "text/plain; version=0.0.4", "gzip"),
	)

	It("spreads requests over a process's instances when the process header has no index", func() {
		seen := map[string]int{}
		for range 4 {
			seen[answered(scrape("shop.apps.example.com", router.ProcessInstanceHeader, "old"))]++
		}
		Expect(seen).To(Equal(map[string]int{"old:0": 2, "old:1": 2}))
	})

	DescribeTable("reads only the app header when both are present",
		func(processHeader, want string) {
			resp := scrape("shop.apps.example.com", router.AppInstanceHeader, "app:1", router.ProcessInstanceHeader, processHeader)
			Expect(resp.Code).To(Equal(http.StatusOK), resp.Body.String())
			Expect(answered(resp)).To(Equal(want))
		},
		Entry("a process header naming another instance", "new:0", "old:1"),
		Entry("a malformed process header", "not-a-guid", "old:1"),
		Entry("a process header naming no instance", "unknown:7", "old:1"),
	)

	DescribeTable("answers 400 with the router's error",
		func(host string, kv []string, routerError, message string) {
			resp := scrape(host, kv...)
			Expect(resp.Code).To(Equal(http.StatusBadRequest))
			Expect(resp.Header().Get(router.RouterErrorHeader)).To(Equal(routerError))
			Expect(resp.Body.String()).To(Equal("400 Bad Request: " + expandMessage(message) + "\n"))
		},
		Entry("an index the app does not have", "shop.apps.example.com", []string{router.AppInstanceHeader, "app:2"},
			router.UnknownRoute, "Requested instance ('2') with guid ('app') does not exist for route ('shop.apps.example.com')"),
		Entry("an unknown app", "shop.apps.example.com", []string{router.AppInstanceHeader, "unknown:0"},
			router.UnknownRoute, "Requested instance ('0') with guid ('unknown') does not exist for route ('shop.apps.example.com')"),
		Entry("a host that is not the app's", "other.apps.example.com", []string{router.AppInstanceHeader, "app:0"},
			router.UnknownRoute, "Requested instance ('0') with guid ('app') does not exist for route ('other.apps.example.com')"),
		Entry("an index the process does not have", "shop.apps.example.com", []string{router.ProcessInstanceHeader, "new:1"},
			router.UnknownRoute, "Requested instance ('1') with process guid ('new') does not exist for route ('shop.apps.example.com')"),
		Entry("an unknown process", "shop.apps.example.com", []string{router.ProcessInstanceHeader, "unknown"},
			router.UnknownRoute, "Requested instance with process guid ('unknown') does not exist for route ('shop.apps.example.com')"),
		Entry("an app header without an index", "shop.apps.example.com", []string{router.AppInstanceHeader, "app"},
			router.InvalidAppInstanceHeader, "Invalid X-CF-App-Instance Header"),
		Entry("an app header with a negative index", "shop.apps.example.com", []string{router.AppInstanceHeader, "app:-1"},
			router.InvalidAppInstanceHeader, "Invalid X-CF-App-Instance Header"),
		Entry("an app header with an upper-case guid", "shop.apps.example.com", []string{router.AppInstanceHeader, strings.ToUpper(fakecf.GUID("app", 1)) + ":0"},
			router.InvalidAppInstanceHeader, "Invalid X-CF-App-Instance Header"),
		Entry("a malformed app header beside a good process header", "shop.apps.example.com",
			[]string{router.AppInstanceHeader, "app:x", router.ProcessInstanceHeader, "new:0"},
			router.InvalidAppInstanceHeader, "Invalid X-CF-App-Instance Header"),
		Entry("a process header with an empty index", "shop.apps.example.com", []string{router.ProcessInstanceHeader, "new:"},
			router.InvalidProcessInstanceHeader, "Invalid X-CF-Process-Instance Header"),
		Entry("a process header that is not a guid", "shop.apps.example.com", []string{router.ProcessInstanceHeader, "shop"},
			router.InvalidProcessInstanceHeader, "Invalid X-CF-Process-Instance Header"),
	)

	It("answers 404 unknown_route to a request that names no instance", func() {
		resp := scrape("shop.apps.example.com")
		Expect(resp.Code).To(Equal(http.StatusNotFound))
		Expect(resp.Header().Get(router.RouterErrorHeader)).To(Equal(router.UnknownRoute))
	})

	It("reaches the app on its default route", func() {
		resp := scrape("shop.paas.example.com:443", router.AppInstanceHeader, "app:0")
		Expect(answered(resp)).To(Equal("new:0"))
	})

	It("does not route internal or tcp routes", func() {
		internal := cf.AddDomain(fakecf.Domain{Name: "apps.internal", Internal: true})
		tcp := cf.AddDomain(fakecf.Domain{Name: "tcp.example.com", TCP: true})
		for _, r := range []fakecf.Route{
			{Host: "shop", DomainGUID: internal.GUID},
			{DomainGUID: tcp.GUID, Protocol: fakecf.TCP, Port: 1024},
		} {
			r.Destinations = []fakecf.Destination{{AppGUID: app.GUID}}
			_, err := cf.AddRoute(r)
			Expect(err).NotTo(HaveOccurred())
		}
		for _, host := range []string{"shop.apps.internal", "tcp.example.com"} {
			resp := scrape(host, router.AppInstanceHeader, "app:0")
			Expect(resp.Code).To(Equal(http.StatusBadRequest), host)
			Expect(resp.Header().Get(router.RouterErrorHeader)).To(Equal(router.UnknownRoute), host)
		}
	})

	It("routes nothing to a stopped app", func() {
		Expect(cf.StopApp(app.GUID)).To(Succeed())
		resp := scrape("shop.apps.example.com", router.AppInstanceHeader, "app:0")
		Expect(resp.Code).To(Equal(http.StatusBadRequest))
		Expect(resp.Header().Get(router.RouterErrorHeader)).To(Equal(router.UnknownRoute))
	})

	It("follows the deployment: after it the old process is gone", func() {
		_, err := cf.FinishDeployment(app.GUID)
		Expect(err).NotTo(HaveOccurred())
		Expect(answered(scrape("shop.apps.example.com", router.AppInstanceHeader, "app:1"))).To(Equal("new:1"))
		resp := scrape("shop.apps.example.com", router.ProcessInstanceHeader, "old:0")
		Expect(resp.Code).To(Equal(http.StatusBadRequest))
	})

	It("serves metrics only to the app's bearer token, and only on a metrics path", func() {
		req := httptest.NewRequest(http.MethodGet, "http://shop.apps.example.com/metrics", nil)
		req.Header.Set(router.AppInstanceHeader, app.GUID+":0")
		req.Header.Set("Authorization", "Bearer "+fakecf.GUID("app", 9))
		resp := httptest.NewRecorder()
		rt.ServeHTTP(resp, req)
		Expect(resp.Code).To(Equal(http.StatusUnauthorized))

		req = httptest.NewRequest(http.MethodGet, "http://shop.apps.example.com/health", nil)
		req.Header.Set(router.AppInstanceHeader, app.GUID+":0")
		req.Header.Set("Authorization", "Bearer "+app.GUID)
		resp = httptest.NewRecorder()
		rt.ServeHTTP(resp, req)
		Expect(resp.Code).To(Equal(http.StatusNotFound))
		Expect(resp.Header().Get(router.RouterErrorHeader)).To(BeEmpty())
	})
})
