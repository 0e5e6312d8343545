package main

import (
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"syscall"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"
)

func start(env ...string) *gexec.Session {
	cmd := exec.Command(binary)
	cmd.Env = env
	session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { session.Kill().Wait() })
	return session
}

var _ = Describe("paas-proxy", func() {
	It("refuses to start without ALLOWED_DOMAINS, naming every problem", func() {
		session := start("UPSTREAM_SCHEME=ftp")
		Eventually(session).Should(gexec.Exit(2))
		Expect(session.Err).To(gbytes.Say("ALLOWED_DOMAINS is required.*UPSTREAM_SCHEME must be one of|UPSTREAM_SCHEME must be one of.*ALLOWED_DOMAINS is required"))
		Expect(session.Out.Contents()).To(BeEmpty())
	})

	It("serves /health, and stops cleanly on SIGTERM", func() {
		session := start("ALLOWED_DOMAINS=example.com", "LISTEN_ADDR=127.0.0.1:0")
		Eventually(session.Out).Should(gbytes.Say(`"paas-proxy.started"`))
		addr := regexp.MustCompile(`"addr":"([^"]+)"`).FindSubmatch(session.Out.Contents())
		Expect(addr).To(HaveLen(2))

		resp, err := http.Get("http://" + string(addr[1]) + "/health")
		Expect(err).NotTo(HaveOccurred())
		body, _ := io.ReadAll(resp.Body)
		Expect(resp.Body.Close()).To(Succeed())
		Expect(resp.StatusCode).To(Equal(http.StatusOK))
		Expect(string(body)).To(Equal("ok\n"))

		resp, err = http.Get("http://" + string(addr[1]) + "/metrics")
		Expect(err).NotTo(HaveOccurred())
		body, _ = io.ReadAll(resp.Body)
		Expect(resp.Body.Close()).To(Succeed())
		Expect(string(body)).To(And(ContainSubstring("cf_app_discovery_proxy_requests_total"), ContainSubstring("go_goroutines")))

		session.Signal(syscall.SIGTERM)
		Eventually(session).Should(gexec.Exit(0))
		Expect(session.Out).To(gbytes.Say(`"paas-proxy.stopped"`))
	})
})
