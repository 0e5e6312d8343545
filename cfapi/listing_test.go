package cfapi_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/targets"
)

// These specs share one platform of 12,000 apps: building it and paging
// through it is the slow part.
var _ = Describe("Listings at platform scale", Ordered, func() {
	var (
		ctx    context.Context
		server *fakecf.Server
		cfg    cfapi.Config
		cf     *cfapi.Client
		bound  []string
	)

	BeforeAll(func() {
		ctx = context.Background()
		server = fakecf.New(fakecf.Options{})
		DeferCleanup(server.Close)
		_, err := server.Populate(fakecf.Fleet{Orgs: 20, SpacesPerOrg: 10, Apps: 12000, Bound: 10000, ExtraRoutes: 3000, PlanCatalogID: planCatalogID})
		Expect(err).NotTo(HaveOccurred())
		cfg = testCFConfig(server, prometheus.NewRegistry())
		// Pages of 5000 take a while under the race detector.
		cfg.AttemptTimeout = time.Minute
		cf, err = cfapi.New(ctx, cfg)
		Expect(err).NotTo(HaveOccurred())
		for i := range 10000 {
			bound = append(bound, fakecf.GUID("app", i))
		}
	})

	BeforeEach(func() {
		server.ClearFaults()
		server.ResetCounts()
	})

	It("describes 10,000 of 12,000 visible apps by listing everything 5000 a page", func() {
		apps, err := cf.Apps(ctx, bound)
		Expect(err).NotTo(HaveOccurred())
		Expect(apps).To(HaveLen(10000))
		Expect(server.APIRequests()).To(BeNumerically("<=", 15))
		for _, line := range server.RequestLog() {
			Expect(line).To(ContainSubstring("per_page=5000"))
			Expect(line).NotTo(ContainSubstring("guids="))
		}
		last := apps[fakecf.GUID("app", 9999)]
		Expect(last.Instances()).To(Equal(2))
		last.Processes = nil
		Expect(last).To(Equal(targets.App{
			GUID: fakecf.GUID("app", 9999), Name: "app-9999", State: "STARTED", Annotations: map[string]string{},
			Org: "org-19", Space: "space-9",
			Routes: []targets.Route{{Host: "app-9999", Domain: "apps.example.com", Protocol: "http1"}},
		}))
		Expect(apps).NotTo(HaveKey(fakecf.GUID("app", 10000)))
		Expect(apps[fakecf.GUID("app", 2)].Routes).To(HaveLen(2))
	})

	It("lists the 10,000 bindings in two pages", func() {
		bindings, err := cf.PlanBindings(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(bindings).To(HaveLen(10000))
		Expect(server.RequestsTo("/v3/service_credential_bindings")).To(Equal(2))
	})

	It("fails without a map when a page is cut short", func() {
		server.InjectFault(fakecf.Fault{Path: "/v3/apps", TruncatePage: 2, Times: 1})
		apps, err := cf.Apps(ctx, bound)
		Expect(err).To(MatchError(cfapi.ErrUnavailable))
		Expect(apps).To(BeNil())
		Expect(server.RequestLog()).To(ContainElement(ContainSubstring("/v3/apps?include=space.organization&per_page=5000&page=2")))
	})
})
