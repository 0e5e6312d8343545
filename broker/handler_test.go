package broker_test

import (
	"io"
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/broker"
)

var _ = Describe("Handler", func() {
	var h *harness

	BeforeEach(func() {
		h = newHarness().serve()
	})

	get := func(path string) (int, string) {
		resp, err := http.Get(h.server.URL + path)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		return resp.StatusCode, string(body)
	}

	DescribeTable("refuses requests without valid basic auth, changing nothing",
		func(authorization string) {
			if authorization == "" {
				delete(h.headers, "Authorization")
			} else {
				h.headers["Authorization"] = authorization
			}
			Expect(h.bind(bindingID, appGUID).status).To(Equal(http.StatusUnauthorized))
			Expect(h.unbind(bindingID).status).To(Equal(http.StatusUnauthorized))
			Expect(h.do("GET", "/v2/catalog", nil).status).To(Equal(http.StatusUnauthorized))
			Expect(h.files()).To(BeEmpty())
			Expect(h.cf.callCount()).To(BeZero())
		},
		Entry("no credentials", ""),
		Entry("a wrong password", basicAuth(brokerUser, "wrong")),
		Entry("a wrong username", basicAuth("someone", brokerPass)),
		Entry("the password as username", basicAuth(brokerPass, brokerUser)),
		Entry("not basic auth", "Bearer "+brokerPass),
	)

	It("answers 412 without the API version header, changing nothing", func() {
		delete(h.headers, "X-Broker-API-Version")
		Expect(h.do("GET", "/v2/catalog", nil).status).To(Equal(http.StatusPreconditionFailed))
		Expect(h.bind(bindingID, appGUID).status).To(Equal(http.StatusPreconditionFailed))
		Expect(h.files()).To(BeEmpty())
	})

	It("refuses a body over the limit, changing nothing", func() {
		body := bindBody(appGUID)
		body["parameters"] = map[string]any{"x": strings.Repeat("a", broker.MaxBodyBytes)}
		r := h.bindWith(bindingID, body)
		Expect(r.status).To(BeNumerically(">=", 400))
		Expect(r.status).To(BeNumerically("<", 500))
		Expect(h.files()).To(BeEmpty())
	})

	It("serves /health without credentials", func() {
		status, body := get("/health")
		Expect(status).To(Equal(http.StatusOK))
		Expect(body).To(Equal("ok\n"))
	})

	It("counts requests by operation and status code, and operations by outcome, in /metrics", func() {
		Expect(h.bind(bindingID, appGUID).status).To(Equal(http.StatusCreated))
		Expect(h.bind(bindingID, appGUID).status).To(Equal(http.StatusOK))
		delete(h.headers, "Authorization")
		Expect(h.bind(bindingID, appGUID).status).To(Equal(http.StatusUnauthorized))
		status, body := get("/metrics")
		Expect(status).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring(`cf_app_discovery_broker_requests_total{code="201",operation="bind"} 1`))
		Expect(body).To(ContainSubstring(`cf_app_discovery_broker_requests_total{code="200",operation="bind"} 1`))
		Expect(body).To(ContainSubstring(`cf_app_discovery_broker_requests_total{code="401",operation="bind"} 1`))
		Expect(body).To(ContainSubstring(`cf_app_discovery_broker_operations_total{operation="bind",outcome="created"} 1`))
		Expect(body).To(ContainSubstring(`cf_app_discovery_broker_operations_total{operation="bind",outcome="already-exists"} 1`))
		Expect(body).To(ContainSubstring(`cf_app_discovery_broker_operation_duration_seconds_count{operation="bind"} 2`))
	})

	DescribeTable("names the operation of a request for metrics",
		func(method, path, operation string) {
			Expect(broker.Operation(method, path)).To(Equal(operation))
		},
		Entry(nil, "GET", "/v2/catalog", "catalog"),
		Entry(nil, "PUT", "/v2/service_instances/i", "provision"),
		Entry(nil, "PATCH", "/v2/service_instances/i", "update"),
		Entry(nil, "DELETE", "/v2/service_instances/i", "deprovision"),
		Entry(nil, "GET", "/v2/service_instances/i", "get-instance"),
		Entry(nil, "GET", "/v2/service_instances/i/last_operation", "last-operation"),
		Entry(nil, "PUT", "/v2/service_instances/i/service_bindings/b", "bind"),
		Entry(nil, "DELETE", "/v2/service_instances/i/service_bindings/b", "unbind"),
		Entry(nil, "GET", "/v2/service_instances/i/service_bindings/b", "get-binding"),
		Entry(nil, "GET", "/v2/service_instances/i/service_bindings/b/last_operation", "last-binding-operation"),
		Entry(nil, "GET", "/health", "health"),
		Entry(nil, "GET", "/metrics", "metrics"),
		Entry(nil, "POST", "/v2/service_instances/i/service_bindings/b", "other"),
		Entry(nil, "GET", "/anything/else/entirely", "other"),
	)
})
