package acceptance_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// s3Write is one write an updater sent to S3, as its proxy saw it.
type s3Write struct {
	updater    string
	key        string
	start, end time.Time
}

// writeRecorder is an updater's way to S3: it forwards everything and
// records each write of a target or a record (the lease aside); it can hold
// the next such write, to kill the updater in the middle of a run.
type writeRecorder struct {
	name  string
	next  *httputil.ReverseProxy
	mu    *sync.Mutex
	log   *[]s3Write
	armed chan chan struct{} // a write takes the channel, signals and waits
	// released ends the wait of a held write (the killed updater's
	// connection may never be seen to close).
	released chan struct{}
}

func newWriteRecorder(name, s3URL string, mu *sync.Mutex, log *[]s3Write) *writeRecorder {
	target, err := url.Parse(s3URL)
	Expect(err).NotTo(HaveOccurred())
	return &writeRecorder{name: name, next: httputil.NewSingleHostReverseProxy(target), mu: mu, log: log,
		armed: make(chan chan struct{}, 1), released: make(chan struct{})}
}

func (r *writeRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	key := req.URL.Path[strings.Index(req.URL.Path[1:], "/")+2:]
	write := (req.Method == http.MethodPut || req.Method == http.MethodDelete) && key != store.LeaseKey
	if write {
		select {
		case held := <-r.armed:
			// Never forwarded: the updater is killed while it waits.
			_, _ = io.Copy(io.Discard, req.Body)
			held <- struct{}{}
			select {
			case <-req.Context().Done():
			case <-r.released:
			}
			return
		default:
		}
	}
	start := time.Now()
	r.next.ServeHTTP(w, req)
	if write {
		r.mu.Lock()
		*r.log = append(*r.log, s3Write{updater: r.name, key: key, start: start, end: time.Now()})
		r.mu.Unlock()
	}
}

