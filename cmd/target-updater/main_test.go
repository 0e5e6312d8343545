package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
)

var _ = Describe("the target-updater binary", func() {
	var (
		binary string
		cf     *fakecf.Server
		dir    string
		env    []string
		app    fakecf.App
	)

	BeforeEach(func() {
		var err error
		binary, err = gexec.Build("github.com/alphagov/cf-app-discovery/cmd/target-updater")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)

		cf = fakecf.New(fakecf.Options{})
		DeferCleanup(cf.Close)
		org := cf.AddOrg(fakecf.Org{Name: "org"})
		space, err := cf.AddSpace(fakecf.Space{Name: "space", OrgGUID: org.GUID})
		Expect(err).NotTo(HaveOccurred())
		domain := cf.AddDomain(fakecf.Domain{Name: "apps.example.com"})
		plan := cf.AddServicePlan(fakecf.ServicePlan{Name: "prometheus", BrokerCatalogID: "plan-id"})
		app, err = cf.AddApp(fakecf.App{Name: "my-app", SpaceGUID: space.GUID, Instances: 2})
		Expect(err).NotTo(HaveOccurred())
		_, err = cf.AddRoute(fakecf.Route{Host: "my-app", DomainGUID: domain.GUID, Destinations: []fakecf.Destination{{AppGUID: app.GUID}}})
		Expect(err).NotTo(HaveOccurred())
		_, err = cf.AddBinding(fakecf.Binding{AppGUID: app.GUID, PlanGUID: plan.GUID})
		Expect(err).NotTo(HaveOccurred())

		dir = GinkgoT().TempDir()
		env = []string{
			"API_ENDPOINT=" + cf.URL(), "UAA_USERNAME=" + fakecf.DefaultUsername, "UAA_PASSWORD=" + fakecf.DefaultPassword,
			"PLAN_ID=plan-id", "PAAS_DOMAIN=apps.example.com", "TARGETS_PATH=" + dir,
		}
	})

	start := func(args ...string) *gexec.Session {
		cmd := exec.Command(binary, args...)
		cmd.Env = env
		session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { session.Kill().Wait() })
		return session
	}

	It("runs one reconcile with --once and exits 0", func() {
		session := start("--once")
		Eventually(session, "20s").Should(gexec.Exit(0))
		Expect(filepath.Join(dir, "active", app.GUID+".json")).To(BeARegularFile())
	})

	It("exits non-zero with --once when the CF API fails, writing nothing", func() {
		cf.InjectFault(fakecf.Fault{Path: "/v3/apps", Status: 500})
		session := start("--once")
		Eventually(session, "60s").Should(gexec.Exit())
		Expect(session.ExitCode()).NotTo(Equal(0))
		entries, _ := os.ReadDir(filepath.Join(dir, "active"))
		Expect(entries).To(BeEmpty())
	})

	It("refuses to start with one message naming every problem", func() {
		env = []string{"UPDATE_SCHEDULE=sometimes"}
		session := start("--once")
		Eventually(session).Should(gexec.Exit(2))
		Expect(session.Err).To(gbytes.Say(`API_ENDPOINT is required.*PLAN_ID is required.*PAAS_DOMAIN is required.*UPDATE_SCHEDULE "sometimes" is not a cron spec`))
	})

	It("reconciles at start, serves /health and /metrics, and stops on SIGTERM", func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		port := ln.Addr().(*net.TCPAddr).Port
		Expect(ln.Close()).To(Succeed())
		env = append(env, "PORT="+strconv.Itoa(port), "UPDATE_SCHEDULE=@every 1h")
		session := start()
		Eventually(filepath.Join(dir, "active", app.GUID+".json"), "20s").Should(BeARegularFile())
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		Eventually(func() (int, error) {
			resp, err := http.Get(base + "/health")
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			return resp.StatusCode, nil
		}, "10s").Should(Equal(http.StatusOK))
		// The file appears with the first pass; the run is counted after the
		// verification pass.
		metrics := func() (string, error) {
			resp, err := http.Get(base + "/metrics")
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			return string(body), err
		}
		Eventually(metrics, "10s").Should(ContainSubstring(`cf_app_discovery_reconcile_runs_total{outcome="success"} 1`))
		body, err := metrics()
		Expect(err).NotTo(HaveOccurred())
		Expect(body).To(ContainSubstring(`cf_app_discovery_targets{state="active"} 1`))
		Expect(body).To(ContainSubstring(`cf_app_discovery_cf_requests_total`))
		Expect(body).To(ContainSubstring(`cf_app_discovery_store_operations_total`))

		session.Terminate()
		Eventually(session, "10s").Should(gexec.Exit(0))
	})

	Context("when it watches CF between reconciles", func() {
		var (
			metrics func() (string, error)
			file    string
		)

		groups := func(path string) func() (int, error) {
			return func() (int, error) {
				data, err := os.ReadFile(path)
				if err != nil {
					return -1, err
				}
				var groups []map[string]any
				err = json.Unmarshal(data, &groups)
				return len(groups), err
			}
		}

		BeforeEach(func() {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			Expect(err).NotTo(HaveOccurred())
			port := ln.Addr().(*net.TCPAddr).Port
			Expect(ln.Close()).To(Succeed())
			env = append(env, "PORT="+strconv.Itoa(port), "UPDATE_SCHEDULE=@every 1h", "WATCH_INTERVAL=1s", "INSTANCE_ADDRESSING=process")
			metrics = func() (string, error) {
				resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics")
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				return string(body), err
			}
			file = filepath.Join(dir, "active", app.GUID+".json")
		})

		It("follows changes within seconds, with no full reconcile", func() {
			start()
			Eventually(groups(file), "20s").Should(Equal(2))
			Expect(cf.Scale(app.GUID, 3)).To(Succeed())
			Eventually(groups(file), "10s").Should(Equal(3))
			Expect(cf.StopApp(app.GUID)).To(Succeed())
			Eventually(filepath.Join(dir, "inactive", app.GUID+".json"), "10s").Should(BeARegularFile())
			// The move writes the new place first, then removes the old.
			Eventually(file, "5s").ShouldNot(BeAnExistingFile())
			// A watch run counts its events once its writes are done: the
			// file can be there a moment before the metrics are.
			Eventually(metrics, "5s").Should(And(
				ContainSubstring(`cf_app_discovery_reconcile_runs_total{outcome="success"} 1`),
				MatchRegexp(`cf_app_discovery_watch_runs_total{outcome="success"} [1-9]`),
				MatchRegexp(`cf_app_discovery_watch_events_total [2-9]`)))
		})

		It("follows a rolling deploy to its end, which no audit event marks", func() {
			start()
			Eventually(groups(file), "20s").Should(Equal(2))
			d, err := cf.Deploy(app.GUID, fakecf.Rolling)
			Expect(err).NotTo(HaveOccurred())
			Eventually(groups(file), "10s").Should(Equal(3), "old 2, new 1")
			Expect(os.ReadFile(file)).To(ContainSubstring(d.NewProcessGUID))
			_, err = cf.StepDeployment(app.GUID)
			Expect(err).NotTo(HaveOccurred())
			_, err = cf.FinishDeployment(app.GUID)
			Expect(err).NotTo(HaveOccurred())
			Eventually(groups(file), "10s").Should(Equal(2), "the new process alone")
			Expect(os.ReadFile(file)).NotTo(ContainSubstring("__param_cf_process_instance"))
		})

		It("reconciles fully at a restart, then watches from there", func() {
			session := start()
			Eventually(groups(file), "20s").Should(Equal(2))
			session.Terminate()
			Eventually(session, "10s").Should(gexec.Exit(0))

			// Changed while no updater ran: the full reconcile at start sees it.
			Expect(cf.Scale(app.GUID, 4)).To(Succeed())
			start()
			Eventually(groups(file), "20s").Should(Equal(4))
			Eventually(metrics, "10s").Should(ContainSubstring(`cf_app_discovery_reconcile_runs_total{outcome="success"} 1`))
			Expect(cf.Scale(app.GUID, 1)).To(Succeed())
			Eventually(groups(file), "10s").Should(Equal(1))
		})

		It("does not watch with WATCH_INTERVAL=0", func() {
			env = append(env, "WATCH_INTERVAL=0")
			start()
			Eventually(metrics, "20s").Should(ContainSubstring(`cf_app_discovery_reconcile_runs_total{outcome="success"} 1`))
			Consistently(func() int { return cf.RequestsTo("/v3/audit_events") }, "3s").Should(BeZero())
			Expect(metrics()).NotTo(ContainSubstring("cf_app_discovery_watch_runs_total"))
		})
	})

	Context("when two instances run", func() {
		// metric reads one series of an instance's /metrics, or -1.
		metric := func(port int, series string) func() float64 {
			return func() float64 {
				resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics")
				if err != nil {
					return -1
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				for _, line := range strings.Split(string(body), "\n") {
					if v, ok := strings.CutPrefix(line, series+" "); ok {
						f, _ := strconv.ParseFloat(v, 64)
						return f
					}
				}
				return -1
			}
		}
		var base []string
		BeforeEach(func() {
			base = env
		})
		startOn := func(port int) *gexec.Session {
			env = append(slices.Clone(base), "PORT="+strconv.Itoa(port), "LEASE_DURATION=1s", "UPDATE_SCHEDULE=@every 1s")
			return start()
		}

		It("only the holder of the lease reconciles; when it is killed, the other takes over within two lease periods", func() {
			const period = time.Second
			portA, portB := freePort(), freePort()
			a := startOn(portA)
			Eventually(metric(portA, "cf_app_discovery_lease_held"), "20s").Should(Equal(1.0))
			startOn(portB)
			Eventually(metric(portB, "cf_app_discovery_lease_duration_seconds"), "20s").Should(Equal(1.0))
			Consistently(metric(portB, "cf_app_discovery_lease_held"), 2*period).Should(Equal(0.0))
			Expect(metric(portB, `cf_app_discovery_reconcile_runs_total{outcome="success"}`)()).To(Equal(0.0))

			a.Kill()
			killed := time.Now()
			Eventually(metric(portB, "cf_app_discovery_lease_held"), 2*period, 10*time.Millisecond).Should(Equal(1.0))
			AddReportEntry("take-over after SIGKILL of the holder", time.Since(killed).String())
			Expect(cf.Scale(app.GUID, 3)).To(Succeed())
			Eventually(func() (string, error) {
				body, err := os.ReadFile(filepath.Join(dir, "active", app.GUID+".json"))
				return string(body), err
			}, "10s").Should(ContainSubstring(app.GUID + ":2"))
		})
	})
})

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
