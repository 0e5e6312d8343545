// Package deploy_test checks manifest.yml against the programs it deploys
// and the example vars files an operator copies.
package deploy_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gopkg.in/yaml.v3"
)

func TestDeploy(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Deploy")
}

type manifest struct {
	Applications []struct {
		Name    string            `yaml:"name"`
		Command string            `yaml:"command"`
		Env     map[string]string `yaml:"env"`
	} `yaml:"applications"`
}

// buildpackVars are read by the Go buildpack, not by our programs.
var buildpackVars = map[string]bool{"GOVERSION": true, "GO_INSTALL_PACKAGE_SPEC": true}

var varPattern = regexp.MustCompile(`\(\(([a-z0-9_]+)\)\)`)

func readFile(path string) string {
	data, err := os.ReadFile(path)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return string(data)
}

// stringLiterals returns every string constant in the non-test Go files
// under dirs: the names the programs can look up.
func stringLiterals(dirs ...string) map[string]bool {
	out := map[string]bool{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
			if err != nil {
				return err
			}
			ast.Inspect(file, func(n ast.Node) bool {
				if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						out[s] = true
					}
				}
				return true
			})
			return nil
		})
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
	}
	return out
}

var _ = Describe("manifest.yml", func() {
	var (
		raw string
		m   manifest
	)

	BeforeEach(func() {
		raw = readFile("../manifest.yml")
		// Placeholders are filled by `cf push --vars-file`; any value parses.
		Expect(yaml.Unmarshal([]byte(varPattern.ReplaceAllString(raw, "placeholder")), &m)).To(Succeed())
		Expect(m.Applications).To(HaveLen(2))
	})

	It("runs, in every app, a binary that GO_INSTALL_PACKAGE_SPEC builds", func() {
		for _, app := range m.Applications {
			var built []string
			for _, pkg := range strings.Fields(app.Env["GO_INSTALL_PACKAGE_SPEC"]) {
				Expect(filepath.Join("..", pkg, "main.go")).To(BeARegularFile(), "package %s of app %s", pkg, app.Name)
				built = append(built, "./bin/"+filepath.Base(pkg))
			}
			Expect(built).To(ContainElement(app.Command), "app %s", app.Name)
			Expect(app.Env).To(HaveKey("GOVERSION"), "the Go buildpack does not read go.mod's version")
		}
	})

	It("sets only environment variables the programs read", func() {
		known := stringLiterals("../cmd", "../config", "../broker", "../targets")
		for _, app := range m.Applications {
			for name := range app.Env {
				if buildpackVars[name] {
					continue
				}
				Expect(known).To(HaveKey(name), "app %s sets %s, which no program reads", app.Name, name)
			}
		}
	})

	DescribeTable("every ((var)) has a value in the example vars file",
		func(path string) {
			var vars map[string]any
			Expect(yaml.Unmarshal([]byte(readFile(path)), &vars)).To(Succeed())
			var missing []string
			for _, match := range varPattern.FindAllStringSubmatch(raw, -1) {
				if _, ok := vars[match[1]]; !ok {
					missing = append(missing, match[1])
				}
			}
			sort.Strings(missing)
			Expect(missing).To(BeEmpty())
		},
		Entry("staging", "vars-staging.example.yml"),
		Entry("production", "vars-production.example.yml"),
	)

	It("keeps secrets out of the manifest and the example vars", func() {
		for _, text := range []string{raw, readFile("vars-staging.example.yml"), readFile("vars-production.example.yml")} {
			Expect(text).NotTo(MatchRegexp(`(?i)(PASSWORD|SECRET|ACCESS_KEY)\s*:`))
		}
	})
})
