package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/broker"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/reconcile"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// The load: binds of new bindings and unbinds of existing ones, all sent at
// once to one broker, or to two behind a round-robin front (two processes
// on one route: each has its own CF client and its own locks, and shares
// only the bucket), over apps that have several bindings each, as Cloud
// Controller sends them (the binding is in the CF API, in progress, while
// the broker works on it).
const (
	loadApps      = 60
	loadExisting  = 250 // bound before the load
	loadUnbinds   = 200 // of the existing ones
	loadNewBinds  = 300
	loadLatencyMS = 20
)

var _ = Describe("Broker under concurrent load", func() {
	describeLoad(1)
	describeLoad(2)
})

// roundRobin sends each request to the next of its handlers.
type roundRobin struct {
	next     atomic.Uint64
	handlers []http.Handler
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rr.handlers[(rr.next.Add(1)-1)%uint64(len(rr.handlers))].ServeHTTP(w, r)
}

func describeLoad(brokers int) {
	Describe(fmt.Sprintf("with %d broker instance(s)", brokers), Ordered, func() { describeLoadOn(brokers) })
}

func describeLoadOn(brokers int) {
	var (
		ctx      context.Context
		cf       *fakecf.Server
		st       store.Store
		server   *httptest.Server
		client   *cfapi.Client
		plan     fakecf.ServicePlan
		apps     []fakecf.App
		bindApp  map[string]string // binding guid -> app guid
		latency  []time.Duration
		statuses map[string]int
		took     time.Duration
	)

	send := func(method, binding, app string) (int, time.Duration) {
		var body []byte
		path := "/v2/service_instances/" + instanceID + "/service_bindings/" + binding
		if method == "PUT" {
			body, _ = json.Marshal(map[string]any{"service_id": serviceID, "plan_id": planID,
				"bind_resource": map[string]any{"app_guid": app}})
		} else {
			path += "?service_id=" + serviceID + "&plan_id=" + planID
		}
		req, _ := http.NewRequest(method, server.URL+path, bytes.NewReader(body))
		req.SetBasicAuth("u", "p")
		req.Header.Set("X-Broker-API-Version", "2.15")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		d := time.Since(start)
		if err != nil {
			return 0, d
		}
		_ = resp.Body.Close()
		return resp.StatusCode, d
	}
	// asCC does what Cloud Controller does around a broker call.
	bindAsCC := func(binding, app string) (int, time.Duration) {
		_, err := cf.AddBinding(fakecf.Binding{GUID: binding, AppGUID: app, PlanGUID: plan.GUID,
			LastOperation: fakecf.LastOperation{Type: fakecf.OpCreate, State: fakecf.OpInProgress}})
		Expect(err).NotTo(HaveOccurred())
		status, d := send("PUT", binding, app)
		if status == http.StatusCreated {
			Expect(cf.SetBindingLastOperation(binding, fakecf.LastOperation{Type: fakecf.OpCreate, State: fakecf.OpSucceeded})).To(Succeed())
		} else {
			Expect(cf.DeleteBinding(binding)).To(Succeed())
		}
		return status, d
	}
	unbindAsCC := func(binding string) (int, time.Duration) {
		Expect(cf.SetBindingLastOperation(binding, fakecf.LastOperation{Type: fakecf.OpDelete, State: fakecf.OpInProgress})).To(Succeed())
		status, d := send("DELETE", binding, "")
		if status == http.StatusOK {
			Expect(cf.DeleteBinding(binding)).To(Succeed())
		}
		return status, d
	}

	BeforeAll(func() {
		ctx = context.Background()
		cf = fakecf.New(fakecf.Options{})
		DeferCleanup(cf.Close)
		var err error
		org := cf.AddOrg(fakecf.Org{Name: "org"})
		space, err := cf.AddSpace(fakecf.Space{Name: "space", OrgGUID: org.GUID})
		Expect(err).NotTo(HaveOccurred())
		domain := cf.AddDomain(fakecf.Domain{Name: "apps.example.com"})
		plan = cf.AddServicePlan(fakecf.ServicePlan{Name: "prometheus", BrokerCatalogID: planID})
		for i := range loadApps {
			app, err := cf.AddApp(fakecf.App{Name: fmt.Sprintf("app-%d", i), SpaceGUID: space.GUID, Instances: 1 + i%3})
			Expect(err).NotTo(HaveOccurred())
			_, err = cf.AddRoute(fakecf.Route{Host: app.Name, DomainGUID: domain.GUID, Destinations: []fakecf.Destination{{AppGUID: app.GUID}}})
			Expect(err).NotTo(HaveOccurred())
			apps = append(apps, app)
		}

		s3srv := httptest.NewServer(gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(true)).Server())
		DeferCleanup(s3srv.Close)
		awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}
		st, err = store.NewS3(ctx, store.S3Options{Bucket: "load", Endpoint: s3srv.URL, AWSConfig: &awsCfg})
		Expect(err).NotTo(HaveOccurred())
		newClient := func() *cfapi.Client {
			c, err := cfapi.New(ctx, cfapi.Config{API: cf.URL(), Username: fakecf.DefaultUsername,
				Password: fakecf.DefaultPassword, PlanID: planID, Registerer: prometheus.NewRegistry()})
			Expect(err).NotTo(HaveOccurred())
			return c
		}
		client = newClient()
		logger := lager.NewLogger("load")
		front := &roundRobin{}
		for range brokers {
			c := newClient()
			b := broker.New(broker.Options{
				Catalog: broker.Catalog{ServiceID: serviceID, ServiceName: "s", PlanID: planID, PlanName: "p"},
				Store:   st, Apps: c, Bindings: c, PaaSDomain: "paas.example", Logger: logger,
			})
			reg := prometheus.NewRegistry()
			front.handlers = append(front.handlers, broker.NewHandler(b, logger, broker.Credentials{Username: "u", Password: "p"}, reg, reg))
		}
		server = httptest.NewServer(front)
		DeferCleanup(server.Close)

		bindApp = map[string]string{}
		for i := range loadExisting {
			binding := fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", i)
			app := apps[(i*7)%loadApps].GUID
			status, _ := bindAsCC(binding, app)
			Expect(status).To(Equal(http.StatusCreated))
			bindApp[binding] = app
		}

		cf.SetLatency(loadLatencyMS * time.Millisecond)
		type op struct{ method, binding, app string }
		var ops []op
		// Unbind every existing binding of the last 15 apps, which get no
		// new ones, and fill up with others: those 15 lose their target.
		var unbinds []string
		for pass := range 2 {
			for i := range loadExisting {
				binding := fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", i)
				lastApps := (i*7)%loadApps >= 45
				if len(unbinds) < loadUnbinds && (pass == 0) == lastApps {
					unbinds = append(unbinds, binding)
				}
			}
		}
		for _, binding := range unbinds {
			ops = append(ops, op{"DELETE", binding, bindApp[binding]})
		}
		for i := range loadNewBinds {
			binding := fmt.Sprintf("cccccccc-0000-4000-8000-%012d", i)
			// New binds go to the first 45 apps only, so that apps beyond lose
			// their last binding under load.
			ops = append(ops, op{"PUT", binding, apps[(i*11)%45].GUID})
		}
		statuses = map[string]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for i := range ops {
			o := ops[(i*37)%len(ops)] // interleave binds and unbinds
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				var status int
				var d time.Duration
				if o.method == "PUT" {
					status, d = bindAsCC(o.binding, o.app)
				} else {
					status, d = unbindAsCC(o.binding)
				}
				mu.Lock()
				defer mu.Unlock()
				statuses[o.method+" "+strconv.Itoa(status)]++
				if o.method == "PUT" {
					latency = append(latency, d)
					if status == http.StatusCreated {
						bindApp[o.binding] = o.app
					}
				} else if status == http.StatusOK {
					delete(bindApp, o.binding)
				}
			}()
		}
		wg.Wait()
		took = time.Since(start)
		cf.SetLatency(0)
	})

	It("answers every request as expected", func() {
		unbound := 0
		for _, app := range apps {
			if !slices.Contains(slices.Collect(maps.Values(bindApp)), app.GUID) {
				unbound++
			}
		}
		Expect(unbound).To(Equal(15), "apps whose last binding went under load")
		Expect(statuses).To(Equal(map[string]int{"PUT 201": loadNewBinds, "DELETE 200": loadUnbinds}))
	})

	expectExactState := func() {
		wantRecords, wantTargets := map[string]bool{}, map[string]bool{}
		for binding, app := range bindApp {
			wantRecords["bindings/"+binding+".json"] = true
			wantTargets["active/"+app+".json"] = true
		}
		list := func(prefix string) map[string]bool {
			objects, err := st.List(ctx, prefix)
			Expect(err).NotTo(HaveOccurred())
			out := map[string]bool{}
			for _, o := range objects {
				out[o.Key] = true
			}
			return out
		}
		Expect(list(store.BindingPrefix)).To(Equal(wantRecords))
		Expect(list(store.ActivePrefix)).To(Equal(wantTargets))
		Expect(list(store.InactivePrefix)).To(BeEmpty())
		for key := range wantTargets {
			_, guid, _ := store.ParseKey(key)
			want, err := client.App(ctx, guid)
			Expect(err).NotTo(HaveOccurred())
			got, _, err := st.Get(ctx, key)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(got)).To(Equal(string(targets.Render(want, "paas.example"))))
		}
	}

	It("leaves exactly the CF state in the bucket: no lost, no stale target", func() {
		expectExactState()
	})

	It("still does after one reconcile, which has nothing to change", func() {
		rec := &reconcile.Reconciler{Store: st, CF: client, PaaSDomain: "paas.example", PlanID: planID,
			Workers: 8, Logger: lager.NewLogger("load")}
		res, err := rec.Run(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.TargetsWritten + res.TargetsDeleted + res.RecordsAdopted + res.RecordsRemoved).To(Equal(0))
		expectExactState()
	})

	It("reports bind latency and throughput", func() {
		sort.Slice(latency, func(i, j int) bool { return latency[i] < latency[j] })
		p := func(q float64) time.Duration { return latency[int(q*float64(len(latency)-1))].Round(time.Millisecond) }
		line := fmt.Sprintf("broker load, %d instance(s): %d binds + %d unbinds at once over %d apps, CF latency %d ms: bind p50 %s, p99 %s; %.0f requests/s",
			brokers, loadNewBinds, loadUnbinds, loadApps, loadLatencyMS, p(0.50), p(0.99), float64(loadNewBinds+loadUnbinds)/took.Seconds())
		AddReportEntry("broker load", line)
		if os.Getenv("PRINT_FIGURES") != "" {
			fmt.Println(line)
		}
		Expect(latency).To(HaveLen(loadNewBinds))
	})
}
