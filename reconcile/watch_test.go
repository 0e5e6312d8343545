package reconcile_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/reconcile"
)

// clock is a local clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// watchCF is a hand-written WatchCF: a CF API whose clock is the local
// clock plus skew, with the audit events and deployments it is given.
type watchCF struct {
	mu          sync.Mutex
	local       *clock
	skew        time.Duration
	events      []cfapi.AuditEvent
	deployments []cfapi.Deployment
	eventsErr   error
	deployErr   error
	// hang makes AuditEvents wait for its context's end.
	hang bool
	// since records the cursor of every AuditEvents call.
	since            []time.Time
	deploymentsCalls int
}

func (f *watchCF) cfNow() time.Time {
	return f.local.Now().Add(f.skew)
}

func (f *watchCF) Now(context.Context) (time.Time, error) {
	// Whole seconds, as a Date header has them.
	return f.cfNow().Truncate(time.Second), nil
}

// event records an audit event at the CF API's clock, in whole seconds.
func (f *watchCF) event(guid, typ, app string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, cfapi.AuditEvent{GUID: guid, Type: typ, TargetGUID: app, CreatedAt: f.cfNow().Truncate(time.Second)})
}

func (f *watchCF) AuditEvents(ctx context.Context, since time.Time, types []string) ([]cfapi.AuditEvent, error) {
	f.mu.Lock()
	f.since = append(f.since, since)
	hang, err := f.hang, f.eventsErr
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cfapi.AuditEvent
	for _, e := range f.events {
		if !e.CreatedAt.Before(since.Truncate(time.Second)) && slices.Contains(types, e.Type) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (f *watchCF) ActiveDeployments(context.Context) ([]cfapi.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deploymentsCalls++
	if f.deployErr != nil {
		return nil, f.deployErr
	}
	return slices.Clone(f.deployments), nil
}

func (f *watchCF) setDeployments(d ...cfapi.Deployment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deployments = d
}

func (f *watchCF) lastSince() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.since[len(f.since)-1]
}

// refresher is a hand-written AppsRefresher: it records what it was asked
// to refresh and refreshes the bound apps among them.
type refresher struct {
	mu    sync.Mutex
	bound map[string]bool
	err   error
	calls [][]string
}

func (r *refresher) RunApps(_ context.Context, guids []string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, guids)
	if r.err != nil {
		return 0, r.err
	}
	n := 0
	for _, g := range guids {
		if r.bound[g] {
			n++
		}
	}
	return n, nil
}

// takeCalls returns the refreshes asked for since the last takeCalls.
func (r *refresher) takeCalls() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls := r.calls
	r.calls = nil
	return calls
}

