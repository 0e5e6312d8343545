package config_test

import (
	"strings"
	"testing"

	"github.com/alphagov/cf-app-discovery/config"
)

// FuzzParseVCAPServices checks that no VCAP_SERVICES document can crash the
// parser, and that what it returns is only user-provided scalar credentials.
func FuzzParseVCAPServices(f *testing.F) {
	f.Add(`{"user-provided":[{"name":"a","credentials":{"X":"1","N":2,"B":true}}]}`)
	f.Add(`{"user-provided":[{"name":"a","credentials":{"X":"1"}},{"name":"b","credentials":{"X":"2"}}]}`)
	f.Add(`{"user-provided":null}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, raw string) {
		creds, err := config.ParseVCAPServices([]byte(raw))
		if err != nil {
			return
		}
		e := config.New(func(name string) (string, bool) {
			if name == "VCAP_SERVICES" {
				return raw, true
			}
			return "", false
		})
		for k, v := range creds {
			// A blank value counts as unset, as it does in the environment.
			if got := e.String(k, "unset"); strings.TrimSpace(v) != "" && got == "unset" {
				t.Fatalf("credential %q=%q not visible through Env", k, v)
			}
		}
		if e.Err() != nil {
			t.Fatalf("Env rejected a document ParseVCAPServices accepted: %v", e.Err())
		}
	})
}
