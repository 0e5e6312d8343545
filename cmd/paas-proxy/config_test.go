package main

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/config"
)

func settingsFrom(vars map[string]string) (settings, error) {
	return loadSettings(config.New(func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}))
}

var _ = Describe("loadSettings", func() {
	It("has defaults for everything but ALLOWED_DOMAINS", func() {
		s, err := settingsFrom(map[string]string{"ALLOWED_DOMAINS": "cloudapps.digital, london.cloudapps.digital"})
		Expect(err).NotTo(HaveOccurred())
		Expect(s.ListenAddr).To(Equal("127.0.0.1:8080"))
		Expect(s.UpstreamScheme).To(Equal("https"))
		Expect(s.UpstreamAddr).To(BeEmpty())
		Expect(s.LogLevel).To(Equal("info"))
		Expect(s.AllowList.Allows("my-app.london.cloudapps.digital")).To(BeTrue())
		Expect(s.AllowList.Allows("example.com")).To(BeFalse())
	})

	It("reads every setting", func() {
		s, err := settingsFrom(map[string]string{
			"ALLOWED_DOMAINS": "localhost", "LISTEN_ADDR": ":9090", "UPSTREAM_SCHEME": "http",
			"UPSTREAM_ADDR": "10.0.0.1:443", "LOG_LEVEL": "debug",
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(s.ListenAddr).To(Equal(":9090"))
		Expect(s.UpstreamScheme).To(Equal("http"))
		Expect(s.UpstreamAddr).To(Equal("10.0.0.1:443"))
		Expect(s.LogLevel).To(Equal("debug"))
		Expect(s.AllowList.Allows("localhost:8080")).To(BeTrue())
	})

	DescribeTable("listens where LISTEN_ADDR and PORT say",
		func(vars map[string]string, addr string) {
			vars["ALLOWED_DOMAINS"] = "example.com"
			s, err := settingsFrom(vars)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.ListenAddr).To(Equal(addr))
		},
		Entry("PORT alone: loopback on that port", map[string]string{"PORT": "9091"}, "127.0.0.1:9091"),
		Entry("LISTEN_ADDR alone", map[string]string{"LISTEN_ADDR": "0.0.0.0:8081"}, "0.0.0.0:8081"),
		Entry("both, naming the same port", map[string]string{"LISTEN_ADDR": "10.0.0.5:9091", "PORT": "9091"}, "10.0.0.5:9091"),
	)

	DescribeTable("refuses to start",
		func(vars map[string]string, problem string) {
			_, err := settingsFrom(vars)
			Expect(err).To(MatchError(config.ErrInvalid))
			Expect(err).To(MatchError(ContainSubstring(problem)))
		},
		Entry("without ALLOWED_DOMAINS", map[string]string{}, "ALLOWED_DOMAINS is required"),
		Entry("with a blank ALLOWED_DOMAINS", map[string]string{"ALLOWED_DOMAINS": " , "}, "ALLOWED_DOMAINS is required"),
		Entry("with a wildcard", map[string]string{"ALLOWED_DOMAINS": "*.example.com"}, `"*.example.com"`),
		Entry("with a URL for a domain", map[string]string{"ALLOWED_DOMAINS": "https://example.com"}, `"https://example.com"`),
		Entry("with an unknown scheme", map[string]string{"ALLOWED_DOMAINS": "example.com", "UPSTREAM_SCHEME": "ftp"}, "UPSTREAM_SCHEME must be one of https, http"),
		Entry("with a listen address without port", map[string]string{"ALLOWED_DOMAINS": "example.com", "LISTEN_ADDR": "127.0.0.1"}, "LISTEN_ADDR must be host:port"),
		Entry("with an upstream address without host", map[string]string{"ALLOWED_DOMAINS": "example.com", "UPSTREAM_ADDR": ":443"}, "UPSTREAM_ADDR must be host:port"),
		Entry("with an upstream address port out of range", map[string]string{"ALLOWED_DOMAINS": "example.com", "UPSTREAM_ADDR": "10.0.0.1:70000"}, "UPSTREAM_ADDR must be host:port"),
		Entry("with PORT out of range", map[string]string{"ALLOWED_DOMAINS": "example.com", "PORT": "0"}, "PORT must be between 1 and 65535"),
		Entry("with PORT and LISTEN_ADDR naming different ports", map[string]string{"ALLOWED_DOMAINS": "example.com", "PORT": "9091", "LISTEN_ADDR": "127.0.0.1:8080"}, `LISTEN_ADDR "127.0.0.1:8080" and PORT 9091 name different ports`),
		Entry("with an unknown log level", map[string]string{"ALLOWED_DOMAINS": "example.com", "LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of"),
	)

	It("names every problem in one message", func() {
		_, err := settingsFrom(map[string]string{"LISTEN_ADDR": "nowhere", "UPSTREAM_SCHEME": "ftp", "LOG_LEVEL": "loud"})
		Expect(err).To(MatchError(And(
			ContainSubstring("ALLOWED_DOMAINS is required"),
			ContainSubstring("LISTEN_ADDR must be host:port"),
			ContainSubstring("UPSTREAM_SCHEME must be one of"),
			ContainSubstring("LOG_LEVEL must be one of"),
		)))
	})
})
