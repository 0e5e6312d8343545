package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/httpsd"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("the broker binary's http_sd endpoint", func() {
	const appGUID = "6b5f1a2e-0c3d-4e5f-8a9b-0c1d2e3f4a5b"
	var (
		binary string
		env    []string
		base   string
	)

	BeforeEach(func() {
		var err error
		binary, err = gexec.Build("github.com/alphagov/cf-app-discovery/cmd/broker")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)
		cf := fakecf.New(fakecf.Options{})
		DeferCleanup(cf.Close)

		dir := GinkgoT().TempDir()
		bucket, err := store.NewDir(dir)
		Expect(err).NotTo(HaveOccurred())
		app := targets.App{GUID: appGUID, Name: "my-app", State: "STARTED", Org: "o", Space: "s",
			Processes: []targets.Process{{GUID: appGUID, Instances: 2}}}
		_, err = bucket.Put(context.Background(), store.ActivePrefix+appGUID+".json", targets.Render(app, "apps.example.com"), store.Condition{})
		Expect(err).NotTo(HaveOccurred())

		port := freePort()
		base = "http://127.0.0.1:" + port
		env = []string{
			"PORT=" + port, "TARGETS_PATH=" + dir, "LOG_LEVEL=error",
			"BROKER_USERNAME=cc", "BROKER_PASSWORD=osb-secret",
			"SERVICE_ID=service-id", "PLAN_ID=plan-id", "PAAS_DOMAIN=apps.example.com",
			"API_ENDPOINT=" + cf.URL(), "UAA_USERNAME=" + fakecf.DefaultUsername, "UAA_PASSWORD=" + fakecf.DefaultPassword,
		}
	})

	start := func(extra ...string) {
		cmd := exec.Command(binary)
		cmd.Env = append(append([]string{"PATH=" + os.Getenv("PATH")}, env...), extra...)
		session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { session.Terminate().Wait() })
		Eventually(func() error {
			resp, err := http.Get(base + "/health")
			if err == nil {
				resp.Body.Close()
			}
			return err
		}).WithTimeout(20 * time.Second).Should(Succeed())
	}

	request := func(user, password string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, base+httpsd.Path, nil)
		Expect(err).NotTo(HaveOccurred())
		req.SetBasicAuth(user, password)
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		return resp.StatusCode, string(body)
	}

	It("serves the bucket's groups beside the OSB API with SD credentials", func() {
		start("SD_USERNAME=prometheus", "SD_PASSWORD=sd-secret")
		Eventually(func() int { code, _ := request("prometheus", "sd-secret"); return code }).WithTimeout(10 * time.Second).Should(Equal(http.StatusOK))
		_, body := request("prometheus", "sd-secret")
		Expect(strings.Count(body, `"targets"`)).To(Equal(2))
		Expect(body).To(ContainSubstring(appGUID + ":1"))
		code, _ := request("cc", "osb-secret")
		Expect(code).To(Equal(http.StatusUnauthorized))
	})

	It("does not serve it without SD credentials", func() {
		start()
		code, _ := request("cc", "osb-secret")
		Expect(code).To(Equal(http.StatusNotFound))
	})
})

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}
