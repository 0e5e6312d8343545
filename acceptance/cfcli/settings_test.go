package cfcli_test

import (
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/cfcli"
)

var _ = Describe("LoadSettings", func() {
	var (
		env      map[string]string
		cfOnPath bool
	)

	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	lookPath := func(file string) (string, error) {
		if cfOnPath && file == "cf" {
			return "/usr/local/bin/cf", nil
		}
		return "", errors.New(`exec: "` + file + `": executable file not found in $PATH`)
	}

	BeforeEach(func() {
		cfOnPath = true
		env = map[string]string{
			"CF_API": "https://api.example.com", "CF_USERNAME": "tester", "CF_PASSWORD": password,
			"CF_ORG": "tenant-org", "CF_SPACE": "tenant-space",
			"CF_BROKER_URL": "https://broker.example.com", "CF_BROKER_USERNAME": "broker", "CF_BROKER_PASSWORD": brokerPassword,
			"BUCKET_NAME": "prometheus-targets", "AWS_REGION": "eu-west-2",
		}
	})

	It("reads every setting, with the defaults of the optional ones", func() {
		s, err := cfcli.LoadSettings(lookup, lookPath)
		Expect(err).NotTo(HaveOccurred())
		Expect(s).To(Equal(cfcli.Settings{
			API: "https://api.example.com", Username: "tester", Password: password, Org: "tenant-org", Space: "tenant-space",
			BrokerURL: "https://broker.example.com", BrokerUsername: "broker", BrokerPassword: brokerPassword,
			ServiceName: "gds-prometheus", PlanName: "prometheus",
			Bucket: "prometheus-targets", Region: "eu-west-2",
			ReconcileTimeout: 6 * time.Minute,
		}))
	})

	It("reads the optional settings", func() {
		env["CF_SKIP_SSL_VALIDATION"] = "true"
		env["CF_SERVICE_NAME"] = "prometheus-staging"
		env["CF_PLAN_NAME"] = "default"
		env["S3_ENDPOINT"] = "https://s3.example.com"
		env["CF_RECONCILE_TIMEOUT"] = "90s"
		s, err := cfcli.LoadSettings(lookup, lookPath)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.SkipSSLValidation).To(BeTrue())
		Expect(s.ServiceName).To(Equal("prometheus-staging"))
		Expect(s.PlanName).To(Equal("default"))
		Expect(s.Endpoint).To(Equal("https://s3.example.com"))
		Expect(s.ReconcileTimeout).To(Equal(90 * time.Second))
	})

	It("names every missing variable, and the missing cf CLI", func() {
		env = map[string]string{}
		cfOnPath = false
		_, err := cfcli.LoadSettings(lookup, lookPath)
		Expect(err).To(MatchError("a run against a real Cloud Foundry needs more: " +
			"set CF_API, CF_USERNAME, CF_PASSWORD, CF_ORG, CF_SPACE, CF_BROKER_URL, CF_BROKER_USERNAME, CF_BROKER_PASSWORD, BUCKET_NAME, AWS_REGION; " +
			`put the cf CLI on PATH (see README.md, "Against a real Cloud Foundry")`))
	})

	It("names only what is missing, counting an empty variable as missing", func() {
		delete(env, "CF_PASSWORD")
		env["BUCKET_NAME"] = " "
		_, err := cfcli.LoadSettings(lookup, lookPath)
		Expect(err).To(MatchError(ContainSubstring("needs more: set CF_PASSWORD, BUCKET_NAME (see README.md")))
	})

	It("names the cf CLI alone when only it is missing", func() {
		cfOnPath = false
		_, err := cfcli.LoadSettings(lookup, lookPath)
		Expect(err).To(MatchError(ContainSubstring("needs more: put the cf CLI on PATH (see")))
	})

	It("names invalid optional settings, without giving any secret", func() {
		env["CF_SKIP_SSL_VALIDATION"] = "yes"
		env["CF_RECONCILE_TIMEOUT"] = "soon"
		_, err := cfcli.LoadSettings(lookup, lookPath)
		Expect(err).To(MatchError(ContainSubstring(`CF_SKIP_SSL_VALIDATION must be true or false, not "yes"; CF_RECONCILE_TIMEOUT must be a positive duration such as 6m, not "soon"`)))
		Expect(err.Error()).NotTo(ContainSubstring(password))
		Expect(err.Error()).NotTo(ContainSubstring(brokerPassword))
	})
})
