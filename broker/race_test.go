package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
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

		params, _ := json.Marshal(map[string]string{"job": "v"})
		_, err = b.Bind(ctx, instanceID, bindingID, domain.BindDetails{
			ServiceID: serviceID, PlanID: planID, AppGUID: appGUID,
			BindResource: &domain.BindResource{AppGuid: appGUID, SpaceGuid: spaceGUID}, RawParameters: params,
		}, false)
		Expect(err).NotTo(HaveOccurred())
	})
})

var _ = Describe("Unbind racing its bind", func() {
	// Cloud Controller gave up on a slow bind (60 s) and sent the
	// orphan-mitigation unbind while the bind still runs: the unbind finds
	// no record yet, learns the app from the CF API and waits for the app,
	// whose lock the bind holds.
	It("an orphan-mitigation unbind racing its slow bind leaves neither record nor target file", func() {
		h := newHarness().serve()
		h.cf.setBinding(cfapi.Binding{GUID: bindingID, AppGUID: appGUID, Deleting: true})
		recordKey := "bindings/" + bindingID + ".json"

		// The bind stops just before it writes its record...
		write := h.st.hold("PUT", recordKey)
		binds := make(chan response)
		go func() {
			defer GinkgoRecover()
			binds <- h.bind(bindingID, appGUID)
		}()
		<-write.entered
		// ...until the unbind has read that there is none.
		read := h.st.hold("GET", recordKey)
		unbinds := make(chan response)
		go func() {
			defer GinkgoRecover()
			unbinds <- h.unbind(bindingID)
		}()
		<-read.entered
		read.release()
		<-read.done
		write.release()

		Expect((<-binds).status).To(Equal(http.StatusCreated))
		Expect((<-unbinds).status).To(Equal(http.StatusOK))
		Expect(h.files()).To(BeEmpty())
	})
})
