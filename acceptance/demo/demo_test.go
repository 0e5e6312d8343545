package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestDemoSelfTest runs the demo as `make demo` does and walks through the
// flow it prints: provision, bind, a scrape through paas-proxy, unbind.
func TestDemoSelfTest(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/alphagov/cf-app-discovery/cmd/...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the programs: %v\n%s", err, out)
	}
	if err := run(context.Background(), bin, filepath.Join(t.TempDir(), "demo"), 19100, true); err != nil {
		t.Fatal(err)
	}
}
