package httpsd_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/alphagov/cf-app-discovery/httpsd"
	"github.com/alphagov/cf-app-discovery/store"
	"github.com/alphagov/cf-app-discovery/targets"
)

// benchEndpoint is a ready endpoint over 10,000 apps of 1 to 3 instances
// in 10 orgs of 10 spaces.
func benchEndpoint(b *testing.B) (*httpsd.Handler, *httpsd.View, *fakeStore) {
	st := newFakeStore()
	for i := range 10000 {
		a := app(i, fmt.Sprintf("org-%d", i%10), fmt.Sprintf("space-%d", i/10%10), 1+i%3)
		key, err := store.TargetKey(a.GUID, true)
		if err != nil {
			b.Fatal(err)
		}
		st.put(key, targets.Render(a, "paas.example"))
	}
	view := httpsd.NewView(httpsd.ViewOptions{Store: st})
	if err := view.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	return httpsd.NewHandler(view, httpsd.Credentials{Username: sdUser, Password: sdPassword}, nil), view, st
}

// BenchmarkServe measures the handler's own work per request, gzip on, for
// answers already made.
func BenchmarkServe(b *testing.B) {
	h, _, _ := benchEndpoint(b)
	for _, path := range []string{httpsd.Path, httpsd.Path + "?org=org-3", httpsd.Path + "?org=org-3&space=space-4"} {
		b.Run(path, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.SetBasicAuth(sdUser, sdPassword)
			req.Header.Set("Accept-Encoding", "gzip")
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}

// BenchmarkServeFirstFiltered measures the first request for a filter
// after the view changed, which makes the filtered answer.
func BenchmarkServeFirstFiltered(b *testing.B) {
	h, view, st := benchEndpoint(b)
	req := httptest.NewRequest(http.MethodGet, httpsd.Path+"?org=org-3", nil)
	req.SetBasicAuth(sdUser, sdPassword)
	req.Header.Set("Accept-Encoding", "gzip")
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		b.StopTimer()
		n++
		a := app(1, "org-1", "space-0", 1+n%3)
		key, _ := store.TargetKey(a.GUID, true)
		st.put(key, targets.Render(a, "paas.example"))
		if err := view.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
