package acceptance_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/acceptance/ccsim"
	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// s3Fault describes what the fault proxy in front of S3 does to matching
// requests: answer 500, hold them past the client's timeout, drop the
// connection, or hold them until released (to kill a program mid-write).
type s3Fault struct {
	op     string // GET, PUT, DELETE, LIST; "" for any
	prefix string // key prefix; "" for any
	mode   string // "500", "slow", "drop", "hold"
	times  int    // 0: until cleared
}

type faultyS3Proxy struct {
	next  http.Handler
	mu    sync.Mutex
	fault *s3Fault
	held  chan struct{} // a request is being held
	done  chan struct{} // release held requests
}

func (p *faultyS3Proxy) set(f *s3Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault = f
	p.held = make(chan struct{}, 100)
	if p.done != nil {
		close(p.done)
	}
	p.done = make(chan struct{})
}

func (p *faultyS3Proxy) take(r *http.Request) (string, chan struct{}, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.fault
	if f == nil {
		return "", nil, nil
	}
	op := r.Method
	if r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
		op = "LIST"
	}
	// Path-style: /<bucket>/<key>.
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if (f.op != "" && f.op != op) || !strings.HasPrefix(key, f.prefix) {
		return "", nil, nil
	}
	if f.times > 0 {
		f.times--
		if f.times == 0 {
			p.fault = nil
		}
	}
	return f.mode, p.held, p.done
}

func (p *faultyS3Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mode, held, done := p.take(r)
	switch mode {
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "<Error><Code>InternalError</Code><Message>injected</Message></Error>")
		return
	case "slow", "hold":
		held <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-done:
		}
		return
	case "drop":
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
		return
	}
	p.next.ServeHTTP(w, r)
}

