package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHandler(t *testing.T) {
	const guid = "0d7c1a3e-5b2f-4e8a-9c6d-1f2e3a4b5c6d"
	h := handler(guid, "1")
	for _, c := range []struct {
		path, auth string
		want       int
	}{
		{"/metrics", "Bearer " + guid, http.StatusOK},
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", "Bearer another", http.StatusUnauthorized},
		{"/other", "Bearer " + guid, http.StatusNotFound},
	} {
		req := httptest.NewRequest(http.MethodGet, c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("GET %s with %q: %d, want %d", c.path, c.auth, rec.Code, c.want)
		}
		if c.want == http.StatusOK && rec.Body.String() != "# HELP sample_up Always 1.\n# TYPE sample_up gauge\nsample_up{cf_instance_index=\"1\"} 1\n" {
			t.Errorf("body %q", rec.Body.String())
		}
	}
}
