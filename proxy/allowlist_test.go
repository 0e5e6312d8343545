package proxy_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/proxy"
)

var _ = Describe("AllowList", func() {
	var allow proxy.AllowList

	BeforeEach(func() {
		var err error
		allow, err = proxy.ParseAllowList([]string{"example.com", " .Apps.Internal. ", "localhost", "10.0.0.1", "::1"})
		Expect(err).NotTo(HaveOccurred())
	})

	DescribeTable("Allows",
		func(host string, allowed bool) {
			Expect(allow.Allows(host)).To(Equal(allowed))
		},
		Entry("the domain itself", "example.com", true),
		Entry("a name under it", "my-app.example.com", true),
		Entry("a name two levels under it", "a.b.example.com", true),
		Entry("with a port", "my-app.example.com:8443", true),
		Entry("upper case", "My-App.EXAMPLE.com", true),
		Entry("a trailing dot", "my-app.example.com.", true),
		Entry("a trailing dot and a port", "my-app.example.com.:443", true),
		Entry("an entry written with dots and capitals", "x.apps.internal", true),
		Entry("not on a dot boundary", "badexample.com", false),
		Entry("the domain as a prefix", "example.com.evil.net", false),
		Entry("another domain", "my-app.example.org", false),
		Entry("localhost exactly", "localhost", true),
		Entry("localhost with a port", "localhost:8080", true),
		Entry("a name under a single-label entry", "evil.localhost", false),
		Entry("an IP literal listed", "10.0.0.1", true),
		Entry("an IP literal listed, with a port", "10.0.0.1:443", true),
		Entry("an IPv6 literal listed", "[::1]:8080", true),
		Entry("an IP literal not listed", "127.0.0.1", false),
		Entry("an IPv6 literal not listed", "[::2]", false),
		Entry("an IP literal ending like a listed domain", "10.0.0.1.example.com", true),
		Entry("empty", "", false),
		Entry("only a port", ":443", false),
		Entry("an empty label", "a..example.com", false),
		Entry("a character no host name has", "a*b.example.com", false),
		Entry("an unterminated IPv6 literal", "[::1", false),
	)

	It("refuses an empty list", func() {
		_, err := proxy.ParseAllowList([]string{" ", ""})
		Expect(err).To(MatchError(proxy.ErrEmptyAllowList))
	})

	It("names every entry that is not a domain or an IP address", func() {
		_, err := proxy.ParseAllowList([]string{"*.example.com", "ok.com", "http://x.com", "a b"})
		Expect(err).To(MatchError(And(
			ContainSubstring(`"*.example.com"`), ContainSubstring(`"http://x.com"`), ContainSubstring(`"a b"`),
		)))
		Expect(err.Error()).NotTo(ContainSubstring("ok.com"))
	})
})
