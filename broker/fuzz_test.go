package broker_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"code.cloudfoundry.org/lager/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/broker"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// FuzzBind sends arbitrary binding ids and bodies to the real handler. A
// bind either succeeds and leaves a record and a target file, or it is
// refused with a 4xx and leaves nothing; nothing is ever written outside
// the three prefixes, and nothing answers 500.
func FuzzBind(f *testing.F) {
	f.Add(bindingID, `{"service_id":"`+serviceID+`","plan_id":"`+planID+`","bind_resource":{"app_guid":"`+appGUID+`"}}`)
	f.Add("..%2Factive%2Fx", `{"service_id":"`+serviceID+`","plan_id":"`+planID+`","app_guid":"`+appGUID+`"}`)
	f.Add(bindingID, `{"service_id":"`+serviceID+`","plan_id":"`+planID+`","app_guid":"../../etc/passwd"}`)
	f.Add("..", `{"service_id":"`+serviceID+`","plan_id":"`+planID+`","app_guid":"`+appGUID+`"}`)
	f.Add(bindingID, `{"service_id":1,"plan_id":[],"bind_resource":"x"}`)
	f.Add(bindingID, `{"service_id":"`+serviceID+`","plan_id":"`+planID+`","bind_resource":{}}`)
	f.Fuzz(func(t *testing.T, binding, body string) {
		dir := t.TempDir()
		st, err := store.NewDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		cf := newFakeCF()
		cf.apps[appGUID] = targets.App{GUID: appGUID, Name: "my-app", State: "STARTED", Processes: []targets.Process{{GUID: "00000000-0000-4000-8000-000000000001", Instances: 1}}}
		logger := lager.NewLogger("fuzz")
		b := broker.New(broker.Options{
			Catalog: broker.Catalog{ServiceID: serviceID, ServiceName: "s", PlanID: planID, PlanName: "p"},
			Store:   st, Apps: cf, Bindings: cf, PaaSDomain: "paas.example", Logger: logger,
		})
		reg := prometheus.NewRegistry()
		handler := broker.NewHandler(b, logger, broker.Credentials{Username: "u", Password: "p"}, reg, reg)
		req := httptest.NewRequest("PUT", "/v2/service_instances/"+instanceID+"/service_bindings/"+url.PathEscape(binding), bytes.NewReader([]byte(body)))
		req.SetBasicAuth("u", "p")
		req.Header.Set("X-Broker-API-Version", "2.15")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)

		var files []string
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, path)
				files = append(files, filepath.ToSlash(rel))
			}
			return nil
		})
		for _, f := range files {
			if _, _, err := store.ParseKey(f); err != nil {
				t.Fatalf("wrote %q", f)
			}
		}
		switch {
		case rec.Code == http.StatusCreated:
			if len(files) != 2 {
				t.Fatalf("201 with files %v", files)
			}
		case rec.Code >= 400 && rec.Code < 500:
			if len(files) != 0 {
				t.Fatalf("%d with files %v", rec.Code, files)
			}
		default:
			t.Fatalf("answered %d: %s", rec.Code, rec.Body)
		}
	})
}