var _ = Describe("Watch", func() {
	var (
		ctx     context.Context
		local   *clock
		cf      *watchCF
		apps    *refresher
		w       *reconcile.Watch
		reg     *prometheus.Registry
		app1    = appGUIDn(1)
		app2    = appGUIDn(2)
		app3    = appGUIDn(3)
		settle  = 5 * time.Second
		started = time.Date(2026, 12, 5, 14, 0, 0, 300e6, time.UTC)
	)

	run := func() reconcile.WatchResult {
		res, err := w.Run(ctx)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		return res
	}

	BeforeEach(func() {
		ctx = context.Background()
		local = &clock{now: started}
		// The CF API's clock is 90 minutes and a bit ahead of ours.
		cf = &watchCF{local: local, skew: 90*time.Minute + 400*time.Millisecond}
		apps = &refresher{bound: map[string]bool{app1: true, app2: true}}
		w = &reconcile.Watch{CF: cf, Apps: apps, Settle: settle, DeploymentsEvery: time.Minute, Now: local.Now}
		reg = prometheus.NewRegistry()
		w.Metrics = reconcile.NewWatchMetrics(reg, w)
	})

	Context("when the updater starts", func() {
		It("watches from the CF API's clock at Begin, less the settling time", func() {
			Expect(w.Begin(ctx)).To(Succeed())
			beganAt := cf.cfNow().Truncate(time.Second)
			local.advance(30 * time.Second) // the full reconcile runs
			run()
			Expect(cf.lastSince()).To(Equal(beganAt.Add(-settle)))
		})

		It("sees the events of changes made while the first full reconcile ran", func() {
			Expect(w.Begin(ctx)).To(Succeed())
			local.advance(2 * time.Second)
			cf.event("e1", "audit.app.process.scale", app1)
			local.advance(10 * time.Second)
			run()
			Expect(apps.takeCalls()).To(Equal([][]string{{app1}}))
		})

		It("begins on its own when Begin was not called", func() {
			run()
			Expect(cf.lastSince()).To(Equal(cf.cfNow().Truncate(time.Second).Add(-settle)))
		})
	})

	Context("after it began", func() {
		BeforeEach(func() {
			Expect(w.Begin(ctx)).To(Succeed())
			run() // lists deployments once: none
			apps.takeCalls()
			local.advance(10 * time.Second)
		})

		It("refreshes the apps of new events in one call, each once", func() {
			cf.event("e1", "audit.app.stop", app2)
			cf.event("e2", "audit.app.process.scale", app1)
			cf.event("e3", "audit.app.map-route", app2)
			local.advance(time.Second)
			res := run()
			Expect(apps.takeCalls()).To(Equal([][]string{{app1, app2}}))
			Expect(res).To(Equal(reconcile.WatchResult{Events: 3, Deployments: -1, Refreshed: 2}))
			Expect(testutil.ToFloat64(w.Metrics.Events())).To(BeEquivalentTo(3))
		})

		It("refreshes nothing, and lists neither apps nor deployments, when nothing happened", func() {
			Expect(run()).To(Equal(reconcile.WatchResult{Deployments: -1}))
			Expect(apps.takeCalls()).To(BeEmpty())
			Expect(cf.deploymentsCalls).To(Equal(1))
		})

		It("hands unbound apps to the refresher, which refreshes none of them", func() {
			cf.event("e1", "audit.app.stop", app3)
			local.advance(time.Second)
			Expect(run().Refreshed).To(Equal(0))
			Expect(apps.takeCalls()).To(Equal([][]string{{app3}}))
		})

		It("handles each event once, though the events of the cursor's second are listed again", func() {
			cf.event("e1", "audit.app.stop", app1)
			run()
			Expect(apps.takeCalls()).To(Equal([][]string{{app1}}))
			// Same second: e1 is listed again with e2.
			cf.event("e2", "audit.app.start", app2)
			Expect(run().Events).To(Equal(1))
			Expect(apps.takeCalls()).To(Equal([][]string{{app2}}))
			local.advance(3 * time.Second)
			Expect(run().Events).To(Equal(0))
			Expect(apps.takeCalls()).To(BeEmpty())
			Expect(testutil.ToFloat64(w.Metrics.Events())).To(BeEquivalentTo(2))
		})

		It("moves the cursor to the settling time behind the CF API's clock, never back", func() {
			local.advance(time.Minute)
			run()
			Expect(cf.lastSince()).To(BeTemporally("<", cf.cfNow().Add(-settle)))
			run()
			// The CF API's clock is known to the second (a Date header),
			// and taken as early as it may be.
			Expect(cf.lastSince()).To(BeTemporally("<=", cf.cfNow().Add(-settle)))
			Expect(cf.lastSince()).To(BeTemporally(">", cf.cfNow().Add(-settle-time.Second)))
			Expect(w.CursorLag()).To(Equal(settle))
		})

		DescribeTable("a failed watch changes nothing, and the next catches up",
			func(fail func(), heal func()) {
				cf.event("e1", "audit.app.process.scale", app1)
				cf.event("e2", "audit.app.deployment.create", app2)
				local.advance(time.Second)
				fail()
				_, err := w.Run(ctx)
				Expect(err).To(MatchError(reconcile.ErrWatch))
				cursor := cf.lastSince()
				Expect(testutil.ToFloat64(w.Metrics.Runs("failure"))).To(BeEquivalentTo(1))
				Expect(testutil.ToFloat64(w.Metrics.Events())).To(BeEquivalentTo(0))

				local.advance(10 * time.Second)
				heal()
				apps.takeCalls()
				res := run()
				Expect(cf.lastSince()).To(Equal(cursor), "the cursor did not move")
				Expect(apps.takeCalls()).To(Equal([][]string{{app1, app2}}))
				Expect(res.Events).To(Equal(2))
				Expect(w.OldestUnwritten()).To(BeZero())
			},
			Entry("listing events fails", func() { cf.eventsErr = cfapi.ErrUnavailable }, func() { cf.eventsErr = nil }),
			Entry("listing deployments fails", func() { cf.deployErr = cfapi.ErrUnavailable }, func() { cf.deployErr = nil }),
			Entry("the refresh fails", func() { apps.err = errors.New("store unavailable") }, func() { apps.err = nil }),
			Entry("the CF API hangs", func() {
				cf.hang = true
				w.Timeout = 20 * time.Millisecond
			}, func() { cf.hang = false }),
		)

		It("reports the age of the oldest change it could not write until it writes it", func() {
			cf.event("e1", "audit.app.stop", app1)
			changed := cf.cfNow().Truncate(time.Second)
			local.advance(20 * time.Second)
			apps.err = errors.New("store unavailable")
			_, err := w.Run(ctx)
			Expect(err).To(HaveOccurred())
			Expect(w.OldestUnwritten()).To(BeNumerically("~", cf.cfNow().Sub(changed), time.Second))
			Expect(w.OldestUnwritten()).To(BeNumerically(">=", 20*time.Second))
			local.advance(10 * time.Second)
			Expect(w.OldestUnwritten()).To(BeNumerically("~", cf.cfNow().Sub(changed), time.Second))
			Expect(w.OldestUnwritten()).To(BeNumerically(">=", 30*time.Second))
			apps.err = nil
			run()
			Expect(w.OldestUnwritten()).To(BeZero())
		})

		Context("while a deployment runs", func() {
			BeforeEach(func() {
				cf.event("e1", "audit.app.deployment.create", app1)
				cf.setDeployments(cfapi.Deployment{GUID: "d1", AppGUID: app1, Reason: "DEPLOYING"})
				local.advance(time.Second)
				run()
				Expect(apps.takeCalls()).To(Equal([][]string{{app1}}))
			})

			It("refreshes its app at every watch, with no event, and once more after it ended", func() {
				for range 3 {
					local.advance(10 * time.Second)
					Expect(run().Deployments).To(Equal(1))
					Expect(apps.takeCalls()).To(Equal([][]string{{app1}}))
				}
				cf.setDeployments()
				local.advance(10 * time.Second)
				run()
				Expect(apps.takeCalls()).To(Equal([][]string{{app1}}), "once more after the end")
				local.advance(10 * time.Second)
				run()
				Expect(apps.takeCalls()).To(BeEmpty())
			})

			It("refreshes it once more after the end even if that refresh first fails", func() {
				cf.setDeployments()
				apps.err = errors.New("store unavailable")
				local.advance(10 * time.Second)
				_, err := w.Run(ctx)
				Expect(err).To(HaveOccurred())
				apps.err = nil
				apps.takeCalls()
				local.advance(10 * time.Second)
				run()
				Expect(apps.takeCalls()).To(Equal([][]string{{app1}}))
			})
		})

		Context("when no deployment is known to run", func() {
			It("lists deployments after a deployment event", func() {
				cf.event("e1", "audit.app.deployment.continue", app2)
				local.advance(time.Second)
				run()
				Expect(cf.deploymentsCalls).To(Equal(2))
			})

			It("lists them at most every DeploymentsEvery otherwise, and finds one it heard no event of", func() {
				cf.setDeployments(cfapi.Deployment{GUID: "d1", AppGUID: app2, Reason: "PAUSED"})
				for range 4 {
					local.advance(10 * time.Second)
					run()
				}
				Expect(cf.deploymentsCalls).To(Equal(1))
				Expect(apps.takeCalls()).To(BeEmpty())
				local.advance(20 * time.Second) // a minute since the last listing
				run()
				Expect(cf.deploymentsCalls).To(Equal(2))
				Expect(apps.takeCalls()).To(Equal([][]string{{app2}}))
			})
		})
	})

	It("counts runs by outcome and the apps refreshed", func() {
		cf.event("e1", "audit.app.stop", app1)
		run()
		Expect(testutil.ToFloat64(w.Metrics.Runs("success"))).To(BeEquivalentTo(1))
		Expect(testutil.ToFloat64(w.Metrics.Refreshed())).To(BeEquivalentTo(1))
		Expect(testutil.CollectAndCount(reg, "cf_app_discovery_watch_cursor_lag_seconds")).To(Equal(1))
		Expect(testutil.CollectAndCount(reg, "cf_app_discovery_watch_oldest_unwritten_change_age_seconds")).To(Equal(1))
	})
})
