package acceptance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/alphagov/cf-app-discovery/acceptance/ccsim"
	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/acceptance/router"
	"github.com/alphagov/cf-app-discovery/acceptance/seaweedfs"
	"github.com/alphagov/cf-app-discovery/store"
)

func TestAcceptance(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Acceptance")
}

// Secrets the programs are given; no log line may contain them.
const (
	brokerPassword = "broker-pw-3f9c1e7a"
	uaaPassword    = "uaa-pw-8d2b6c4f"
	awsSecret      = "aws-secret-5e1a9b7d"
	sdPassword     = "sd-pw-71c4a0e9"
	sdUsername     = "prometheus"
	monitorUser    = "prometheus-monitor"
	serviceID      = "7d8e2b3c-1111-4a5b-8c6d-0e1f2a3b4c5d"
	planID         = "7d8e2b3c-2222-4a5b-8c6d-0e1f2a3b4c5d"
	instanceID     = "9a8b7c6d-3333-4e5f-8a9b-0c1d2e3f4a5b"
	appsDomain     = "apps.example.com"
	paasDomain     = "paas.example"
	bucket         = "prometheus-targets"
)

type binaries struct{ Broker, Updater, Proxy string }

// world is everything the suite starts.
type world struct {
	bin    binaries
	cf     *fakecf.Server
	space  fakecf.Space
	domain fakecf.Domain
	plan   fakecf.ServicePlan
	// s3URL is the S3 server as the programs reach it, through s3Faults;
	// st reads and writes it directly, as a Prometheus host's sync would.
	s3URL      string
	s3Faults   *faultyS3Proxy
	weed       *seaweedfs.Server
	st         store.Store
	brokerURL  string
	proxyPort  string
	cc         *ccsim.Controller
	targetsDir string
	proms      []*promServer
	upstream   *upstreamLog
	logs       *safeBuffer
}

var w world

var _ = SynchronizedBeforeSuite(func() []byte {
	var b binaries
	var err error
	b.Broker, err = gexec.Build("github.com/alphagov/cf-app-discovery/cmd/broker")
	Expect(err).NotTo(HaveOccurred())
	b.Updater, err = gexec.Build("github.com/alphagov/cf-app-discovery/cmd/target-updater")
	Expect(err).NotTo(HaveOccurred())
	b.Proxy, err = gexec.Build("github.com/alphagov/cf-app-discovery/cmd/paas-proxy")
	Expect(err).NotTo(HaveOccurred())
	data, _ := json.Marshal(b)
	return data
}, func(data []byte) {
	Expect(json.Unmarshal(data, &w.bin)).To(Succeed())
	w.logs = &safeBuffer{}
	startWorld()
})

var _ = SynchronizedAfterSuite(func() {}, func() {
	gexec.KillAndWait()
	gexec.CleanupBuildArtifacts()
})

var _ = ReportAfterSuite("duration", func(r Report) {
	counts := map[types.SpecState]int{}
	var faults time.Duration
	for _, s := range r.SpecReports {
		if s.LeafNodeType != types.NodeTypeIt {
			continue
		}
		counts[s.State]++
		if len(s.ContainerHierarchyTexts) > 0 && s.ContainerHierarchyTexts[0] == "under faults" {
			faults += s.RunTime
		}
	}
	fmt.Printf("acceptance suite: %d passed, %d failed, %d skipped in %s (fault specs %s)\n",
		counts[types.SpecStatePassed], counts[types.SpecStateFailed]+counts[types.SpecStatePanicked]+counts[types.SpecStateTimedout],
		counts[types.SpecStateSkipped], r.RunTime.Round(time.Second), faults.Round(time.Second))
})

