package fakecf_test

import (
	"encoding/json"
	"io"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
)

var _ = Describe("the control endpoints under /fake/", func() {
	var w *world

	BeforeEach(func() {
		w = newWorld()
	})

	post := func(path string) (int, map[string]any) {
		resp, err := http.Post(w.server.URL()+path, "", nil)
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		Expect(err).NotTo(HaveOccurred())
		var out map[string]any
		if len(body) > 0 {
			Expect(json.Unmarshal(body, &out)).To(Succeed(), string(body))
		}
		return resp.StatusCode, out
	}

	It("drives a canary deployment from start to end, without a token", func() {
		app := "/fake/apps/" + w.app.GUID
		status, d := post(app + "/deploy?strategy=canary")
		Expect(status).To(Equal(http.StatusOK))
		Expect(d).To(HaveKeyWithValue("strategy", "canary"))
		Expect(d["status"]).To(Equal(map[string]any{"value": "ACTIVE", "reason": "DEPLOYING"}))

		status, d = post(app + "/deploy/step")
		Expect(status).To(Equal(http.StatusOK))
		Expect(d["status"]).To(Equal(map[string]any{"value": "ACTIVE", "reason": "PAUSED"}))
		status, _ = post(app + "/deploy/finish")
		Expect(status).To(Equal(http.StatusUnprocessableEntity))
		status, _ = post(app + "/deploy/continue")
		Expect(status).To(Equal(http.StatusOK))
		status, d = post(app + "/deploy/finish")
		Expect(status).To(Equal(http.StatusOK))
		Expect(d["status"]).To(Equal(map[string]any{"value": "FINALIZED", "reason": "DEPLOYED"}))
		Expect(w.api.webProcesses(w.app.GUID)).To(Equal([]string{d["new_process_guid"].(string) + "=3"}))
	})

	It("scales, stops, starts and restarts", func() {
		app := "/fake/apps/" + w.app.GUID
		for _, action := range []string{"/scale?instances=2", "/stop", "/start", "/restart"} {
			status, _ := post(app + action)
			Expect(status).To(Equal(http.StatusNoContent), action)
		}
		Expect(w.eventTypes()).To(Equal([]string{fakecf.EventProcessScale, fakecf.EventStop, fakecf.EventStart, fakecf.EventRestart}))
		Expect(w.api.webProcesses(w.app.GUID)).To(Equal([]string{w.app.GUID + "=2"}))
	})

	It("lists the app's web processes", func() {
		resp, err := http.Get(w.server.URL() + "/fake/apps/" + w.app.GUID + "/processes")
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		var procs []map[string]any
		Expect(json.NewDecoder(resp.Body).Decode(&procs)).To(Succeed())
		Expect(procs).To(HaveLen(1))
		Expect(procs[0]).To(HaveKeyWithValue("guid", w.app.GUID))
		Expect(procs[0]).To(HaveKeyWithValue("instances", 3.0))
	})

	DescribeTable("refuses what the fake cannot do",
		func(path string, want int) {
			status, body := post(path)
			Expect(status).To(Equal(want))
			Expect(body).To(HaveKey("error"))
		},
		Entry("an unknown app", "/fake/apps/"+fakecf.GUID("app", 404)+"/stop", http.StatusNotFound),
		Entry("an unknown strategy", "/fake/apps/"+fakecf.GUID("app", 404)+"/deploy?strategy=blue-green", http.StatusBadRequest),
		Entry("a bad instance count", "/fake/apps/"+fakecf.GUID("app", 404)+"/scale?instances=-1", http.StatusBadRequest),
	)

	It("answers an unknown control path 404 and leaves the request counts alone", func() {
		w.server.ResetCounts()
		resp, err := http.Post(w.server.URL()+"/fake/nothing", "", nil)
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
		Expect(w.server.Requests()).To(Equal(0))
	})
})
