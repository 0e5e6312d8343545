package acceptance_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/acceptance/cfcli"
	"github.com/alphagov/cf-app-discovery/config"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// The flows of issue 5 against a real Cloud Foundry, with the cf CLI, a
// deployed broker and target updater, and their bucket. README.md
// ("Against a real Cloud Foundry") lists the settings; without them every
// spec here is skipped with a message naming what is missing.
var _ = Describe("against a real Cloud Foundry", Ordered, ContinueOnFailure, Label("real-cf"), func() {
	var (
		cli      *cfcli.CLI
		st       store.Store
		run      string
		broker   string
		services [2]string
		appDir   string
	)

	s, missing := cfcli.LoadSettings(lookupEnv, exec.LookPath)
	BeforeEach(func() {
		if missing != nil {
			Skip(missing.Error())
		}
	})

	BeforeAll(func(ctx SpecContext) {
		if missing != nil {
			return // each spec skips, saying why
		}
		run = "cfad-" + randomHex(4)
		GinkgoWriter.Printf("real Cloud Foundry run %s in %s/%s\n", run, s.Org, s.Space)

		home, err := os.MkdirTemp("", "cf-home-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, home)
		cli = &cfcli.CLI{Home: home, Log: GinkgoWriter}
		Expect(cli.API(ctx, s.API, s.SkipSSLValidation)).To(Succeed())
		Expect(cli.Auth(ctx, s.Username, s.Password)).To(Succeed())
		Expect(cli.Target(ctx, s.Org, s.Space)).To(Succeed())

		st, err = store.Open(ctx, config.Store{Bucket: s.Bucket, Region: s.Region, Endpoint: s.Endpoint}, prometheus.NewRegistry())
		Expect(err).NotTo(HaveOccurred())
		appDir = buildMetricsApp()

		// Cleanups run last first: the service instances go before the
		// broker that holds them.
		broker = run + "-broker"
		DeferCleanup(func() error { return cli.DeleteServiceBroker(context.Background(), broker) })
		Expect(cli.CreateServiceBroker(ctx, broker, s.BrokerUsername, s.BrokerPassword, s.BrokerURL, true)).To(Succeed())
		for i := range services {
			services[i] = fmt.Sprintf("%s-prom-%d", run, i+1)
			name := services[i]
			DeferCleanup(func() error { return cli.DeleteService(context.Background(), name) })
			Expect(cli.CreateService(ctx, s.ServiceName, s.PlanName, name, broker)).To(Succeed())
		}
	})

	// push pushes the sample app with n instances, deletes it (and so
	// unbinds it) when the spec ends, and returns its guid.
	push := func(ctx context.Context, name string, n int) string {
		DeferCleanup(func() error { return cli.Delete(context.Background(), name) })
		Expect(cli.Push(ctx, cfcli.App{Name: name, Path: appDir, Buildpack: "binary_buildpack",
			Command: "./metricsapp", Instances: n, Memory: "32M", Disk: "64M"})).To(Succeed())
		guid, err := cli.AppGUID(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		return guid
	}

	// target reads app's target file: where it is and the instance
	// labels of its groups.
	target := func(ctx context.Context, guid string) func(Gomega) placement {
		return func(g Gomega) placement {
			var found []placement
			for _, started := range []bool{true, false} {
				key, err := store.TargetKey(guid, started)
				g.Expect(err).NotTo(HaveOccurred())
				body, _, err := st.Get(ctx, key)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				g.Expect(err).NotTo(HaveOccurred())
				var groups []targets.TargetGroup
				g.Expect(json.Unmarshal(body, &groups)).To(Succeed(), key)
				p := placement{Where: "inactive"}
				if started {
					p.Where = "active"
				}
				for _, group := range groups {
					p.Instances = append(p.Instances, group.Labels["instance"])
				}
				sort.Strings(p.Instances)
				found = append(found, p)
			}
			g.Expect(len(found)).To(BeNumerically("<=", 1), "a target file in active/ and in inactive/")
			if len(found) == 0 {
				return placement{Where: "none"}
			}
			return found[0]
		}
	}

	// bound is how soon a bind or unbind shows in the bucket: the broker
	// writes before it answers.
	const bound = "30s"

	It("1. binds: the target file lists every instance with its labels", func(ctx SpecContext) {
		app := run + "-orders"
		guid := push(ctx, app, 2)
		Expect(cli.BindService(ctx, app, services[0])).To(Succeed())
		Eventually(target(ctx, guid), bound, "2s").Should(Equal(placement{"active", instances(guid, 2)}))

		key, _ := store.TargetKey(guid, true)
		body, _, err := st.Get(ctx, key)
		Expect(err).NotTo(HaveOccurred())
		var groups []targets.TargetGroup
		Expect(json.Unmarshal(body, &groups)).To(Succeed())
		for _, group := range groups {
			Expect(group.Targets).To(ConsistOf(HavePrefix(app + ".")))
			Expect(group.Labels).To(HaveKeyWithValue("job", app))
			Expect(group.Labels).To(HaveKeyWithValue("org", s.Org))
			Expect(group.Labels).To(HaveKeyWithValue("space", s.Space))
			Expect(group.Labels).To(HaveKeyWithValue("__param_cf_app_guid", guid))
		}
	})

	It("2. follows scaling: 2 to 3 instances, then to 0", func(ctx SpecContext) {
		app := run + "-basket"
		guid := push(ctx, app, 2)
		Expect(cli.BindService(ctx, app, services[0])).To(Succeed())
		Eventually(target(ctx, guid), bound, "2s").Should(Equal(placement{"active", instances(guid, 2)}))
		Expect(cli.Scale(ctx, app, 3)).To(Succeed())
		Eventually(target(ctx, guid), s.ReconcileTimeout, "5s").Should(Equal(placement{"active", instances(guid, 3)}))
		Expect(cli.Scale(ctx, app, 0)).To(Succeed())
		Eventually(target(ctx, guid), s.ReconcileTimeout, "5s").Should(Equal(placement{"active", nil}))
	})

	It("3. moves a stopped app to inactive/ and back when it starts", func(ctx SpecContext) {
		app := run + "-payments"
		guid := push(ctx, app, 1)
		Expect(cli.BindService(ctx, app, services[0])).To(Succeed())
		Eventually(target(ctx, guid), bound, "2s").Should(Equal(placement{"active", instances(guid, 1)}))
		Expect(cli.Stop(ctx, app)).To(Succeed())
		Eventually(target(ctx, guid), s.ReconcileTimeout, "5s").Should(Equal(placement{"inactive", instances(guid, 1)}))
		Expect(cli.Start(ctx, app)).To(Succeed())
		Eventually(target(ctx, guid), s.ReconcileTimeout, "5s").Should(Equal(placement{"active", instances(guid, 1)}))
	})

	It("6. unbinds, refuses service keys, and keeps an app with another binding", func(ctx SpecContext) {
		app := run + "-accounts"
		guid := push(ctx, app, 1)
		Expect(cli.BindService(ctx, app, services[0])).To(Succeed())
		Expect(cli.BindService(ctx, app, services[1])).To(Succeed())
		Eventually(target(ctx, guid), bound, "2s").Should(Equal(placement{"active", instances(guid, 1)}))

		Expect(cli.UnbindService(ctx, app, services[0])).To(Succeed())
		Expect(target(ctx, guid)(Default)).To(Equal(placement{"active", instances(guid, 1)}), "the app is still bound to "+services[1])
		// A reconcile after the unbind keeps the file too: it takes up
		// the new scale.
		Expect(cli.Scale(ctx, app, 2)).To(Succeed())
		Eventually(target(ctx, guid), s.ReconcileTimeout, "5s").Should(Equal(placement{"active", instances(guid, 2)}))

		Expect(cli.UnbindService(ctx, app, services[1])).To(Succeed())
		Eventually(target(ctx, guid), bound, "2s").Should(Equal(placement{Where: "none"}))

		key := run + "-key"
		DeferCleanup(func() error { return cli.DeleteServiceKey(context.Background(), services[0], key) })
		err := cli.CreateServiceKey(ctx, services[0], key)
		Expect(err).To(MatchError(MatchRegexp(`RequiresApp|binding an application only`)), "Cloud Controller's message for the broker's RequiresApp")
	})
})

// placement is where an app's target file is ("active", "inactive" or
// "none") and the instance labels of its groups, sorted.
type placement struct {
	Where     string
	Instances []string
}

// buildMetricsApp builds the sample app for Cloud Foundry's Linux cells
// into a directory of its own, ready for the binary buildpack.
func buildMetricsApp() string {
	dir, err := os.MkdirTemp("", "metricsapp-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "metricsapp"), "github.com/alphagov/cf-app-discovery/acceptance/metricsapp")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), string(out))
	return dir
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