var _ = Describe("two target updaters", Ordered, func() {
	const leasePeriod = 2 * time.Second
	var (
		ctx      = context.Background()
		cf       *fakecf.Server
		cc       *ccsim.Controller
		st       store.Store
		client   *cfapi.Client
		apps     []fakecf.App
		bound    map[string]string // binding guid -> app guid
		mu       sync.Mutex
		writes   []s3Write
		updaters = map[string]*runningUpdater{}
	)

	BeforeAll(func() {
		const bucketName = "two-updaters"
		Expect(w.weed.CreateBucket(ctx, bucketName)).To(Succeed())
		var err error
		st, err = w.weed.Store(ctx, bucketName)
		Expect(err).NotTo(HaveOccurred())

		cf = fakecf.New(fakecf.Options{Users: map[string]string{monitorUser: uaaPassword}})
		DeferCleanup(cf.Close)
		org := cf.AddOrg(fakecf.Org{Name: "lease-org"})
		space, err := cf.AddSpace(fakecf.Space{Name: "lease-space", OrgGUID: org.GUID})
		Expect(err).NotTo(HaveOccurred())
		domain := cf.AddDomain(fakecf.Domain{Name: appsDomain})
		plan := cf.AddServicePlan(fakecf.ServicePlan{Name: "prometheus", BrokerCatalogID: planID})
		for i := range 12 {
			app, err := cf.AddApp(fakecf.App{GUID: fakecf.GUID("lease-app", i), Name: fmt.Sprintf("lease-app-%d", i), SpaceGUID: space.GUID, Instances: 1 + i%3})
			Expect(err).NotTo(HaveOccurred())
			_, err = cf.AddRoute(fakecf.Route{Host: app.Name, DomainGUID: domain.GUID, Destinations: []fakecf.Destination{{AppGUID: app.GUID}}})
			Expect(err).NotTo(HaveOccurred())
			apps = append(apps, app)
		}
		client, err = cfapi.New(ctx, cfapi.Config{API: cf.URL(), Username: monitorUser, Password: uaaPassword,
			PlanID: planID, Registerer: prometheus.NewRegistry()})
		Expect(err).NotTo(HaveOccurred())

		env := func(s3URL string) []string {
			return []string{
				"API_ENDPOINT=" + cf.URL(), "UAA_USERNAME=" + monitorUser, "UAA_PASSWORD=" + uaaPassword,
				"PLAN_ID=" + planID, "PAAS_DOMAIN=" + paasDomain,
				"BUCKET_NAME=" + bucketName, "AWS_REGION=us-east-1", "S3_ENDPOINT=" + s3URL,
				"AWS_ACCESS_KEY_ID=acceptance", "AWS_SECRET_ACCESS_KEY=" + awsSecret, "LOG_LEVEL=debug",
			}
		}
		brokerPort := freePort()
		start(w.bin.Broker, nil, append(env(w.weed.Endpoint), "PORT="+brokerPort, "BROKER_USERNAME=cc",
			"BROKER_PASSWORD="+brokerPassword, "SERVICE_ID="+serviceID)...)
		cc = &ccsim.Controller{Broker: "http://127.0.0.1:" + brokerPort, Username: "cc", Password: brokerPassword,
			ServiceID: serviceID, PlanID: planID, PlanGUID: plan.GUID, CF: cf,
			OrgGUID: org.GUID, SpaceGUID: space.GUID, OrgName: org.Name, SpaceName: space.Name}
		waitHealthy(cc.Broker + "/health")
		bound = map[string]string{}
		for _, app := range apps[:6] {
			binding := newBinding()
			Expect(cc.Bind(instanceID, binding, app.GUID).Status).To(Equal(http.StatusCreated))
			bound[binding] = app.GUID
		}

		for _, name := range []string{"one", "two"} {
			rec := newWriteRecorder(name, w.weed.Endpoint, &mu, &writes)
			proxy := httptest.NewServer(rec)
			DeferCleanup(proxy.Close)
			DeferCleanup(func() { close(rec.released) })
			port := freePort()
			session := start(w.bin.Updater, nil, append(env(proxy.URL), "PORT="+port,
				"LEASE_DURATION="+leasePeriod.String(), "UPDATE_SCHEDULE=@every 1s")...)
			updaters[name] = &runningUpdater{session: session, port: port, recorder: rec}
		}
	})

	// holder waits for one updater to hold the lease and the other to stand
	// by, and returns them.
	holder := func() (*runningUpdater, *runningUpdater) {
		var held, other *runningUpdater
		EventuallyWithOffset(1, func() bool {
			held, other = nil, nil
			for _, u := range updaters {
				if u.session.ExitCode() != -1 {
					continue
				}
				switch u.metric("cf_app_discovery_lease_held", nil) {
				case 1:
					held = u
				case 0:
					other = u
				}
			}
			return held != nil && other != nil
		}, "30s", "20ms").Should(BeTrue())
		return held, other
	}

	// change binds, unbinds, scales, stops and starts apps, one after the
	// other, until stop is closed; changes counts them.
	var changes atomic.Int64
	change := func(stop chan struct{}, done chan struct{}) {
		defer GinkgoRecover()
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			changes.Add(1)
			app := apps[i%len(apps)]
			switch i % 5 {
			case 0:
				binding := newBinding()
				Expect(cc.Bind(instanceID, binding, app.GUID).Status).To(Equal(http.StatusCreated))
				bound[binding] = app.GUID
			case 1:
				for binding := range bound {
					Expect(cc.Unbind(instanceID, binding).Status).To(Equal(http.StatusOK))
					delete(bound, binding)
					break
				}
			case 2:
				Expect(cf.Scale(app.GUID, 1+i%4)).To(Succeed())
			case 3:
				Expect(cf.StopApp(app.GUID)).To(Succeed())
			case 4:
				Expect(cf.StartApp(apps[(i+2)%len(apps)].GUID)).To(Succeed())
			}
		}
	}

	It("has one writer at any moment; after a SIGKILL of the holder mid-run the other takes over within two lease periods; the bucket is exact after", func() {
		first, second := holder()
		Consistently(func() float64 { return second.metric("cf_app_discovery_lease_held", nil) }, leasePeriod).Should(Equal(0.0))

		stop, done := make(chan struct{}), make(chan struct{})
		go change(stop, done)
		stopChanges := sync.OnceFunc(func() {
			close(stop)
			<-done
		})
		DeferCleanup(stopChanges)
		writesBy := func(name string) func() int {
			return func() int {
				mu.Lock()
				defer mu.Unlock()
				n := 0
				for _, wr := range writes {
					if wr.updater == name {
						n++
					}
				}
				return n
			}
		}
		Eventually(writesBy(first.recorder.name), "30s").Should(BeNumerically(">=", 5), "the holder writes")
		Expect(writesBy(second.recorder.name)()).To(BeZero(), "the other stands by")
		held := make(chan struct{}, 1)
		first.recorder.armed <- held
		Eventually(held, "30s").Should(Receive(), "the holder writes in a run")
		first.session.Kill()
		killed := time.Now()
		Eventually(first.session, "5s").Should(gexec.Exit())
		Eventually(func() float64 { return second.metric("cf_app_discovery_lease_held", nil) }, 2*leasePeriod, "10ms").Should(Equal(1.0))
		tookOver := time.Since(killed)
		AddReportEntry("take-over after SIGKILL of the holder", tookOver.String())
		fmt.Fprintf(GinkgoWriter, "take-over after SIGKILL of the holder mid-run: %s (lease %s)\n", tookOver, leasePeriod)
		// Changes go on under the new holder.
		now := changes.Load()
		Eventually(changes.Load, "30s").Should(BeNumerically(">=", now+50))
		stopChanges()

		runs := second.metric("cf_app_discovery_reconcile_runs_total", map[string]string{"outcome": "success"})
		Eventually(func() float64 {
			return second.metric("cf_app_discovery_reconcile_runs_total", map[string]string{"outcome": "success"})
		}, "30s").Should(BeNumerically(">=", runs+2), "a whole run after the last change")
		expectBucketMatches(ctx, st, client)

		mu.Lock()
		defer mu.Unlock()
		sort.Slice(writes, func(i, j int) bool { return writes[i].start.Before(writes[j].start) })
		var firstEnd, secondStart time.Time
		for _, wr := range writes {
			switch wr.updater {
			case first.recorder.name:
				if wr.end.After(firstEnd) {
					firstEnd = wr.end
				}
			default:
				if secondStart.IsZero() {
					secondStart = wr.start
				}
			}
		}
		Expect(secondStart).NotTo(BeZero(), "the new holder wrote")
		Expect(firstEnd).NotTo(BeZero(), "the first holder wrote")
		Expect(firstEnd).To(BeTemporally("<", secondStart), "the new holder wrote only after the first's last write")
	})
})

