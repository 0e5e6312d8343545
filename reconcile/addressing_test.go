package reconcile_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/reconcile"
	"github.com/alphagov/cf-app-discovery/store/storetest"
	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("Reconciler addressing", func() {
	DescribeTable("renders target files in the reconciler's addressing",
		func(addressing targets.Addressing) {
			cf := newFakeCF()
			app := targets.App{GUID: appGUIDn(1), Name: "app-1", State: "STARTED", Org: "org", Space: "space",
				Processes: []targets.Process{
					{GUID: "00000000-0000-4000-8000-000000000001", Instances: 2, CreatedAt: time.Unix(1, 0)},
					{GUID: "00000000-0000-4000-8000-000000000002", Instances: 1, CreatedAt: time.Unix(2, 0)},
				}}
			cf.apps[app.GUID] = app
			cf.bind(bindingGUIDn(1), app.GUID)
			st := storetest.NewMem()
			rec := &reconcile.Reconciler{Store: st, CF: cf, PaaSDomain: paasDomain, PlanID: "plan", Addressing: addressing}
			_, err := rec.Run(context.Background())
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Body(activeKey(app.GUID))).To(Equal(string(targets.RenderWith(app, targets.Options{PaaSDomain: paasDomain, Addressing: addressing}))))
		},
		Entry("app", targets.AppAddressing),
		Entry("process", targets.ProcessAddressing),
	)
})
