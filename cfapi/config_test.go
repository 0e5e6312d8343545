package cfapi_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/config"
)

var _ = Describe("ConfigFor", func() {
	It("carries every CF setting into the CF API client's configuration", func() {
		reg := prometheus.NewRegistry()
		c := config.CF{API: "https://api.example.com", Username: "u", Password: "p", ClientID: "id", ClientSecret: "s"}
		Expect(cfapi.ConfigFor(c, "plan-guid", reg)).To(Equal(cfapi.Config{
			API: "https://api.example.com", Username: "u", Password: "p", ClientID: "id", ClientSecret: "s",
			PlanID: "plan-guid", Registerer: reg,
		}))
	})
})