func startWorld() {
	ctx := context.Background()
	w.cf = fakecf.New(fakecf.Options{Users: map[string]string{monitorUser: uaaPassword}})
	DeferCleanup(w.cf.Close)
	org := w.cf.AddOrg(fakecf.Org{Name: "tenant-org"})
	var err error
	w.space, err = w.cf.AddSpace(fakecf.Space{Name: "tenant-space", OrgGUID: org.GUID})
	Expect(err).NotTo(HaveOccurred())
	w.domain = w.cf.AddDomain(fakecf.Domain{Name: appsDomain})
	w.plan = w.cf.AddServicePlan(fakecf.ServicePlan{Name: "prometheus", BrokerCatalogID: planID})

	// A real S3 implementation: SeaweedFS, built once by `make test`.
	weed, err := seaweedfs.Start(seaweedfs.Options{AccessKey: "acceptance", SecretKey: awsSecret, Bucket: bucket})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(weed.Stop)
	w.weed = weed
	weedURL, err := url.Parse(weed.Endpoint)
	Expect(err).NotTo(HaveOccurred())
	w.s3Faults = &faultyS3Proxy{next: httputil.NewSingleHostReverseProxy(weedURL)}
	w.s3Faults.set(nil)
	faulty := httptest.NewServer(w.s3Faults)
	DeferCleanup(faulty.Close)
	w.s3URL = faulty.URL
	w.st, err = weed.Store(ctx, bucket)
	Expect(err).NotTo(HaveOccurred())
	// The bucket exists before the programs start, as it would on AWS.
	_, err = w.st.List(ctx, store.ActivePrefix)
	Expect(err).NotTo(HaveOccurred())

	w.upstream = newUpstreamLog(&router.Router{Apps: w.cf, PaaSDomain: paasDomain})
	rt := httptest.NewServer(w.upstream)
	DeferCleanup(rt.Close)

	// The broker serves http_sd too (httpsd_test.go), from a view of the
	// bucket it refreshes every second.
	brokerPort := freePort()
	start(w.bin.Broker, nil, append(commonEnv(),
		"PORT="+brokerPort, "BROKER_USERNAME=cc", "BROKER_PASSWORD="+brokerPassword,
		"SERVICE_ID="+serviceID, "SERVICE_NAME=gds-prometheus", "PLAN_NAME=prometheus",
		"SD_USERNAME="+sdUsername, "SD_PASSWORD="+sdPassword, "SD_REFRESH_INTERVAL=1s",
	)...)
	w.brokerURL = "http://127.0.0.1:" + brokerPort
	waitHealthy(w.brokerURL + "/health")

	w.proxyPort = freePort()
	start(w.bin.Proxy, nil, "LISTEN_ADDR=127.0.0.1:"+w.proxyPort, "ALLOWED_DOMAINS="+appsDomain+","+paasDomain,
		"UPSTREAM_SCHEME=http", "UPSTREAM_ADDR="+strings.TrimPrefix(rt.URL, "http://"), "LOG_LEVEL=debug")
	waitHealthy("http://127.0.0.1:" + w.proxyPort + "/health")

	w.targetsDir = GinkgoT().TempDir()
	startPrometheuses()

	w.cc = &ccsim.Controller{Broker: w.brokerURL, Username: "cc", Password: brokerPassword,
		ServiceID: serviceID, PlanID: planID, PlanGUID: w.plan.GUID, CF: w.cf,
		OrgGUID: org.GUID, SpaceGUID: w.space.GUID, OrgName: org.Name, SpaceName: w.space.Name}
	Expect(w.cc.Provision(instanceID).Status).To(Equal(http.StatusCreated))
}

// commonEnv is the configuration the broker and the updater share. As on
// Cloud Foundry (README, "Deploy with cf push"), the secrets come from a
// user-provided service in VCAP_SERVICES, not from the environment.
func commonEnv() []string {
	vcap, err := json.Marshal(map[string]any{"user-provided": []any{map[string]any{
		"name": "cf-app-discovery-secrets",
		"credentials": map[string]string{
			"UAA_PASSWORD": uaaPassword, "AWS_ACCESS_KEY_ID": "acceptance", "AWS_SECRET_ACCESS_KEY": awsSecret,
		},
	}}})
	Expect(err).NotTo(HaveOccurred())
	return []string{
		"API_ENDPOINT=" + w.cf.URL(), "UAA_USERNAME=" + monitorUser,
		"PLAN_ID=" + planID, "PAAS_DOMAIN=" + paasDomain,
		"BUCKET_NAME=" + bucket, "AWS_REGION=us-east-1", "S3_ENDPOINT=" + w.s3URL,
		"VCAP_SERVICES=" + string(vcap),
		"LOG_LEVEL=debug", "PATH=" + os.Getenv("PATH"),
	}
}

