package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoSelfTest runs the demo as `make demo` does, with the Prometheus 3
// built from the Go module (which has no web UI), and walks through the
// flow it prints: provision, bind, a scrape through paas-proxy, the printed
// Prometheus query showing the bound app up, unbind.
func TestDemoSelfTest(t *testing.T) {
	prom, err := exec.Command("../../scripts/test-tools.sh", "--no-build", "prometheus").Output()
	if err != nil {
		var stderr string
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = string(exit.Stderr)
		}
		t.Fatalf("the demo's test needs Prometheus 3 (%v): %s", err, stderr)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/alphagov/cf-app-discovery/cmd/...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the programs: %v\n%s", err, out)
	}
	if err := run(context.Background(), bin, filepath.Join(t.TempDir(), "demo"), strings.TrimSpace(string(prom)), 19100, true); err != nil {
		t.Fatal(err)
	}
}
