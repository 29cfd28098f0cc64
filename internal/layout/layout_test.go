package layout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/ragparity/ragparity"

// layers ranks the top-level folders; a package may import a lower rank or
// its own folder only.
var layers = map[string]int{
	"parity": 0, "internal": 0,
	"adapters": 1, "embed": 1, "goldset": 1, "fence": 1,
	"verifier": 2,
	"probe":    3, "replicate": 3, "storetest": 3,
	"config":  4,
	"agent":   5,
	"gate":    6,
	"reports": 7,
	"demo":    8,
	"cmd":     9,
}

type pkg struct {
	ImportPath, Name                   string
	Imports, TestImports, XTestImports []string
}

func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = "../.."
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, errb.String())
	}
	var ps []pkg
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if len(ps) < 20 {
		t.Fatalf("go list found %d packages; expected the whole module", len(ps))
	}
	return ps
}

// rel returns the path inside the module and whether it is ours.
func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	r, ok := strings.CutPrefix(path, module+"/")
	return r, ok
}

func top(r string) string { return strings.SplitN(r, "/", 2)[0] }

// testOnly reports whether a package exists for tests only.
func testOnly(r string) bool {
	if top(r) == "storetest" {
		return true
	}
	last := r[strings.LastIndex(r, "/")+1:]
	return strings.HasSuffix(last, "test") && last != "test"
}

func violations(ps []pkg) []string {
	var bad []string
	for _, p := range ps {
		from, _ := rel(p.ImportPath)
		fl, ok := layers[top(from)]
		if !ok {
			bad = append(bad, fmt.Sprintf("%s: top-level folder %q has no layer (add it to layers and to the package doc)", p.ImportPath, top(from)))
			continue
		}
		for _, imp := range p.Imports {
			to, ours := rel(imp)
			if !ours {
				continue
			}
			switch {
			case top(to) == "cmd":
				bad = append(bad, fmt.Sprintf("%s imports %s: nothing imports cmd/...", from, to))
			case testOnly(to) && !testOnly(from) && top(from) != "cmd":
				bad = append(bad, fmt.Sprintf("%s imports the test-only package %s", from, to))
			case top(to) == top(from):
			case layers[top(to)] >= fl:
				bad = append(bad, fmt.Sprintf("%s (layer %d) imports %s (layer %d): imports point down only", from, fl, to, layers[top(to)]))
			}
		}
		// A store's tests may hash with the verifier, but never need the
		// gate, probe, replicate or reports.
		if top(from) == "adapters" || top(from) == "parity" {
			for _, imp := range append(append([]string{}, p.TestImports...), p.XTestImports...) {
				to, ours := rel(imp)
				if ours && (top(to) == "gate" || top(to) == "probe" || top(to) == "replicate" || top(to) == "reports") {
					bad = append(bad, fmt.Sprintf("%s tests import %s", from, to))
				}
			}
		}
	}
	return bad
}

func TestImportsPointDown(t *testing.T) {
	for _, v := range violations(list(t)) {
		t.Error(v)
	}
}

func TestParityImportsNothingOfOurs(t *testing.T) {
	for _, p := range list(t) {
		if r, _ := rel(p.ImportPath); top(r) != "parity" {
			continue
		}
		for _, imp := range p.Imports {
			if _, ours := rel(imp); ours {
				t.Errorf("%s imports %s", p.ImportPath, imp)
			}
		}
	}
}

// The rule itself is checked on made-up graphs, so a broken rule cannot
// pass silently.
func TestRuleCatchesUpwardImports(t *testing.T) {
	m := func(s string) string { return module + "/" + s }
	cases := []struct {
		p    pkg
		want string
	}{
		{pkg{ImportPath: m("adapters/pgvector"), Imports: []string{m("verifier")}}, "imports point down only"},
		{pkg{ImportPath: m("gate"), Imports: []string{m("cmd/ragparity")}}, "nothing imports cmd"},
		{pkg{ImportPath: m("gate"), Imports: []string{m("storetest/vectortest")}}, "test-only"},
		{pkg{ImportPath: m("adapters/embedded"), TestImports: []string{m("probe")}}, "tests import"},
		{pkg{ImportPath: m("newtop"), Imports: nil}, "has no layer"},
	}
	for _, c := range cases {
		got := strings.Join(violations([]pkg{c.p}), "\n")
		if !strings.Contains(got, c.want) {
			t.Errorf("%s -> %v: violations %q, want one containing %q", c.p.ImportPath, c.p.Imports, got, c.want)
		}
	}
	if v := violations([]pkg{{ImportPath: m("gate"), Imports: []string{m("verifier"), m("gate/server"), "fmt"}}}); len(v) != 0 {
		t.Errorf("a downward import is flagged: %v", v)
	}
}

// cmd/ragparity stays thin: flags, printing and exit codes, under 2,000
// lines of Go (issue 11); work that grows it belongs in a library package.
func TestCmdStaysThin(t *testing.T) {
	files, err := filepath.Glob("../../cmd/ragparity/*.go")
	if err != nil || len(files) < 10 {
		t.Fatalf("cmd/ragparity: %v %v", files, err)
	}
	lines := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines += bytes.Count(b, []byte("\n"))
	}
	if lines >= 2000 {
		t.Errorf("cmd/ragparity has %d lines of Go (tests aside); keep it under 2,000 by moving work into gate, gate/server or the packages below", lines)
	}
	t.Logf("cmd/ragparity: %d lines of Go", lines)
}
