package main

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const guid = "0d7c1a3e-5b2f-4e8a-9c6d-1f2e3a4b5c6d"

func TestHandler(t *testing.T) {
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

// TestNegotiation checks the answer to what Prometheus asks for: the
// format by Accept, the compression by Accept-Encoding.
func TestNegotiation(t *testing.T) {
	h := handler(guid, "1")
	for _, c := range []struct {
		accept, acceptEncoding     string
		contentType, contentCoding string
		last                       string
	}{
		{"application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "gzip",
			"application/openmetrics-text; version=1.0.0", "gzip", "# EOF\n"},
		{"text/plain;version=0.0.4", "", "text/plain; version=0.0.4", "", "sample_up{cf_instance_index=\"1\"} 1\n"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+guid)
		req.Header.Set("Accept", c.accept)
		req.Header.Set("Accept-Encoding", c.acceptEncoding)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Header().Get("Content-Type"); !strings.HasPrefix(got, c.contentType) {
			t.Errorf("Accept %q: Content-Type %q, want %q", c.accept, got, c.contentType)
		}
		if got := rec.Header().Get("Content-Encoding"); got != c.contentCoding {
			t.Errorf("Accept-Encoding %q: Content-Encoding %q, want %q", c.acceptEncoding, got, c.contentCoding)
		}
		var body io.Reader = rec.Body
		if c.contentCoding == "gzip" {
			z, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatalf("Accept-Encoding %q: %v", c.acceptEncoding, err)
			}
			body = z
		}
		b, err := io.ReadAll(body)
		if err != nil || !strings.HasSuffix(string(b), c.last) {
			t.Errorf("Accept %q: body %q (%v), want it to end in %q", c.accept, b, err, c.last)
		}
	}
}
