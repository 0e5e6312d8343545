package broker_test

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/targets"
)

var _ = Describe("Bind during a rolling deploy", func() {
	var h *harness
	var app targets.App

	BeforeEach(func() {
		h = newHarness()
		app = startedApp()
		app.Processes = append(app.Processes, targets.Process{GUID: "00000000-0000-4000-8000-000000000002", Instances: 1, CreatedAt: time.Now()})
		h.cf.setApp(app)
	})

	DescribeTable("writes the target file in the broker's addressing",
		func(addressing targets.Addressing, groups int) {
			h.addressing = addressing
			h.serve()
			r := h.bindWith(bindingID, bindBody(appGUID))
			Expect(r.status).To(Equal(http.StatusCreated), r.raw)
			Expect(h.read("active/" + appGUID + ".json")).To(Equal(string(targets.RenderWith(app, targets.Options{PaaSDomain: paasDomain, Addressing: addressing}))))
			Expect(targets.GroupsWith(app, targets.Options{PaaSDomain: paasDomain, Addressing: addressing})).To(HaveLen(groups))
		},
		Entry("app: one group per index", targets.AppAddressing, 2),
		Entry("process: one group per instance of each process", targets.ProcessAddressing, 3),
	)
})
