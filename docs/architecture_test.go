// Package docs holds glint's documentation; its one test keeps the package
// map in architecture.md true.
package docs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/glint-boot/glint/"

// mapLine is one package line of the map: "  3  eventlog   description".
var mapLine = regexp.MustCompile(`^\s*(\d+)\s+(\S+)\s{2,}\S`)

// packageMap reads the layers from architecture.md, between the
// "package map" markers. Names without a top-level directory of their own
// (cmd/, e2e, dist/, docs ...) are under internal/.
func packageMap(t *testing.T) map[string]int {
	t.Helper()
	raw, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	layers := map[string]int{}
	in := false
	s := bufio.NewScanner(bytes.NewReader(raw))
	for s.Scan() {
		line := s.Text()
		switch {
		case strings.Contains(line, "<!-- package map begin -->"):
			in = true
			continue
		case strings.Contains(line, "<!-- package map end -->"):
			in = false
		}
		m := mapLine.FindStringSubmatch(line)
		if !in || m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		name := m[2]
		if _, err := os.Stat("../internal/" + name); err == nil {
			name = "internal/" + name
		}
		if _, dup := layers[name]; dup {
			t.Errorf("architecture.md lists %s twice", name)
		}
		layers[name] = n
	}
	if len(layers) == 0 {
		t.Fatal("architecture.md has no package map between <!-- package map begin --> and <!-- package map end -->")
	}
	return layers
}

type listed struct {
	ImportPath                         string
	Imports, TestImports, XTestImports []string
}

// goList lists every package of the module with every build tag the
// project uses, so tagged tests (e2e, qemu, boards) are checked too.
func goList(t *testing.T) []listed {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not in PATH")
	}
	cmd := exec.Command("go", "list", "-e", "-tags", "e2e,qemu,attestserver,boards", "-json=ImportPath,Imports,TestImports,XTestImports", "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// testHelper says whether a package exists to run a real part for other
// packages' tests (swtpm, pcscd, a dongle or card simulator, gpg keys):
// any test may import those.
func testHelper(pkg string) bool {
	b := path.Base(pkg)
	return strings.HasSuffix(b, "test") || strings.HasSuffix(b, "sim")
}

// The package map in architecture.md is the rule: every package of the
// module is in it, its imports point to lower layers only, and its tests
// import lower layers and test helpers only.
func TestPackageMapMatchesImports(t *testing.T) {
	layers := packageMap(t)
	seen := map[string]bool{}
	for _, p := range goList(t) {
		if p.ImportPath == "docs" {
			continue
		}
		seen[p.ImportPath] = true
		layer, ok := layers[p.ImportPath]
		if !ok {
			t.Errorf("%s is not in the package map of docs/architecture.md: add it, one layer above the highest package it imports", p.ImportPath)
			continue
		}
		check := func(imports []string, test bool) {
			for _, imp := range imports {
				if !strings.HasPrefix(imp, module) {
					continue
				}
				imp = strings.TrimPrefix(imp, module)
				if imp == p.ImportPath {
					continue
				}
				l, ok := layers[imp]
				switch {
				case !ok:
					// reported as unlisted on its own
				case l < layer:
				case test && testHelper(imp):
				default:
					what := "imports"
					if test {
						what = "has tests that import"
					}
					t.Errorf("%s (layer %d) %s %s (layer %d): imports must point to lower layers", p.ImportPath, layer, what, imp, l)
				}
			}
		}
		check(p.Imports, false)
		check(append(append([]string(nil), p.TestImports...), p.XTestImports...), true)
	}
	var gone []string
	for name := range layers {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		t.Errorf("docs/architecture.md lists %s, which is not a package of the module", name)
	}
	if t.Failed() {
		fmt.Println("the package map is in docs/architecture.md between the <!-- package map --> markers")
	}
}
