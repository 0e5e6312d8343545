package cfcli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/cfcli"
)

const (
	password       = "cf-pw-6c1d9e2f"
	brokerPassword = "broker-pw-0a7b3c5e"
	token          = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
)

var _ = Describe("CLI", func() {
	var (
		fake *fakeCF
		home string
		log  *bytes.Buffer
		cli  *cfcli.CLI
		ctx  context.Context
	)

	BeforeEach(func() {
		fake = newFakeCF()
		home = GinkgoT().TempDir()
		log = &bytes.Buffer{}
		cli = &cfcli.CLI{Path: fake.path, Home: home, Timeout: 10 * time.Second, Log: log}
		ctx = context.Background()
		fake.on("curl", `echo '{"pagination":{"total_results":1},"resources":[{"guid":"0d7c1a3e-5b2f-4e8a-9c6d-1f2e3a4b5c6d","name":"orders"}]}'; exit 0`)
	})

	DescribeTable("runs each command with exactly these arguments",
		func(run func(*cfcli.CLI) error, want ...string) {
			Expect(run(cli)).To(Succeed())
			calls := fake.calls()
			Expect(calls).To(HaveLen(1))
			Expect(calls[0].Args).To(Equal(want))
		},
		Entry("cf api", func(c *cfcli.CLI) error { return c.API(ctx, "https://api.example.com", false) },
			"api", "https://api.example.com"),
		Entry("cf api, skipping TLS validation", func(c *cfcli.CLI) error { return c.API(ctx, "https://api.example.com", true) },
			"api", "https://api.example.com", "--skip-ssl-validation"),
		Entry("cf auth", func(c *cfcli.CLI) error { return c.Auth(ctx, "tester", password) },
			"auth"),
		Entry("cf target", func(c *cfcli.CLI) error { return c.Target(ctx, "tenant-org", "tenant-space") },
			"target", "-o", "tenant-org", "-s", "tenant-space"),
		Entry("cf push", func(c *cfcli.CLI) error {
			return c.Push(ctx, cfcli.App{Name: "orders", Path: "/srv/app", Buildpack: "binary_buildpack",
				Command: "./metricsapp", Instances: 2, Memory: "32M", Disk: "64M"})
		}, "push", "orders", "--no-manifest", "-p", "/srv/app", "-b", "binary_buildpack", "-c", "./metricsapp", "-i", "2", "-m", "32M", "-k", "64M"),
		Entry("cf create-service-broker", func(c *cfcli.CLI) error {
			return c.CreateServiceBroker(ctx, "run-broker", "broker", brokerPassword, "https://broker.example.com", true)
		}, "create-service-broker", "run-broker", "broker", "https://broker.example.com", "--space-scoped"),
		Entry("cf create-service", func(c *cfcli.CLI) error {
			return c.CreateService(ctx, "gds-prometheus", "prometheus", "run-prom", "run-broker")
		}, "create-service", "gds-prometheus", "prometheus", "run-prom", "-b", "run-broker"),
		Entry("cf bind-service", func(c *cfcli.CLI) error { return c.BindService(ctx, "orders", "run-prom") },
			"bind-service", "orders", "run-prom"),
		Entry("cf unbind-service", func(c *cfcli.CLI) error { return c.UnbindService(ctx, "orders", "run-prom") },
			"unbind-service", "orders", "run-prom"),
		Entry("cf scale", func(c *cfcli.CLI) error { return c.Scale(ctx, "orders", 3) },
			"scale", "orders", "-i", "3"),
		Entry("cf stop", func(c *cfcli.CLI) error { return c.Stop(ctx, "orders") },
			"stop", "orders"),
		Entry("cf start", func(c *cfcli.CLI) error { return c.Start(ctx, "orders") },
			"start", "orders"),
		Entry("cf create-service-key", func(c *cfcli.CLI) error { return c.CreateServiceKey(ctx, "run-prom", "run-key") },
			"create-service-key", "run-prom", "run-key"),
		Entry("cf delete-service-key", func(c *cfcli.CLI) error { return c.DeleteServiceKey(ctx, "run-prom", "run-key") },
			"delete-service-key", "run-prom", "run-key", "-f"),
		Entry("cf delete", func(c *cfcli.CLI) error { return c.Delete(ctx, "orders") },
			"delete", "orders", "-f", "-r"),
		Entry("cf delete-service", func(c *cfcli.CLI) error { return c.DeleteService(ctx, "run-prom") },
			"delete-service", "run-prom", "-f"),
		Entry("cf delete-service-broker", func(c *cfcli.CLI) error { return c.DeleteServiceBroker(ctx, "run-broker") },
			"delete-service-broker", "run-broker", "-f"),
		Entry("cf curl", func(c *cfcli.CLI) error { _, err := c.AppGUID(ctx, "orders"); return err },
			"curl", "/v3/apps?names=orders"),
	)

	Describe("credentials", func() {
		It("gives cf auth the user and password in its environment, and no other command", func() {
			Expect(cli.Auth(ctx, "tester", password)).To(Succeed())
			Expect(cli.Target(ctx, "tenant-org", "tenant-space")).To(Succeed())
			calls := fake.calls()
			Expect(calls).To(HaveLen(2))
			Expect(calls[0].Env).To(HaveKeyWithValue("CF_USERNAME", "tester"))
			Expect(calls[0].Env).To(HaveKeyWithValue("CF_PASSWORD", password))
			Expect(calls[1].Env).NotTo(HaveKey("CF_PASSWORD"))
			Expect(calls[1].Env).NotTo(HaveKey("CF_USERNAME"))
			Expect(fake.argv()).NotTo(ContainSubstring(password))
		})

		It("gives cf create-service-broker the broker's password in CF_BROKER_PASSWORD only", func() {
			Expect(cli.CreateServiceBroker(ctx, "run-broker", "broker", brokerPassword, "https://broker.example.com", true)).To(Succeed())
			Expect(cli.CreateService(ctx, "gds-prometheus", "prometheus", "run-prom", "run-broker")).To(Succeed())
			calls := fake.calls()
			Expect(calls[0].Env).To(HaveKeyWithValue("CF_BROKER_PASSWORD", brokerPassword))
			Expect(calls[1].Env).NotTo(HaveKey("CF_BROKER_PASSWORD"))
			Expect(fake.argv()).NotTo(ContainSubstring(brokerPassword))
		})

		It("runs cf with a CF_HOME of its own, no trace, and none of the test's other variables", func() {
			GinkgoT().Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-1b2c3d")
			GinkgoT().Setenv("CF_PASSWORD", password)
			GinkgoT().Setenv("CF_TRACE", "true")
			GinkgoT().Setenv("CF_HOME", "/home/someone")
			GinkgoT().Setenv("HTTPS_PROXY", "http://proxy.example:3128")
			Expect(cli.API(ctx, "https://api.example.com", false)).To(Succeed())
			env := fake.calls()[0].Env
			Expect(env).To(HaveKeyWithValue("CF_HOME", home))
			Expect(env).To(HaveKeyWithValue("CF_TRACE", "false"))
			Expect(env).To(HaveKeyWithValue("HTTPS_PROXY", "http://proxy.example:3128"))
			Expect(env).To(HaveKey("PATH"))
			Expect(env).NotTo(HaveKey("AWS_SECRET_ACCESS_KEY"))
			Expect(env).NotTo(HaveKey("CF_PASSWORD"))
		})

		It("redacts the password and tokens from errors and from the log", func() {
			fake.on("auth", `echo "Authenticating as $CF_USERNAME with $CF_PASSWORD"
echo "Authorization: bearer `+token+`"
echo "Credentials were rejected, please try again." >&2
echo FAILED
exit 1`)
			err := cli.Auth(ctx, "tester", password)
			Expect(err).To(HaveOccurred())
			for _, text := range []string{err.Error(), log.String()} {
				Expect(text).To(ContainSubstring("Authenticating as tester with [REDACTED]"))
				Expect(text).To(ContainSubstring("Credentials were rejected"))
				Expect(text).To(ContainSubstring("bearer [REDACTED]"))
				Expect(text).NotTo(ContainSubstring(password))
				Expect(text).NotTo(ContainSubstring(token))
			}
			Expect(err.Error()).To(HavePrefix("cf auth: exit status 1; output:\n"))
			Expect(log.String()).To(HavePrefix("$ cf auth\n"))
		})

		It("redacts the broker's password from a failed registration", func() {
			fake.on("create-service-broker", `echo "could not reach broker with password $CF_BROKER_PASSWORD"; echo FAILED; exit 1`)
			err := cli.CreateServiceBroker(ctx, "run-broker", "broker", brokerPassword, "https://broker.example.com", true)
			Expect(err).To(MatchError(ContainSubstring("with password [REDACTED]")))
			Expect(err.Error()).NotTo(ContainSubstring(brokerPassword))
			Expect(log.String()).NotTo(ContainSubstring(brokerPassword))
		})
	})

	Describe("failures", func() {
		It("names the command and gives cf's output when it fails", func() {
			fake.on("create-service-key", `echo "Creating service key run-key for service instance run-prom as tester..."
echo "Service broker error: This service supports generation of credentials through binding an application only." >&2
echo FAILED
exit 1`)
			err := cli.CreateServiceKey(ctx, "run-prom", "run-key")
			Expect(err).To(MatchError(HavePrefix("cf create-service-key run-prom run-key: exit status 1; output:\n")))
			Expect(err).To(MatchError(ContainSubstring("binding an application only")))
			Expect(err).To(MatchError(ContainSubstring("Creating service key run-key")))
		})

		It("stops a command at its timeout and says so", func() {
			cli.Timeout = 300 * time.Millisecond
			fake.on("stop", `echo "Stopping app orders..."; exec sleep 30`)
			start := time.Now()
			err := cli.Stop(ctx, "orders")
			Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
			Expect(err).To(MatchError(HavePrefix("cf stop orders: timed out after 300ms; output:\n")))
			Expect(err).To(MatchError(ContainSubstring("Stopping app orders...")))
		})

		It("does not wait for a child that keeps cf's output open after the timeout", func() {
			cli.Timeout = 300 * time.Millisecond
			fake.on("scale", `echo "Scaling app orders..."; sleep 30; echo never`)
			start := time.Now()
			err := cli.Scale(ctx, "orders", 3)
			Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second))
			Expect(err).To(MatchError(HavePrefix("cf scale orders -i 3: timed out after 300ms")))
			Expect(err.Error()).NotTo(ContainSubstring("never"))
		})

		It("gives push and start the longer timeout", func() {
			cli.Timeout = 300 * time.Millisecond
			cli.PushTimeout = 3 * time.Second
			fake.on("push", `sleep 1`)
			fake.on("start", `sleep 1`)
			Expect(cli.Push(ctx, cfcli.App{Name: "orders", Path: "/srv/app"})).To(Succeed())
			Expect(cli.Start(ctx, "orders")).To(Succeed())
			cli.PushTimeout = 300 * time.Millisecond
			Expect(cli.Start(ctx, "orders")).To(MatchError(HavePrefix("cf start orders: timed out after 300ms")))
		})

		It("stops when its context is cancelled", func() {
			fake.on("stop", `exec sleep 30`)
			cctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(200*time.Millisecond, cancel)
			Expect(cli.Stop(cctx, "orders")).To(MatchError(And(HavePrefix("cf stop orders: "), ContainSubstring("context canceled"))))
		})

		It("says when cf cannot be run", func() {
			cli.Path = filepath.Join(GinkgoT().TempDir(), "cf")
			Expect(cli.API(ctx, "https://api.example.com", false)).To(MatchError(And(
				HavePrefix("cf api https://api.example.com: "), ContainSubstring("no such file or directory"))))
		})
	})

	Describe("AppGUID", func() {
		It("returns the guid of the one app with that name", func() {
			Expect(cli.AppGUID(ctx, "orders")).To(Equal("0d7c1a3e-5b2f-4e8a-9c6d-1f2e3a4b5c6d"))
		})

		It("escapes the name in the query", func() {
			_, _ = cli.AppGUID(ctx, "a b&names=c")
			Expect(fake.calls()[0].Args).To(Equal([]string{"curl", "/v3/apps?names=a+b%26names%3Dc"}))
		})

		DescribeTable("is an error unless exactly one app answers",
			func(answer, want string) {
				fake.on("curl", "echo '"+answer+"'; exit 0")
				_, err := cli.AppGUID(ctx, "orders")
				Expect(err).To(MatchError(ContainSubstring(want)))
			},
			Entry("no app", `{"resources":[]}`, `cf curl /v3/apps?names=orders: no app is named "orders"`),
			Entry("two apps", `{"resources":[{"guid":"a"},{"guid":"b"}]}`, `cf curl /v3/apps?names=orders: 2 apps are named "orders"`),
			Entry("an API error", `{"errors":[{"code":10002,"title":"CF-NotAuthenticated","detail":"Authentication error"}]}`,
				"cf curl /v3/apps?names=orders: CF-NotAuthenticated: Authentication error"),
			Entry("not JSON", `Not logged in. Use cf login`, "cf curl /v3/apps?names=orders: not a JSON answer"),
		)
	})
})
