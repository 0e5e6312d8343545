package broker_test

import (
	"context"
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/pivotal-cf/brokerapi/v10/domain"

	"github.com/alphagov/cf-app-discovery/broker"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/reconcile"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// plannedBindings is a CFReader for the reconciler: fixed bindings and apps.
type plannedBindings struct {
	bindings []cfapi.Binding
	apps     map[string]targets.App
}

func (r *plannedBindings) PlanBindings(context.Context) ([]cfapi.Binding, error) {
	return r.bindings, nil
}

func (r *plannedBindings) Apps(_ context.Context, guids []string) (map[string]targets.App, error) {
	out := map[string]targets.App{}
	for _, g := range guids {
		if a, ok := r.apps[g]; ok {
			out[g] = a
		}
	}
	return out, nil
}

var _ = Describe("Bind racing a reconcile", func() {
	It("a bind racing a reconcile that adopted its in-flight binding is not a 409", func() {
		ctx := context.Background()
		dir := GinkgoT().TempDir()
		st, err := store.NewDir(dir)
		Expect(err).NotTo(HaveOccurred())
		app := targets.App{GUID: appGUID, Name: "my-app", State: "STARTED", Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: 1}}, Org: "o", Space: "s"}
		cf := newFakeCF()
		cf.apps[appGUID] = app
		b := broker.New(broker.Options{
			Catalog: broker.Catalog{ServiceID: serviceID, ServiceName: "s", PlanID: planID, PlanName: "p"},
			Store:   st, Apps: cf, Bindings: cf, PaaSDomain: "paas.example",
		})
		// Cloud Controller has created the binding (last operation
		// "create in progress") and is about to call the broker; the
		// reconciler runs in between and adopts it.
		rec := &reconcile.Reconciler{Store: st, PlanID: planID, CF: &plannedBindings{
			bindings: []cfapi.Binding{{GUID: bindingID, AppGUID: appGUID, CreatedAt: time.Now()}},
			apps:     map[string]targets.App{appGUID: app},
		}}
		_, err = rec.Run(ctx)
		Expect(err).NotTo(HaveOccurred())

		params, _ := json.Marshal(map[string]string{"k": "v"})
		_, err = b.Bind(ctx, instanceID, bindingID, domain.BindDetails{
			ServiceID: serviceID, PlanID: planID, AppGUID: appGUID,
			BindResource: &domain.BindResource{AppGuid: appGUID, SpaceGuid: spaceGUID}, RawParameters: params,
		}, false)
		Expect(err).NotTo(HaveOccurred())
	})
})

// gatedApps holds App look-ups until released, to interleave a bind with an unbind.
type gatedApps struct {
	*fakeCF
	entered chan struct{}
	release chan struct{}
}

func (g *gatedApps) App(ctx context.Context, guid string) (targets.App, error) {
	close(g.entered)
	<-g.release
	return g.fakeCF.App(ctx, guid)
}

var _ = Describe("Unbind racing its bind", func() {
	It("an orphan-mitigation unbind racing its slow bind leaves no binding record", func() {
		ctx := context.Background()
		st, err := store.NewDir(GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		cf := newFakeCF()
		cf.apps[appGUID] = targets.App{GUID: appGUID, Name: "my-app", State: "STARTED", Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: 1}}}
		cf.bindings[bindingID] = cfapi.Binding{GUID: bindingID, AppGUID: appGUID, Deleting: true}
		apps := &gatedApps{fakeCF: cf, entered: make(chan struct{}), release: make(chan struct{})}
		b := broker.New(broker.Options{
			Catalog: broker.Catalog{ServiceID: serviceID, ServiceName: "s", PlanID: planID, PlanName: "p"},
			Store:   st, Apps: apps, Bindings: cf, PaaSDomain: "paas.example",
		})
		bindDone := make(chan error)
		go func() {
			_, err := b.Bind(ctx, instanceID, bindingID, domain.BindDetails{ServiceID: serviceID, PlanID: planID, AppGUID: appGUID}, false)
			bindDone <- err
		}()
		<-apps.entered
		unbindDone := make(chan error)
		go func() {
			_, err := b.Unbind(ctx, instanceID, bindingID, domain.UnbindDetails{ServiceID: serviceID, PlanID: planID}, false)
			unbindDone <- err
		}()
		time.Sleep(100 * time.Millisecond) // unbind has read "no record" and waits for the app lock
		close(apps.release)
		Expect(<-bindDone).NotTo(HaveOccurred())
		Expect(<-unbindDone).NotTo(HaveOccurred())
		objs, err := st.List(ctx, store.BindingPrefix)
		Expect(err).NotTo(HaveOccurred())
		Expect(objs).To(BeEmpty())
	})
})
