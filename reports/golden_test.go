package reports

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden/reports")

// goldenDir holds this package's golden files (house style §10).
var goldenDir = filepath.Join("..", "testdata", "golden", "reports")

// checkGolden compares got with the golden file at path, or rewrites it
// under -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./reports -update` to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: output differs from the golden file (review, then `go test ./reports -update`):\n%s", path, firstDiff(string(want), string(got)))
	}
}

// firstDiff shows the first differing line with a little context.
func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g || i >= len(wl) || i >= len(gl) {
			return fmt.Sprintf("line %d:\n  want: %q\n  got:  %q\n(want %d lines, got %d)", i+1, cut(w, 300), cut(g, 300), len(wl), len(gl))
		}
	}
	return "(no line differs: line endings?)"
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

var svgBody = regexp.MustCompile(`(?s)(<svg class="chart" id="([^"]+)"[^>]*>)(.*?</svg>)`)

// splitCharts returns html with every chart's drawing replaced by "…"
// (so the page's golden reads as a page) and the charts by id.
func splitCharts(html string) (string, map[string]string) {
	charts := map[string]string{}
	for _, m := range svgBody.FindAllStringSubmatch(html, -1) {
		charts[m[2]] = m[1] + m[3] + "\n"
	}
	return svgBody.ReplaceAllString(html, "$1…</svg>"), charts
}

func renderT(t *testing.T, f Format, m *Model) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Render(&buf, f, m); err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	return buf.Bytes()
}

// TestGolden renders every fixture in every format and compares with
// testdata/golden/reports/<case>/. The HTML golden has its charts'
// drawings elided; each chart is compared on its own under charts/.
func TestGolden(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			m := fx.model(t)
			dir := filepath.Join(goldenDir, fx.name)
			for _, f := range Formats {
				t.Run(string(f), func(t *testing.T) {
					got := renderT(t, f, m)
					if f != FormatHTML {
						checkGolden(t, filepath.Join(dir, f.FileName()), got)
						return
					}
					page, charts := splitCharts(string(got))
					checkGolden(t, filepath.Join(dir, f.FileName()), []byte(page))
					for id, svg := range charts {
						checkGolden(t, filepath.Join(dir, "charts", id+".svg"), []byte(svg))
					}
					if !*update {
						// A chart that disappeared leaves its golden behind.
						files, _ := filepath.Glob(filepath.Join(dir, "charts", "*.svg"))
						if got, want := len(charts), len(files); got != want {
							t.Errorf("page has %d charts, golden has %d (%v)", got, want, files)
						}
					}
				})
			}
		})
	}
}

// TestDeterministic renders twice: goldens are only useful when output
// does not depend on map order or time.
func TestDeterministic(t *testing.T) {
	for _, f := range Formats {
		a, b := renderT(t, f, failingModel(t)), renderT(t, f, failingModel(t))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two renders differ:\n%s", f, firstDiff(string(a), string(b)))
		}
	}
}
