package fakecf_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/alphagov/cf-app-discovery/acceptance/fakecf"
)

// BenchmarkListApps5000 measures serving one page of 5000 apps (with their
// spaces and orgs) out of 12,000.
func BenchmarkListApps5000(b *testing.B) {
	server := fakecf.New(fakecf.Options{})
	defer server.Close()
	if _, err := server.Populate(fakecf.Fleet{Orgs: 20, SpacesPerOrg: 10, Apps: 12000, Bound: 10000}); err != nil {
		b.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, server.URL()+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(fakecf.DefaultClientID, fakecf.DefaultClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	token := strings.Split(strings.Split(string(body), `"access_token":"`)[1], `"`)[0]
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, server.URL()+"/v3/apps?per_page=5000&page=2&include=space.organization", nil)
		req.Header.Set("Authorization", "bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n < 1_000_000 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}