type runningUpdater struct {
	session  *gexec.Session
	port     string
	recorder *writeRecorder
}

// metric reads the metric name with labels from the updater's /metrics,
// or -1 until it answers.
func (u *runningUpdater) metric(name string, labels map[string]string) float64 {
	v, err := metricValue("http://127.0.0.1:"+u.port+"/metrics", name, labels)
	if err != nil {
		return -1
	}
	return v
}

// expectBucketMatches checks that the bucket is what the CF API says it
// should be: a record per live binding, a target file per bound app in the
// folder of its state with its current content, and nothing else.
func expectBucketMatches(ctx context.Context, st store.Store, client *cfapi.Client) {
	bindings, err := client.PlanBindings(ctx)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	want := map[string]string{}
	var appGUIDs []string
	for _, b := range bindings {
		if !b.Deleting {
			key, _ := store.BindingKey(b.GUID)
			want[key] = ""
			appGUIDs = append(appGUIDs, b.AppGUID)
		}
	}
	described, err := client.Apps(ctx, appGUIDs)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	for _, app := range described {
		key, _ := store.TargetKey(app.GUID, app.Started())
		want[key] = string(targets.Render(app, paasDomain))
	}
	got := map[string]string{}
	for _, prefix := range []string{store.ActivePrefix, store.InactivePrefix, store.BindingPrefix} {
		objects, err := st.List(ctx, prefix)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		for _, o := range objects {
			got[o.Key] = ""
			if prefix != store.BindingPrefix {
				body, _, err := st.Get(ctx, o.Key)
				ExpectWithOffset(1, err).NotTo(HaveOccurred())
				got[o.Key] = string(body)
			}
		}
	}
	ExpectWithOffset(1, got).To(Equal(want))
}
