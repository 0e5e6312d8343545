package reconcile_test

import (
	"context"
	"fmt"
	"slices"

	"code.cloudfoundry.org/lager/v3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/reconcile"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/store/storetest"
	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("The pass that verifies a run's first", func() {
	var (
		ctx context.Context
		st  *storetest.Mem
		cf  *fakeCF
		rec *reconcile.Reconciler
	)

	app := func(n, instances int) targets.App {
		return targets.App{GUID: appGUIDn(n), Name: fmt.Sprintf("app-%d", n), State: "STARTED",
			Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: instances}},
			Org:       "org", Space: "space", Routes: []targets.Route{{Host: fmt.Sprintf("app-%d", n), Domain: "example.com", Protocol: "http1"}}}
	}
	// lookedUp is every guid the reconciler asked CF about, in call order.
	lookedUp := func() [][]string {
		cf.mu.Lock()
		defer cf.mu.Unlock()
		return slices.Clone(cf.lookups)
	}

	BeforeEach(func() {
		ctx = context.Background()
		st = storetest.NewMem()
		cf = newFakeCF()
		rec = &reconcile.Reconciler{Store: st, CF: cf, PaaSDomain: paasDomain, PlanID: "plan", Workers: 4, Logger: lager.NewLogger("test")}
		for n := 1; n <= 3; n++ {
			cf.apps[appGUIDn(n)] = app(n, 2)
			cf.bind(bindingGUIDn(n), appGUIDn(n))
		}
	})

	It("looks no app up again after a first run wrote every target file", func() {
		res, err := rec.Run(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Passes).To(Equal(2))
		Expect(res.TargetsWritten).To(Equal(3))
		Expect(lookedUp()).To(HaveLen(1), "the first pass only")
	})

	It("looks up an app bound during the first pass", func() {
		cf.apps[appGUIDn(4)] = app(4, 1)
		reconcile.SetBeforeApply(rec, func(pass int) {
			if pass == 1 {
				cf.bind(bindingGUIDn(4), appGUIDn(4))
			}
		})
		_, err := rec.Run(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(lookedUp()).To(HaveLen(2))
		Expect(lookedUp()[1]).To(Equal([]string{appGUIDn(4)}))
		Expect(st.Body(activeKey(appGUIDn(4)))).To(Equal(string(targets.Render(app(4, 1), paasDomain))))
	})

	It("looks up again an app whose file a bind rewrote from a newer look, and keeps the newer file", func() {
		reconcile.SetBeforeApply(rec, func(pass int) {
			if pass != 1 {
				return
			}
			// The app scales after the pass read it; a bind of it on the
			// broker writes the file from the newer look before the pass
			// writes its own, which then fails its condition.
			scaled := app(2, 5)
			cf.update(appGUIDn(2), func(a *targets.App) { *a = scaled })
			Expect(store.NewBucket(st).PutTarget(ctx, store.Target{AppGUID: scaled.GUID, Started: true,
				Body: targets.Render(scaled, paasDomain)})).To(Succeed())
		})
		res, err := rec.Run(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.WritesConflicts).To(Equal(1))
		Expect(lookedUp()).To(HaveLen(2))
		Expect(lookedUp()[1]).To(Equal([]string{appGUIDn(2)}))
		Expect(st.Body(activeKey(appGUIDn(2)))).To(Equal(string(targets.Render(app(2, 5), paasDomain))))
	})
})
