package cfapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
	"github.com/alphagov/cf-app-discovery/cfapi"
)

// cfLatency is the latency the fake CF API adds to every request, about a
// CF API's in the same region.
const cfLatency = 20 * time.Millisecond

func benchClient(b *testing.B, fleet fakecf.Fleet) (*fakecf.Server, *cfapi.Client) {
	b.Helper()
	server := fakecf.New(fakecf.Options{})
	b.Cleanup(server.Close)
	if _, err := server.Populate(fleet); err != nil {
		b.Fatal(err)
	}
	cfg := testCFConfig(server, nil)
	cfg.AttemptTimeout = time.Minute
	cf, err := cfapi.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	server.Warm()
	server.SetLatency(cfLatency)
	server.ResetCounts()
	return server, cf
}

// BenchmarkApp is the broker's look-up of one app on bind.
func BenchmarkApp(b *testing.B) {
	server, cf := benchClient(b, fakecf.Fleet{Orgs: 2, SpacesPerOrg: 5, Apps: 200, PlanCatalogID: planCatalogID})
	ctx := context.Background()
	guid := fakecf.GUID("app", 42)
	ops := 0
	for b.Loop() {
		app, err := cf.App(ctx, guid)
		if err != nil {
			b.Fatal(err)
		}
		if app.GUID != guid {
			b.Fatalf("got app %s", app.GUID)
		}
		ops++
	}
	b.ReportMetric(float64(server.Requests())/float64(ops), "cf-requests/op")
}

// BenchmarkApps10k is one reconcile's look-up of 10,000 bound apps among
// 12,000 visible ones.
func BenchmarkApps10k(b *testing.B) {
	server, cf := benchClient(b, fakecf.Fleet{Orgs: 20, SpacesPerOrg: 10, Apps: 12000, Bound: 10000, ExtraRoutes: 3000, PlanCatalogID: planCatalogID})
	ctx := context.Background()
	guids := make([]string, 10000)
	for i := range guids {
		guids[i] = fakecf.GUID("app", i)
	}
	ops := 0
	for b.Loop() {
		apps, err := cf.Apps(ctx, guids)
		if err != nil {
			b.Fatal(err)
		}
		if len(apps) != len(guids) {
			b.Fatalf("got %d apps", len(apps))
		}
		ops++
	}
	b.ReportMetric(float64(server.Requests())/float64(ops), "cf-requests/op")
}

// BenchmarkPlanBindings10k is one reconcile's listing of 10,000 bindings.
func BenchmarkPlanBindings10k(b *testing.B) {
	server, cf := benchClient(b, fakecf.Fleet{Orgs: 20, SpacesPerOrg: 10, Apps: 12000, Bound: 10000, PlanCatalogID: planCatalogID})
	ctx := context.Background()
	ops := 0
	for b.Loop() {
		bindings, err := cf.PlanBindings(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(bindings) != 10000 {
			b.Fatalf("got %d bindings", len(bindings))
		}
		ops++
	}
	b.ReportMetric(float64(server.Requests())/float64(ops), "cf-requests/op")
}
