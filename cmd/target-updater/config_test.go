package main

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/targets"
)

func settingsFrom(vars map[string]string) (settings, error) {
	return loadSettings(config.New(func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}))
}

func validVars() map[string]string {
	return map[string]string{
		"API_ENDPOINT": "https://api.example.com", "UAA_USERNAME": "monitor", "UAA_PASSWORD": "secret",
		"PLAN_ID": "plan-id", "PAAS_DOMAIN": "apps.example.com", "TARGETS_PATH": "/var/targets",
	}
}

var _ = Describe("loadSettings", func() {
	It("has defaults for everything optional", func() {
		s, err := settingsFrom(validVars())
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Schedule).To(Equal("@every 5m"))
		Expect(s.Port).To(Equal(0))
		Expect(s.LogLevel).To(Equal("info"))
		Expect(s.Addressing).To(Equal(targets.AppAddressing))
		Expect(s.WatchInterval).To(Equal(10 * time.Second))
		Expect(s.LeaseDuration).To(Equal(30 * time.Second))
	})

	DescribeTable("LEASE_DURATION",
		func(value string, want time.Duration, problem string) {
			vars := validVars()
			vars["LEASE_DURATION"] = value
			s, err := settingsFrom(vars)
			if problem != "" {
				Expect(err).To(MatchError(ContainSubstring(problem)))
				return
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(s.LeaseDuration).To(Equal(want))
		},
		Entry("a duration", "1m", time.Minute, ""),
		Entry("the shortest", "1s", time.Second, ""),
		Entry("too short", "500ms", time.Duration(0), "LEASE_DURATION must be at least 1s"),
		Entry("not a duration", "30", time.Duration(0), "LEASE_DURATION must be a duration"),
	)

	DescribeTable("instance addressing and watch interval",
		func(extra map[string]string, addressing targets.Addressing, interval time.Duration, problem string) {
			vars := validVars()
			for k, v := range extra {
				vars[k] = v
			}
			s, err := settingsFrom(vars)
			if problem != "" {
				Expect(err).To(MatchError(ContainSubstring(problem)))
				return
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Addressing).To(Equal(addressing))
			Expect(s.WatchInterval).To(Equal(interval))
		},
		Entry("process addressing", map[string]string{"INSTANCE_ADDRESSING": "process"}, targets.ProcessAddressing, 10*time.Second, ""),
		Entry("app addressing", map[string]string{"INSTANCE_ADDRESSING": "app"}, targets.AppAddressing, 10*time.Second, ""),
		Entry("another addressing", map[string]string{"INSTANCE_ADDRESSING": "instance"}, targets.Addressing(""), time.Duration(0),
			`INSTANCE_ADDRESSING must be app or process, got "instance"`),
		Entry("watching off", map[string]string{"WATCH_INTERVAL": "0"}, targets.AppAddressing, time.Duration(0), ""),
		Entry("watching every 30 s", map[string]string{"WATCH_INTERVAL": "30s"}, targets.AppAddressing, 30*time.Second, ""),
		Entry("an interval under a second", map[string]string{"WATCH_INTERVAL": "500ms"}, targets.Addressing(""), time.Duration(0),
			"WATCH_INTERVAL must be 0 (off) or at least 1s, got 500ms"),
		Entry("a negative interval", map[string]string{"WATCH_INTERVAL": "-10s"}, targets.Addressing(""), time.Duration(0),
			"WATCH_INTERVAL must be at least 0s"),
		Entry("not a duration", map[string]string{"WATCH_INTERVAL": "10"}, targets.Addressing(""), time.Duration(0),
			`WATCH_INTERVAL must be a duration such as 90s or 5m, got "10"`),
	)

	DescribeTable("schedule",
		func(extra map[string]string, schedule, problem string) {
			vars := validVars()
			for k, v := range extra {
				vars[k] = v
			}
			s, err := settingsFrom(vars)
			if problem != "" {
				Expect(err).To(MatchError(ContainSubstring(problem)))
				return
			}
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Schedule).To(Equal(schedule))
		},
		Entry("cron spec", map[string]string{"UPDATE_SCHEDULE": "*/2 * * * *"}, "*/2 * * * *", ""),
		Entry("the Ruby service's rate", map[string]string{"UPDATE_TARGETS_RATE_SECONDS": "120"}, "@every 120s", ""),
		Entry("UPDATE_SCHEDULE wins over the rate", map[string]string{"UPDATE_SCHEDULE": "@every 1m", "UPDATE_TARGETS_RATE_SECONDS": "120"}, "@every 1m", ""),
		Entry("a rate under 60 s", map[string]string{"UPDATE_TARGETS_RATE_SECONDS": "30"}, "", "UPDATE_TARGETS_RATE_SECONDS must be between 60"),
		Entry("not a cron spec", map[string]string{"UPDATE_SCHEDULE": "every so often"}, "", "UPDATE_SCHEDULE \"every so often\" is not a cron spec"),
	)

	It("names every problem in one message", func() {
		_, err := settingsFrom(map[string]string{"PORT": "0"})
		Expect(err).To(MatchError(And(
			ContainSubstring("PORT must be between 1 and 65535"),
			ContainSubstring("API_ENDPOINT is required"),
			ContainSubstring("CF credentials are required"),
			ContainSubstring("a store is required"),
			ContainSubstring("PLAN_ID is required"),
			ContainSubstring("PAAS_DOMAIN is required"),
		)))
	})

	It("reads credentials from a user-provided service", func() {
		vars := validVars()
		delete(vars, "UAA_PASSWORD")
		vars["VCAP_SERVICES"] = `{"user-provided":[{"name":"discovery","credentials":{"UAA_PASSWORD":"from-vcap"}}]}`
		s, err := settingsFrom(vars)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.CF.Password).To(Equal("from-vcap"))
	})
})