// start runs a program until the suite ends. Its output goes to the logs
// checked for credentials, unless out says otherwise. Arguments of the
// form NAME=value are its environment; the others are its arguments.
func start(path string, out io.Writer, args ...string) *gexec.Session {
	var env, argv []string
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			argv = append(argv, a)
		} else {
			env = append(env, a)
		}
	}
	cmd := exec.Command(path, argv...)
	cmd.Env = env
	if out == nil {
		out = io.MultiWriter(w.logs, GinkgoWriter)
	}
	session, err := gexec.Start(cmd, out, out)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { session.Terminate().Wait(10 * time.Second) })
	return session
}

// reconcile runs the target updater once, as the schedule would, with
// the settings env (NAME=value) besides the common ones, then syncs
// active/ to the Prometheus host.
func reconcile(env ...string) {
	cmd := exec.Command(w.bin.Updater, "--once")
	cmd.Env = append(commonEnv(), env...)
	out := io.MultiWriter(w.logs, GinkgoWriter)
	session, err := gexec.Start(cmd, out, out)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	EventuallyWithOffset(1, session, "60s").Should(gexec.Exit(0))
	syncTargets()
}

// syncTargets copies the bucket's active/ into the directory Prometheus
// reads, deleting what left the bucket, as the hosts' cron job does.
func syncTargets() {
	ctx := context.Background()
	objects, err := w.st.List(ctx, store.ActivePrefix)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	keep := map[string]bool{}
	for _, o := range objects {
		name := filepath.Base(o.Key)
		keep[name] = true
		body, _, err := w.st.Get(ctx, o.Key)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		path := filepath.Join(w.targetsDir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, body) {
			continue
		}
		tmp := filepath.Join(w.targetsDir, "."+name+".tmp")
		ExpectWithOffset(1, os.WriteFile(tmp, body, 0o644)).To(Succeed())
		ExpectWithOffset(1, os.Rename(tmp, path)).To(Succeed())
	}
	entries, err := os.ReadDir(w.targetsDir)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, e := range entries {
		if !keep[e.Name()] && strings.HasSuffix(e.Name(), ".json") {
			ExpectWithOffset(1, os.Remove(filepath.Join(w.targetsDir, e.Name()))).To(Succeed())
		}
	}
}

func instances(guid string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s:%d", guid, i))
	}
	sort.Strings(out)
	return out
}

// pushApp creates a started app with a route <name>.apps.example.com.
func pushApp(name string, n int) fakecf.App {
	app := addApp(name, n)
	_, err := w.cf.AddRoute(fakecf.Route{Host: name, DomainGUID: w.domain.GUID, Destinations: []fakecf.Destination{{AppGUID: app.GUID}}})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return app
}

var appCount int

// addApp creates a started app without a route. Every app gets a guid of
// its own, even when it reuses a name (a blue-green deploy).
func addApp(name string, n int) fakecf.App {
	appCount++
	app, err := w.cf.AddApp(fakecf.App{GUID: fakecf.GUID("acceptance-app", appCount), Name: name, SpaceGUID: w.space.GUID, Instances: n})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return app
}

var bindingCount int

// newBinding returns a fresh binding guid.
func newBinding() string {
	bindingCount++
	return fmt.Sprintf("b1d0b1d0-0000-4000-8000-%012d", bindingCount)
}

// bind binds app as Cloud Controller does and syncs the targets.
func bind(app fakecf.App) string {
	binding := newBinding()
	r := w.cc.Bind(instanceID, binding, app.GUID)
	ExpectWithOffset(1, r.Status).To(Equal(http.StatusCreated), r.Raw)
	syncTargets()
	return binding
}

func unbind(binding string) {
	r := w.cc.Unbind(instanceID, binding)
	ExpectWithOffset(1, r.Status).To(Equal(http.StatusOK), r.Raw)
	syncTargets()
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

func waitHealthy(url string) {
	EventuallyWithOffset(1, func() int {
		resp, err := http.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}, "60s", "100ms").Should(Equal(http.StatusOK), url)
}

// safeBuffer collects the programs' output from several goroutines.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func lookupEnv(name string) (string, bool) {
	v, ok := os.LookupEnv(name)
	return v, ok && v != ""
}

// targetKeys lists every target file in the bucket, active and inactive.
func targetKeys() []string {
	var keys []string
	for _, prefix := range []string{store.ActivePrefix, store.InactivePrefix} {
		objects, err := w.st.List(context.Background(), prefix)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		for _, o := range objects {
			keys = append(keys, o.Key)
		}
	}
	return keys
}
