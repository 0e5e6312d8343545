package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"code.cloudfoundry.org/lager/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/broker"
	"github.com/alphagov/cf-app-discovery/cfapi"
	"github.com/alphagov/cf-app-discovery/store"
)

// BenchmarkBind measures one bind through the real handler and CF client
// against the fake CF API, which adds 20 ms to every request, on a local
// directory store. It reports CF requests per bind; ns/op is the latency.
// "first" binds apps that have no target file yet; "another" binds apps
// that already have one, which also lists the app's bindings.
func BenchmarkBind(b *testing.B) {
	b.Run("first", func(b *testing.B) { benchmarkBind(b, false) })
	b.Run("another", func(b *testing.B) { benchmarkBind(b, true) })
}

func benchmarkBind(b *testing.B, another bool) {
	cf := fakecf.New(fakecf.Options{})
	defer cf.Close()
	pop, err := cf.Populate(fakecf.Fleet{Apps: 200, Bound: 0, PlanCatalogID: planID})
	if err != nil {
		b.Fatal(err)
	}
	cf.Warm()
	ctx := context.Background()
	client, err := cfapi.New(ctx, cfapi.Config{API: cf.URL(), Username: fakecf.DefaultUsername,
		Password: fakecf.DefaultPassword, PlanID: planID, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.NewDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	logger := lager.NewLogger("bench")
	brk := broker.New(broker.Options{
		Catalog: broker.Catalog{ServiceID: serviceID, ServiceName: "gds-prometheus", PlanID: planID, PlanName: "prometheus"},
		Store:   st, Apps: client, Bindings: client, PaaSDomain: "paas.example", Logger: logger,
	})
	reg := prometheus.NewRegistry()
	server := httptest.NewServer(broker.NewHandler(brk, logger, broker.Credentials{Username: "u", Password: "p"}, reg, reg))
	defer server.Close()
	bind := func(app fakecf.App, binding string) {
		body, _ := json.Marshal(map[string]any{"service_id": serviceID, "plan_id": planID,
			"bind_resource": map[string]any{"app_guid": app.GUID}})
		req, _ := http.NewRequest("PUT", server.URL+"/v2/service_instances/"+instanceID+"/service_bindings/"+binding, bytes.NewReader(body))
		req.SetBasicAuth("u", "p")
		req.Header.Set("X-Broker-API-Version", "2.15")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("bind answered %d", resp.StatusCode)
		}
	}
	if another {
		for i, app := range pop.Apps {
			bind(app, fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", i))
		}
	}
	cf.SetLatency(20 * time.Millisecond)
	cf.ResetCounts()

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bind(pop.Apps[i%len(pop.Apps)], fmt.Sprintf("bbbbbbbb-0000-4000-8000-%012d", i))
	}
	b.StopTimer()
	b.ReportMetric(float64(cf.Requests())/float64(b.N), "cf-requests/op")
}