var _ = Describe("under faults", Ordered, func() {
	var (
		cf        *fakecf.Server
		space     fakecf.Space
		domain    fakecf.Domain
		s3proxy   *faultyS3Proxy
		direct    store.Store
		client    *cfapi.Client
		cc        *ccsim.Controller
		broker    *gexec.Session
		brokerEnv []string
		apps      []fakecf.App
	)
	ctx := context.Background()

	env := func() []string {
		return []string{
			"API_ENDPOINT=" + cf.URL(), "UAA_USERNAME=" + monitorUser, "UAA_PASSWORD=" + uaaPassword,
			"PLAN_ID=" + planID, "PAAS_DOMAIN=" + paasDomain,
			"BUCKET_NAME=faults", "AWS_REGION=us-east-1", "S3_ENDPOINT=" + s3proxyURL,
			"AWS_ACCESS_KEY_ID=acceptance", "AWS_SECRET_ACCESS_KEY=" + awsSecret, "LOG_LEVEL=debug",
		}
	}
	startBroker := func() {
		broker = start(w.bin.Broker, nil, brokerEnv...)
		waitHealthy(cc.Broker + "/health")
	}
	reconcileExit := func() int {
		cmd := exec.Command(w.bin.Updater, "--once")
		cmd.Env = env()
		session, err := gexec.Start(cmd, w.logs, w.logs)
		Expect(err).NotTo(HaveOccurred())
		Eventually(session, "3m").Should(gexec.Exit())
		return session.ExitCode()
	}
	// bucket returns every key with its content.
	bucket := func() map[string]string {
		out := map[string]string{}
		for _, prefix := range []string{store.ActivePrefix, store.InactivePrefix, store.BindingPrefix} {
			objects, err := direct.List(ctx, prefix)
			Expect(err).NotTo(HaveOccurred())
			for _, o := range objects {
				body, _, err := direct.Get(ctx, o.Key)
				Expect(err).NotTo(HaveOccurred())
				out[o.Key] = string(body)
			}
		}
		return out
	}
	// expectExact checks that the bucket is what the CF API says it should
	// be: a record per live binding, a target file per bound app in the
	// folder of its state with its current content, and nothing else.
	expectExact := func() {
		bindings, err := client.PlanBindings(ctx)
		Expect(err).NotTo(HaveOccurred())
		want := map[string]bool{}
		var appGUIDs []string
		for _, b := range bindings {
			if !b.Deleting {
				key, _ := store.BindingKey(b.GUID)
				want[key] = true
				appGUIDs = append(appGUIDs, b.AppGUID)
			}
		}
		described, err := client.Apps(ctx, appGUIDs)
		Expect(err).NotTo(HaveOccurred())
		content := map[string]string{}
		for _, app := range described {
			key, _ := store.TargetKey(app.GUID, app.Started())
			content[key] = string(targets.Render(app, paasDomain))
		}
		got := bucket()
		for key, body := range got {
			if strings.HasPrefix(key, store.BindingPrefix) {
				Expect(want).To(HaveKey(key), "orphan record")
				continue
			}
			Expect(content).To(HaveKey(key), "stale target")
			Expect(body).To(Equal(content[key]))
		}
		for key := range want {
			Expect(got).To(HaveKey(key), "lost record")
		}
		for key := range content {
			Expect(got).To(HaveKey(key), "lost target")
		}
	}
	recoverAndCheck := func() {
		s3proxy.set(nil)
		cf.ClearFaults()
		Expect(reconcileExit()).To(Equal(0))
		expectExact()
	}

	BeforeAll(func() {
		cf = fakecf.New(fakecf.Options{Users: map[string]string{monitorUser: uaaPassword}})
		DeferCleanup(cf.Close)
		org := cf.AddOrg(fakecf.Org{Name: "fault-org"})
		var err error
		space, err = cf.AddSpace(fakecf.Space{Name: "fault-space", OrgGUID: org.GUID})
		Expect(err).NotTo(HaveOccurred())
		domain = cf.AddDomain(fakecf.Domain{Name: appsDomain})
		plan := cf.AddServicePlan(fakecf.ServicePlan{Name: "prometheus", BrokerCatalogID: planID})
		for i, name := range []string{"alpha", "beta", "gamma", "delta"} {
			app, err := cf.AddApp(fakecf.App{GUID: fakecf.GUID("fault-app", i), Name: name, SpaceGUID: space.GUID, Instances: 2})
			Expect(err).NotTo(HaveOccurred())
			_, err = cf.AddRoute(fakecf.Route{Host: name, DomainGUID: domain.GUID, Destinations: []fakecf.Destination{{AppGUID: app.GUID}}})
			Expect(err).NotTo(HaveOccurred())
			apps = append(apps, app)
		}

		s3 := gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server()
		s3proxy = &faultyS3Proxy{next: s3}
		s3proxy.set(nil)
		srv := httptest.NewServer(s3proxy)
		DeferCleanup(srv.Close)
		s3proxyURL = srv.URL
		awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("acceptance", awsSecret, "")}
		directSrv := httptest.NewServer(s3)
		DeferCleanup(directSrv.Close)
		direct, err = store.NewS3(ctx, store.S3Options{Bucket: "faults", Endpoint: directSrv.URL, AWSConfig: &awsCfg})
		Expect(err).NotTo(HaveOccurred())
		_, err = direct.List(ctx, store.ActivePrefix)
		Expect(err).NotTo(HaveOccurred())
		client, err = cfapi.New(ctx, cfapi.Config{API: cf.URL(), Username: monitorUser, Password: uaaPassword,
			PlanID: planID, Registerer: prometheus.NewRegistry()})
		Expect(err).NotTo(HaveOccurred())

		port := freePort()
		brokerEnv = append(env(), "PORT="+port, "BROKER_USERNAME=cc", "BROKER_PASSWORD="+brokerPassword, "SERVICE_ID="+serviceID)
		cc = &ccsim.Controller{Broker: "http://127.0.0.1:" + port, Username: "cc", Password: brokerPassword,
			ServiceID: serviceID, PlanID: planID, PlanGUID: plan.GUID, CF: cf,
			OrgGUID: org.GUID, SpaceGUID: space.GUID, OrgName: org.Name, SpaceName: space.Name,
			Client: &http.Client{Timeout: 60 * time.Second}}
		startBroker()
		for _, app := range apps[:2] {
			Expect(cc.Bind(instanceID, newBinding(), app.GUID).Status).To(Equal(http.StatusCreated))
		}
		expectExact()
	})

	Context("in S3", func() {
		It("answers 503 to a bind whose target write fails, and Cloud Controller's clean-up leaves nothing behind", func() {
			s3proxy.set(&s3Fault{op: "PUT", prefix: "active/", mode: "500"})
			r := cc.Bind(instanceID, newBinding(), apps[2].GUID)
			Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
			Expect(r.OrphanMitigation).To(Equal(http.StatusOK))
			recoverAndCheck()
		})

		It("answers 503 to a bind when S3 answers slower than the client's timeout", func() {
			s3proxy.set(&s3Fault{op: "GET", prefix: "bindings/", mode: "slow", times: 1})
			r := cc.Bind(instanceID, newBinding(), apps[2].GUID)
			Expect(r.Status).To(Equal(http.StatusServiceUnavailable))
			recoverAndCheck()
		})

		It("answers 503 to an unbind over a dropped connection, and the retried unbind completes", func() {
			binding := newBinding()
			Expect(cc.Bind(instanceID, binding, apps[3].GUID).Status).To(Equal(http.StatusCreated))
			s3proxy.set(&s3Fault{op: "DELETE", mode: "drop"})
			Expect(cc.Unbind(instanceID, binding).Status).To(BeNumerically(">=", 500))
			recoverAndCheck()
			Expect(cc.Unbind(instanceID, binding).Status).To(Equal(http.StatusOK))
			expectExact()
		})

		DescribeTable("a reconcile fails, changes nothing it should not, and the next one repairs",
			func(f s3Fault) {
				Expect(cf.Scale(apps[0].GUID, 3)).To(Succeed())
				Expect(cf.StopApp(apps[1].GUID)).To(Succeed())
				before := bucket()
				s3proxy.set(&f)
				Expect(reconcileExit()).NotTo(Equal(0))
				if f.op == "LIST" {
					Expect(bucket()).To(Equal(before))
				}
				recoverAndCheck()
				Expect(cf.StartApp(apps[1].GUID)).To(Succeed())
				Expect(cf.Scale(apps[0].GUID, 2)).To(Succeed())
				recoverAndCheck()
			},
			Entry("500 on list", s3Fault{op: "LIST", mode: "500"}),
			Entry("500 on put", s3Fault{op: "PUT", mode: "500"}),
			Entry("dropped connections on delete", s3Fault{op: "DELETE", mode: "drop"}),
		)
	})

	Context("in the CF API", func() {
		It("answers 503 to a bind when the CF API fails, writing nothing", func() {
			before := bucket()
			cf.InjectFault(fakecf.Fault{Path: "/v3/apps", Status: 502})
			Expect(cc.Bind(instanceID, newBinding(), apps[2].GUID).Status).To(Equal(http.StatusServiceUnavailable))
			Expect(bucket()).To(Equal(before))
			recoverAndCheck()
		})

		It("waits out a 429 with Retry-After during a reconcile", func() {
			Expect(cf.Scale(apps[0].GUID, 4)).To(Succeed())
			cf.InjectFault(fakecf.Fault{Path: "/v3/processes", Status: 429, RetryAfter: "1", Times: 2})
			Expect(reconcileExit()).To(Equal(0))
			expectExact()
		})

		It("retries a request that timed out", func() {
			Expect(cf.Scale(apps[0].GUID, 1)).To(Succeed())
			cf.InjectFault(fakecf.Fault{Path: "/v3/routes", Hang: true, Times: 1})
			Expect(reconcileExit()).To(Equal(0))
			expectExact()
		})

		DescribeTable("a reconcile that cannot read CF changes nothing",
			func(f fakecf.Fault) {
				Expect(cf.Scale(apps[0].GUID, 3)).To(Succeed())
				Expect(cf.StopApp(apps[1].GUID)).To(Succeed())
				before := bucket()
				cf.InjectFault(f)
				Expect(reconcileExit()).NotTo(Equal(0))
				Expect(bucket()).To(Equal(before))
				recoverAndCheck()
				Expect(cf.StartApp(apps[1].GUID)).To(Succeed())
				recoverAndCheck()
			},
			Entry("5xx on every attempt", fakecf.Fault{Path: "/v3/apps", Status: 500}),
			Entry("truncated JSON on every attempt", fakecf.Fault{Path: "/v3/service_credential_bindings", TruncatePage: 1}),
		)
	})

	Context("when a program is killed", func() {
		It("recovers from SIGKILL of the broker in the middle of a bind", func() {
			s3proxy.set(&s3Fault{op: "PUT", prefix: "active/", mode: "hold"})
			binding := newBinding()
			result := make(chan ccsim.Response, 1)
			go func() { result <- cc.Bind(instanceID, binding, apps[3].GUID) }()
			Eventually(s3proxy.held, "20s").Should(Receive())
			broker.Kill().Wait(5 * time.Second)
			r := <-result
			Expect(r.Status).To(Equal(0), "Cloud Controller got no answer")
			s3proxy.set(nil)
			startBroker()
			// Cloud Controller retries its orphan-mitigation unbind until the
			// broker answers.
			Expect(cc.Unbind(instanceID, binding).Status).To(Equal(http.StatusOK))
			recoverAndCheck()
		})

		It("recovers from SIGKILL of the updater in the middle of a reconcile", func() {
			for _, app := range apps {
				Expect(cf.Scale(app.GUID, 5)).To(Succeed())
			}
			s3proxy.set(&s3Fault{op: "PUT", prefix: "active/", mode: "hold"})
			cmd := exec.Command(w.bin.Updater, "--once")
			cmd.Env = env()
			session, err := gexec.Start(cmd, w.logs, w.logs)
			Expect(err).NotTo(HaveOccurred())
			Eventually(s3proxy.held, "20s").Should(Receive())
			session.Kill().Wait(5 * time.Second)
			recoverAndCheck()
		})
	})
})

// s3proxyURL is the fault proxy's address, which the programs use as S3.
var s3proxyURL string
