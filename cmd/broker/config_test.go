package main

import (
	"os/exec"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/httpsd"
)

func settingsFrom(vars map[string]string) (settings, error) {
	return loadSettings(config.New(func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}))
}

func validVars() map[string]string {
	return map[string]string{
		"BROKER_USERNAME": "cc", "BROKER_PASSWORD": "secret",
		"SERVICE_ID": "service-id", "PLAN_ID": "plan-id",
		"API_ENDPOINT": "https://api.example.com", "CF_CLIENT_ID": "monitor", "CF_CLIENT_SECRET": "s",
		"PAAS_DOMAIN": "apps.example.com", "BUCKET_NAME": "targets", "AWS_REGION": "eu-west-2",
	}
}

var _ = Describe("loadSettings", func() {
	It("reads a complete configuration with defaults", func() {
		s, err := settingsFrom(validVars())
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Port).To(Equal(8080))
		Expect(s.Catalog.ServiceName).To(Equal("gds-prometheus"))
		Expect(s.Catalog.PlanName).To(Equal("prometheus"))
		Expect(s.Store.Bucket).To(Equal("targets"))
	})

	It("takes secrets from a user-provided service, the environment winning", func() {
		vars := validVars()
		delete(vars, "BROKER_PASSWORD")
		vars["CF_CLIENT_SECRET"] = "from-env"
		vars["VCAP_SERVICES"] = `{"user-provided":[{"name":"secrets","credentials":{"BROKER_PASSWORD":"from-vcap","CF_CLIENT_SECRET":"from-vcap"}}]}`
		s, err := settingsFrom(vars)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Credentials.Password).To(Equal("from-vcap"))
		Expect(s.CF.ClientSecret).To(Equal("from-env"))
	})

	It("takes a local directory store and a CF user instead", func() {
		vars := validVars()
		delete(vars, "BUCKET_NAME")
		delete(vars, "AWS_REGION")
		delete(vars, "CF_CLIENT_ID")
		delete(vars, "CF_CLIENT_SECRET")
		vars["TARGETS_PATH"] = "/tmp/targets"
		vars["UAA_USERNAME"] = "prometheus-monitor"
		vars["UAA_PASSWORD"] = "pw"
		s, err := settingsFrom(vars)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Store.Path).To(Equal("/tmp/targets"))
		Expect(s.Store.Bucket).To(BeEmpty())
		Expect(s.CF.Username).To(Equal("prometheus-monitor"))
	})

	It("leaves http_sd off by default", func() {
		s, err := settingsFrom(validVars())
		Expect(err).NotTo(HaveOccurred())
		Expect(s.SD.Credentials.Enabled()).To(BeFalse())
		Expect(s.SD.RefreshInterval).To(Equal(15 * time.Second))
	})

	It("reads the http_sd settings", func() {
		vars := validVars()
		vars["SD_USERNAME"] = "prometheus"
		vars["SD_PASSWORD"] = "sd-secret"
		vars["SD_REFRESH_INTERVAL"] = "30s"
		s, err := settingsFrom(vars)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.SD.Credentials).To(Equal(httpsd.Credentials{Username: "prometheus", Password: "sd-secret"}))
		Expect(s.SD.Credentials.Enabled()).To(BeTrue())
		Expect(s.SD.RefreshInterval).To(Equal(30 * time.Second))
	})

	It("names every problem in one error", func() {
		_, err := settingsFrom(map[string]string{"PORT": "0", "BUCKET_NAME": "b", "UAA_USERNAME": "u"})
		Expect(err).To(MatchError(SatisfyAll(
			ContainSubstring("PORT must be between 1 and 65535"),
			ContainSubstring("BROKER_USERNAME is required"),
			ContainSubstring("BROKER_PASSWORD is required"),
			ContainSubstring("UAA_USERNAME and UAA_PASSWORD must be set together"),
			ContainSubstring("AWS_REGION is required with BUCKET_NAME"),
			ContainSubstring("PAAS_DOMAIN is required"),
		)))
	})

	DescribeTable("refuses bad configuration",
		func(change func(map[string]string), problem string) {
			vars := validVars()
			change(vars)
			_, err := settingsFrom(vars)
			Expect(err).To(MatchError(ContainSubstring(problem)))
		},
		Entry("no broker username", func(v map[string]string) { delete(v, "BROKER_USERNAME") }, "BROKER_USERNAME is required"),
		Entry("no broker password", func(v map[string]string) { delete(v, "BROKER_PASSWORD") }, "BROKER_PASSWORD is required"),
		Entry("a bad port", func(v map[string]string) { v["PORT"] = "99999" }, "PORT must be between 1 and 65535"),
		Entry("a bad API URL", func(v map[string]string) { v["API_ENDPOINT"] = "api.example.com" }, "API_ENDPOINT must be an http or https URL"),
		Entry("no CF credentials", func(v map[string]string) { delete(v, "CF_CLIENT_ID"); delete(v, "CF_CLIENT_SECRET") }, "CF credentials are required"),
		Entry("both CF credential pairs", func(v map[string]string) { v["UAA_USERNAME"] = "u"; v["UAA_PASSWORD"] = "p" }, "not both"),
		Entry("both stores", func(v map[string]string) { v["TARGETS_PATH"] = "/tmp/t" }, "set either TARGETS_PATH or BUCKET_NAME, not both"),
		Entry("no PAAS_DOMAIN", func(v map[string]string) { delete(v, "PAAS_DOMAIN") }, "PAAS_DOMAIN is required"),
		Entry("a malformed VCAP_SERVICES", func(v map[string]string) { v["VCAP_SERVICES"] = "{" }, "VCAP_SERVICES: not valid JSON"),
		Entry("an SD username alone", func(v map[string]string) { v["SD_USERNAME"] = "p" }, "SD_USERNAME and SD_PASSWORD go together"),
		Entry("an SD password alone", func(v map[string]string) { v["SD_PASSWORD"] = "p" }, "SD_USERNAME and SD_PASSWORD go together"),
		Entry("the broker's password for http_sd", func(v map[string]string) { v["SD_USERNAME"] = "p"; v["SD_PASSWORD"] = v["BROKER_PASSWORD"] }, "SD_PASSWORD must differ from BROKER_PASSWORD"),
		Entry("a refresh interval under 1s", func(v map[string]string) { v["SD_REFRESH_INTERVAL"] = "500ms" }, "SD_REFRESH_INTERVAL must be at least 1s"),
		Entry("a refresh interval that is not a duration", func(v map[string]string) { v["SD_REFRESH_INTERVAL"] = "15" }, "SD_REFRESH_INTERVAL must be a duration"),
	)
})

var _ = Describe("the broker binary", func() {
	It("refuses to start without credentials, naming every problem at once", func() {
		binary, err := gexec.Build("github.com/alphagov/cf-app-discovery/cmd/broker")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)
		cmd := exec.Command(binary)
		cmd.Env = []string{"LOG_LEVEL=loud"}
		session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		Eventually(session).Should(gexec.Exit(2))
		Expect(session.Err).To(gbytes.Say(`invalid configuration: .*LOG_LEVEL must be one of.*BROKER_USERNAME is required; BROKER_PASSWORD is required.*SERVICE_ID is required.*PLAN_ID is required.*API_ENDPOINT is required.*a store is required.*PAAS_DOMAIN is required`))
	})
})
