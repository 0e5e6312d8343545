package cfcli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestCFCLI(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "cf CLI driver")
}

// fakeCF is a cf executable that records each call's arguments and
// environment in its directory, then runs the script the test gave for
// that command (on-<command>), or prints OK.
type fakeCF struct {
	dir  string
	path string
}

// call is one recorded run of the fake cf.
type call struct {
	Args []string
	Env  map[string]string
}

const fakeScript = `#!/bin/sh
dir='%s'
n=$(( $(cat "$dir/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$dir/count"
: > "$dir/$n.argv"
for a in "$@"; do printf '%%s\n' "$a" >> "$dir/$n.argv"; done
env > "$dir/$n.env"
if [ -f "$dir/on-$1" ]; then . "$dir/on-$1"; fi
echo OK
`

func newFakeCF() *fakeCF {
	dir := GinkgoT().TempDir()
	f := &fakeCF{dir: filepath.Join(dir, "calls"), path: filepath.Join(dir, "cf")}
	Expect(os.Mkdir(f.dir, 0o755)).To(Succeed())
	Expect(os.WriteFile(f.path, fmt.Appendf(nil, fakeScript, f.dir), 0o755)).To(Succeed())
	return f
}

// on makes the fake run script (sh, sourced) for command.
func (f *fakeCF) on(command, script string) {
	Expect(os.WriteFile(filepath.Join(f.dir, "on-"+command), []byte(script), 0o644)).To(Succeed())
}

func (f *fakeCF) calls() []call {
	count, err := os.ReadFile(filepath.Join(f.dir, "count"))
	if os.IsNotExist(err) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	n, err := strconv.Atoi(strings.TrimSpace(string(count)))
	Expect(err).NotTo(HaveOccurred())
	var out []call
	for i := 1; i <= n; i++ {
		argv, err := os.ReadFile(filepath.Join(f.dir, fmt.Sprintf("%d.argv", i)))
		Expect(err).NotTo(HaveOccurred())
		env, err := os.ReadFile(filepath.Join(f.dir, fmt.Sprintf("%d.env", i)))
		Expect(err).NotTo(HaveOccurred())
		c := call{Args: []string{}, Env: map[string]string{}}
		if s := strings.TrimSuffix(string(argv), "\n"); s != "" {
			c.Args = strings.Split(s, "\n")
		}
		for _, line := range strings.Split(string(env), "\n") {
			if name, value, ok := strings.Cut(line, "="); ok {
				c.Env[name] = value
			}
		}
		out = append(out, c)
	}
	return out
}

// argv is every argument of every call, joined by spaces.
func (f *fakeCF) argv() string {
	var all []string
	for _, c := range f.calls() {
		all = append(all, c.Args...)
	}
	return strings.Join(all, " ")
}
