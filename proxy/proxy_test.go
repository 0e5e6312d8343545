package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/proxy"
)

var _ = Describe("Proxy", func() {
	var (
		fake   *upstream
		server *httptest.Server
		p      *proxy.Proxy
		reg    *prometheus.Registry
		log    *strings.Builder
	)

	BeforeEach(func() {
		fake = newUpstream()
		server = httptest.NewServer(fake)
		DeferCleanup(server.Close)
		log = &strings.Builder{}
		// Every upstream connection goes to the fake, whatever the scrape
		// URL's host: UPSTREAM_ADDR as in production, over plain http.
		p, reg = newProxy(proxy.Options{
			UpstreamScheme: "http",
			UpstreamAddr:   server.Listener.Addr().String(),
		}, log)
		DeferCleanup(p.CloseIdleConnections)
	})

	serve := func(r *http.Request) *httptest.ResponseRecorder {
		return send(startProxy(p), r)
	}

	Describe("forwarding a scrape", func() {
		type forwarded struct {
			requestURI string
			host       string
			instance   string // X-CF-APP-INSTANCE and XX-CF-APP-INSTANCE; "" for absent
			process    string // X-CF-PROCESS-INSTANCE and XX-CF-PROCESS-INSTANCE; "" for absent
			auth       string // Authorization; "" for absent
			kept       map[string]string
		}

		DescribeTable("request -> upstream request",
			func(method, target string, clientHeader map[string]string, want forwarded) {
				r := httptest.NewRequest(method, target, nil)
				for k, v := range clientHeader {
					r.Header.Set(k, v)
				}
				w := serve(r)

				Expect(w.Code).To(Equal(http.StatusOK), w.Body.String())
				seen := fake.requests()
				Expect(seen).To(HaveLen(1))
				got := seen[0]
				Expect(got.Method).To(Equal(method))
				Expect(got.RequestURI).To(Equal(want.requestURI))
				Expect(got.Host).To(Equal(want.host))
				for name, value := range map[string]string{
					"X-CF-APP-INSTANCE": want.instance, "XX-CF-APP-INSTANCE": want.instance,
					"X-CF-PROCESS-INSTANCE": want.process, "XX-CF-PROCESS-INSTANCE": want.process,
				} {
					if value == "" {
						Expect(got.Header).NotTo(HaveKey(http.CanonicalHeaderKey(name)))
					} else {
						Expect(got.Header.Values(name)).To(Equal([]string{value}), name)
					}
				}
				if want.auth == "" {
					Expect(got.Header).NotTo(HaveKey("Authorization"))
				} else {
					Expect(got.Header.Values("Authorization")).To(Equal([]string{want.auth}))
				}
				for _, name := range []string{"Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Upgrade", "X-Hop", "X-Other", "Cookie", "Via", "X-Forwarded-For"} {
					Expect(got.Header).NotTo(HaveKey(name))
				}
				for _, name := range []string{"Accept", "Accept-Encoding", "User-Agent", "X-Prometheus-Scrape-Timeout-Seconds"} {
					if v, ok := want.kept[name]; ok {
						Expect(got.Header.Values(name)).To(Equal([]string{v}), name)
					} else {
						Expect(got.Header).NotTo(HaveKey(name), "nothing added")
					}
				}
				if method == http.MethodGet {
					Expect(w.Body.String()).To(Equal("up 1\n"))
				} else {
					Expect(w.Body.String()).To(BeEmpty())
				}
				Expect(w.Header().Get("Content-Type")).To(Equal("text/plain; version=0.0.4"))
				Expect(requestsTotal(reg, proxy.OutcomeForwarded, "2xx")).To(Equal(1.0))
				Expect(upstreamObservations(reg)).To(Equal(uint64(1)))
			},
			Entry("a scrape from a target file",
				"GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"), nil,
				forwarded{requestURI: "/metrics", host: "my-app.example.com", instance: appGUID + ":0", auth: "Bearer " + appGUID}),
			Entry("HEAD",
				"HEAD", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "2"), nil,
				forwarded{requestURI: "/metrics", host: "my-app.example.com", instance: appGUID + ":2", auth: "Bearer " + appGUID}),
			Entry("another metrics path, other parameters kept in order and encoding",
				"GET", "http://my-app.example.com/some/path/metrics?format=prom&cf_app_guid="+appGUID+"&cf_app_instance="+appGUID+"%3A7&cf_app_instance_index=7&name%5B%5D=a+b&empty=", nil,
				forwarded{requestURI: "/some/path/metrics?format=prom&name%5B%5D=a+b&empty=", host: "my-app.example.com", instance: appGUID + ":7", auth: "Bearer " + appGUID}),
			Entry("an escaped path kept as sent",
				"GET", "http://my-app.example.com/a%2Fb/metrics?"+scrapeQuery(appGUID, "0"), nil,
				forwarded{requestURI: "/a%2Fb/metrics", host: "my-app.example.com", instance: appGUID + ":0", auth: "Bearer " + appGUID}),
			Entry("the instance parameter alone",
				"GET", "http://my-app.example.com/metrics?cf_app_instance="+appGUID+"%3A1", nil,
				forwarded{requestURI: "/metrics", host: "my-app.example.com", instance: appGUID + ":1", auth: "Bearer " + appGUID}),
			Entry("the instance with an unescaped colon",
				"GET", "http://my-app.example.com/metrics?cf_app_instance="+appGUID+":1&cf_app_guid="+appGUID, nil,
				forwarded{requestURI: "/metrics", host: "my-app.example.com", instance: appGUID + ":1", auth: "Bearer " + appGUID}),
			Entry("no scrape parameters: forwarded without the headers",
				"GET", "http://my-app.example.com/metrics?x=1", nil,
				forwarded{requestURI: "/metrics?x=1", host: "my-app.example.com"}),
			Entry("no query at all",
				"GET", "http://my-app.example.com/", nil,
				forwarded{requestURI: "/", host: "my-app.example.com"}),
			Entry("client-sent Authorization and instance headers dropped and replaced",
				"GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"),
				map[string]string{"Authorization": "Bearer " + otherGUID, "X-CF-APP-INSTANCE": otherGUID + ":5", "XX-CF-APP-INSTANCE": otherGUID + ":5"},
				forwarded{requestURI: "/metrics", host: "my-app.example.com", instance: appGUID + ":0", auth: "Bearer " + appGUID}),
			Entry("client-sent Authorization and instance headers dropped without scrape parameters",
				"GET", "http://my-app.example.com/metrics",
				map[string]string{"Authorization": "Basic c2VjcmV0", "X-CF-APP-INSTANCE": otherGUID + ":5", "XX-CF-APP-INSTANCE": otherGUID + ":5", "Proxy-Authorization": "Basic c2VjcmV0"},
				forwarded{requestURI: "/metrics", host: "my-app.example.com"}),
			Entry("a process instance: X-CF-PROCESS-INSTANCE instead of X-CF-APP-INSTANCE",
				"GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "3")+"&cf_process_instance="+otherGUID+"%3A3", nil,
				forwarded{requestURI: "/metrics", host: "my-app.example.com", process: otherGUID + ":3", auth: "Bearer " + appGUID}),
			Entry("Prometheus' negotiation headers forwarded unchanged, nothing else",
				"GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"),
				map[string]string{
					"Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5", "Proxy-Connection": "keep-alive",
					"Te": "trailers", "Upgrade": "websocket", "X-Other": "1", "Cookie": "a=b", "Via": "1.1 x", "X-Forwarded-For": "10.0.0.1",
					"Accept":                              "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
					"Accept-Encoding":                     "gzip",
					"User-Agent":                          "Prometheus/3.0.0",
					"X-Prometheus-Scrape-Timeout-Seconds": "10",
				},
				forwarded{requestURI: "/metrics", host: "my-app.example.com", instance: appGUID + ":0", auth: "Bearer " + appGUID, kept: map[string]string{
					"Accept":                              "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
					"Accept-Encoding":                     "gzip",
					"User-Agent":                          "Prometheus/3.0.0",
					"X-Prometheus-Scrape-Timeout-Seconds": "10",
				}}),
			Entry("host in capitals with a trailing dot",
				"GET", "http://My-App.Example.COM./metrics?"+scrapeQuery(appGUID, "0"), nil,
				forwarded{requestURI: "/metrics", host: "my-app.example.com", instance: appGUID + ":0", auth: "Bearer " + appGUID}),
			Entry("a port kept in Host",
				"GET", "http://localhost:8080/metrics?"+scrapeQuery(appGUID, "0"), nil,
				forwarded{requestURI: "/metrics", host: "localhost:8080", instance: appGUID + ":0", auth: "Bearer " + appGUID}),
		)

		It("does not log the bearer token or the app guid of a forwarded scrape", func() {
			r := httptest.NewRequest("GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"), nil)
			r.Header.Set("Authorization", "Bearer client-secret")
			Expect(serve(r).Code).To(Equal(http.StatusOK))
			Expect(logged(log)).NotTo(ContainSubstring(appGUID))
			Expect(logged(log)).NotTo(ContainSubstring("client-secret"))
		})

		It("returns the upstream's status, Content-Type, Content-Encoding, X-Cf-Routererror and body, nothing else of its header", func() {
			fake.respond = func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Connection", "X-Hop")
				w.Header().Set("X-Hop", "1")
				w.Header().Set("Keep-Alive", "timeout=5")
				w.Header().Set("Set-Cookie", "a=b")
				w.Header().Set("X-Other", "1")
				w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
				w.Header().Set("Content-Encoding", "identity")
				w.Header().Set("X-Cf-Routererror", "endpoint_failure")
				w.WriteHeader(http.StatusTeapot)
				_, _ = w.Write([]byte("# EOF\n"))
			}
			w := serve(httptest.NewRequest("GET", "http://my-app.example.com/metrics", nil))
			Expect(w.Code).To(Equal(http.StatusTeapot))
			Expect(w.Body.String()).To(Equal("# EOF\n"))
			Expect(w.Header().Get("Content-Type")).To(Equal("application/openmetrics-text; version=1.0.0; charset=utf-8"))
			Expect(w.Header().Get("Content-Encoding")).To(Equal("identity"))
			Expect(w.Header().Get("X-Cf-Routererror")).To(Equal("endpoint_failure"))
			for _, name := range []string{"X-Hop", "Keep-Alive", "Set-Cookie", "X-Other"} {
				Expect(w.Header()).NotTo(HaveKey(name))
			}
		})
	})

	Describe("rejecting a request", func() {
		long := strings.Repeat("a", proxy.MaxRequestURI)

		DescribeTable("request -> status, never forwarded",
			func(method, target string, mutate func(*http.Request), status int, outcome, reason string) {
				r := httptest.NewRequest(method, target, nil)
				r.Header.Set("Authorization", "Bearer client-secret")
				if mutate != nil {
					mutate(r)
				}
				w := serve(r)

				Expect(w.Code).To(Equal(status), w.Body.String())
				Expect(w.Body.String()).To(ContainSubstring(reason))
				Expect(fake.requests()).To(BeEmpty(), "the upstream was called")
				Expect(requestsTotal(reg, outcome, w.Result().Status[:1]+"xx")).To(Equal(1.0))
				if status == http.StatusMethodNotAllowed {
					Expect(w.Header().Get("Allow")).To(Equal("GET, HEAD"))
				}
				Expect(logged(log)).To(And(ContainSubstring(`"paas-proxy.rejected"`), ContainSubstring(outcome)))
				Expect(logged(log)).NotTo(ContainSubstring("client-secret"))
				Expect(logged(log)).NotTo(ContainSubstring(appGUID), "the app guid is the bearer token")
			},
			Entry("CONNECT", "CONNECT", "my-app.example.com:443", nil, 405, proxy.OutcomeRejectedMethod, "CONNECT is not supported"),
			Entry("POST", "POST", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0"), nil, 405, proxy.OutcomeRejectedMethod, "only GET and HEAD"),
			Entry("PUT", "PUT", "http://my-app.example.com/metrics", nil, 405, proxy.OutcomeRejectedMethod, "only GET and HEAD"),
			Entry("DELETE", "DELETE", "http://my-app.example.com/metrics", nil, 405, proxy.OutcomeRejectedMethod, "only GET and HEAD"),
			Entry("another host", "GET", "http://my-app.example.org/metrics?"+scrapeQuery(appGUID, "0"), nil, 403, proxy.OutcomeRejectedHost, "not in ALLOWED_DOMAINS"),
			Entry("a host that ends like an allowed domain", "GET", "http://badexample.com/metrics", nil, 403, proxy.OutcomeRejectedHost, "not in ALLOWED_DOMAINS"),
			Entry("an IP literal", "GET", "http://127.0.0.1/metrics", nil, 403, proxy.OutcomeRejectedHost, "not in ALLOWED_DOMAINS"),
			Entry("an IPv6 literal", "GET", "http://[::1]:8080/metrics", nil, 403, proxy.OutcomeRejectedHost, "not in ALLOWED_DOMAINS"),
			Entry("the cloud metadata address", "GET", "http://169.254.169.254/latest/meta-data/", nil, 403, proxy.OutcomeRejectedHost, "not in ALLOWED_DOMAINS"),
			Entry("an empty host", "GET", "http:///metrics", nil, 400, proxy.OutcomeRejectedRequest, "malformed request"),
			Entry("a name under localhost", "GET", "http://evil.localhost/metrics", nil, 403, proxy.OutcomeRejectedHost, "not in ALLOWED_DOMAINS"),
			Entry("an https URL", "GET", "https://my-app.example.com/metrics", nil, 400, proxy.OutcomeRejectedRequest, "only http:// URLs"),
			Entry("credentials in the URL", "GET", "http://user:pass@my-app.example.com/metrics", nil, 400, proxy.OutcomeRejectedRequest, "malformed request"),
			Entry("a body", "GET", "http://my-app.example.com/metrics", func(r *http.Request) {
				r.Body, r.ContentLength = io.NopCloser(strings.NewReader("x")), 1
			}, 400, proxy.OutcomeRejectedRequest, "no request body"),
			Entry("a chunked body", "GET", "http://my-app.example.com/metrics", func(r *http.Request) {
				r.Body, r.TransferEncoding = io.NopCloser(strings.NewReader("x")), []string{"chunked"}
			}, 400, proxy.OutcomeRejectedRequest, "no request body"),
			Entry("a guid one character too long", "GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID+"0", "0"), nil, 400, proxy.OutcomeRejectedParams, "not a valid GUID"),
			Entry("a guid that is not a GUID", "GET", "http://my-app.example.com/metrics?"+scrapeQuery("not-a-guid", "0"), nil, 400, proxy.OutcomeRejectedParams, "not a valid GUID"),
			Entry("a negative index", "GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "-1"), nil, 400, proxy.OutcomeRejectedParams, "not an instance index"),
			Entry("an index with a leading zero", "GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "01"), nil, 400, proxy.OutcomeRejectedParams, "not an instance index"),
			Entry("an index that is not a number", "GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "x"), nil, 400, proxy.OutcomeRejectedParams, "not an instance index"),
			Entry("an index mismatch", "GET", "http://my-app.example.com/metrics?cf_app_guid="+appGUID+"&cf_app_instance="+appGUID+"%3A1&cf_app_instance_index=0", nil, 400, proxy.OutcomeRejectedParams, "different instances"),
			Entry("a guid mismatch", "GET", "http://my-app.example.com/metrics?cf_app_guid="+otherGUID+"&cf_app_instance="+appGUID+"%3A0&cf_app_instance_index=0", nil, 400, proxy.OutcomeRejectedParams, "different apps"),
			Entry("a repeated parameter", "GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0")+"&cf_app_guid="+otherGUID, nil, 400, proxy.OutcomeRejectedParams, "repeated"),
			Entry("the guid alone", "GET", "http://my-app.example.com/metrics?cf_app_guid="+appGUID, nil, 400, proxy.OutcomeRejectedParams, "cf_app_instance_index is missing"),
			Entry("an instance without an index", "GET", "http://my-app.example.com/metrics?cf_app_instance="+appGUID, nil, 400, proxy.OutcomeRejectedParams, "must be <app_guid>:<index>"),
			Entry("%0d%0a in the instance", "GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0%0d%0aX-Injected:%201"), nil, 400, proxy.OutcomeRejectedParams, "control character"),
			Entry("%0d%0a in the guid", "GET", "http://my-app.example.com/metrics?cf_app_guid="+appGUID+"%0d%0a&cf_app_instance_index=0", nil, 400, proxy.OutcomeRejectedParams, "control character"),
			Entry("%0a in another parameter", "GET", "http://my-app.example.com/metrics?x=a%0ab&"+scrapeQuery(appGUID, "0"), nil, 400, proxy.OutcomeRejectedParams, "control character"),
			Entry("%00 in a parameter name", "GET", "http://my-app.example.com/metrics?x%00=1", nil, 400, proxy.OutcomeRejectedParams, "control character"),
			Entry("%0d%0a in the path", "GET", "http://my-app.example.com/metrics%0d%0aX-Injected:%201", nil, 400, proxy.OutcomeRejectedParams, "control character in the URL path"),
			Entry("a malformed escape", "GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0")+"&x=%zz", nil, 400, proxy.OutcomeRejectedParams, "malformed query"),
			Entry("a semicolon in the query", "GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0")+";x=1", nil, 400, proxy.OutcomeRejectedParams, "semicolon"),
			Entry("an over-long guid", "GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID+strings.Repeat("0", 200), "0"), nil, 400, proxy.OutcomeRejectedParams, "not a valid GUID"),
			Entry("an over-long index", "GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "12345678"), nil, 400, proxy.OutcomeRejectedParams, "not an instance index"),
			Entry("an over-long request target", "GET", "http://my-app.example.com/metrics?"+scrapeQuery(appGUID, "0")+"&x="+long, nil, 400, proxy.OutcomeRejectedParams, "longer than"),
		)
	})

	Describe("origin-form requests, for the proxy itself", func() {
		DescribeTable("request -> status",
			func(method, target string, status int, body string) {
				w := serve(httptest.NewRequest(method, target, nil))
				Expect(w.Code).To(Equal(status))
				Expect(w.Body.String()).To(ContainSubstring(body))
				Expect(fake.requests()).To(BeEmpty())
			},
			Entry("GET /health", "GET", "/health", 200, "ok"),
			Entry("HEAD /health", "HEAD", "/health", 200, ""),
			Entry("POST /health", "POST", "/health", 405, "not allowed"),
			Entry("another path", "GET", "/metrics/other", 404, "not found"),
			Entry("the root", "GET", "/", 404, "not found"),
		)

		It("serves the proxy's own metrics on GET /metrics", func() {
			serve(httptest.NewRequest("GET", "http://other.example.org/metrics", nil))
			w := serve(httptest.NewRequest("GET", "/metrics", nil))
			Expect(w.Code).To(Equal(http.StatusOK))
			Expect(w.Body.String()).To(And(
				ContainSubstring(`cf_app_discovery_proxy_requests_total{code="4xx",outcome="rejected_host"} 1`),
				ContainSubstring("cf_app_discovery_proxy_upstream_duration_seconds_bucket"),
			))
		})

		It("answers 404 for /metrics when given no metrics handler", func() {
			bare, err := proxy.New(proxy.Options{AllowList: mustAllow("example.com")})
			Expect(err).NotTo(HaveOccurred())
			w := send(startProxy(bare), httptest.NewRequest("GET", "/metrics", nil))
			Expect(w.Code).To(Equal(http.StatusNotFound))
		})
	})
})
