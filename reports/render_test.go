package reports

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ragparity/ragparity/gate"
)

func nan() float64 { return math.NaN() }

// withEvidence returns the failing fixture with n evidence lines of size
// characters on each of its failing checks.
func withEvidence(t *testing.T, n, size int) *Model {
	m := failingModel(t)
	for i := range m.Verdict.Checks {
		c := &m.Verdict.Checks[i]
		if c.Status != gate.Fail {
			continue
		}
		c.Evidence = nil
		for j := range n {
			line := fmt.Sprintf("ap: id doc-%06d differs in text ", j)
			c.Evidence = append(c.Evidence, line+strings.Repeat("ж", max(0, size-len(line))))
		}
	}
	return m
}

func TestMarkdown(t *testing.T) {
	t.Run("UnderLimitWithHugeEvidence", func(t *testing.T) {
		md := string(renderT(t, FormatMarkdown, withEvidence(t, 20000, 400)))
		if got := utf8.RuneCountInString(md); got >= MarkdownLimit {
			t.Fatalf("comment is %d characters, want < %d", got, MarkdownLimit)
		}
		for _, want := range []string{"| index\\_hash | ❌ fail |", "| ap | ❌ fail | ⛔ block |", "more for index\\_hash", "</details>"} {
			if !strings.Contains(md, want) {
				t.Errorf("comment lacks %q", want)
			}
		}
	})

	t.Run("CutsAtBudget", func(t *testing.T) {
		// Lines long enough that not every check's 25 fit in the budget.
		m := withEvidence(t, 60, 290)
		md := markdown(m, 12000)
		if got := utf8.RuneCountInString(md); got >= 12000 {
			t.Fatalf("comment is %d characters, want < 12000", got)
		}
		if !strings.Contains(md, "more evidence lines not shown (comment size limit)") {
			t.Errorf("cut comment has no note saying so:\n%s", md)
		}
		if n := strings.Count(md, "```"); n%2 != 0 {
			t.Errorf("%d code fences: one is left open", n)
		}
	})

	t.Run("UnderLimitWithThousandsOfRegions", func(t *testing.T) {
		m := failingModel(t)
		for i := range 5000 {
			m.Verdict.Regions = append(m.Verdict.Regions, gate.RegionVerdict{Name: fmt.Sprintf("region-%04d", i), Admit: true})
		}
		md := string(renderT(t, FormatMarkdown, m))
		if got := utf8.RuneCountInString(md); got >= MarkdownLimit {
			t.Fatalf("comment is %d characters, want < %d", got, MarkdownLimit)
		}
		if !strings.Contains(md, "Report cut to fit a pull-request comment") {
			t.Errorf("cut comment has no note saying so")
		}
	})

	t.Run("EscapesTableCells", func(t *testing.T) {
		m := failingModel(t)
		m.Verdict.Checks[2].Figure = "a | b\n<b>c</b>"
		md := string(renderT(t, FormatMarkdown, m))
		var row string
		for _, l := range strings.Split(md, "\n") {
			if strings.HasPrefix(l, "| health |") {
				row = l
			}
		}
		// 5 unescaped pipes: the row's 4 cells.
		if got := len(regexp.MustCompile(`(^|[^\\])\|`).FindAllString(row, -1)); got != 5 {
			t.Errorf("health row has %d cell separators, want 5: %q", got, row)
		}
		if strings.Contains(row, "<b>") {
			t.Errorf("HTML in a figure is not escaped: %q", row)
		}
	})

	t.Run("FenceLongerThanBackticks", func(t *testing.T) {
		m := failingModel(t)
		m.Verdict.Checks[0].Evidence = []string{"ap: id ```weird``` differs"}
		md := string(renderT(t, FormatMarkdown, m))
		if !strings.Contains(md, "````text\nap: id ```weird``` differs\n````") {
			t.Errorf("evidence with a fence inside is not fenced safely:\n%s", md)
		}
	})
}

func TestJUnit(t *testing.T) {
	m := failingModel(t)
	m.Verdict.Checks[2] = gate.Check{Name: gate.CheckHealth, Status: gate.Inconclusive, Error: "us: health URL did not answer", Evidence: []string{"ctl \x00\x1b char ]]> end"}}
	out := renderT(t, FormatJUnit, m)
	var doc struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   int    `xml:"errors,attr"`
			Skipped  int    `xml:"skipped,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Body    string `xml:",chardata"`
				} `xml:"failure"`
				Error *struct {
					Message string `xml:"message,attr"`
					Body    string `xml:",chardata"`
				} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("JUnit output is not XML: %v\n%s", err, out)
	}
	if len(doc.Suites) != 1 {
		t.Fatalf("%d test suites, want 1", len(doc.Suites))
	}
	s := doc.Suites[0]
	if s.Name != JUnitSuite || s.Tests != 5 || s.Failures != 3 || s.Errors != 1 || s.Skipped != 1 {
		t.Errorf("suite %q tests=%d failures=%d errors=%d skipped=%d, want %q 5 3 1 1", s.Name, s.Tests, s.Failures, s.Errors, s.Skipped, JUnitSuite)
	}
	want := map[string]string{"index_hash": "failure", "blobs": "failure", "health": "error", "probes": "failure", "dedupe_kv": "skipped"}
	for _, c := range s.Cases {
		got := "pass"
		switch {
		case c.Failure != nil:
			got = "failure"
			if c.Name == "index_hash" && (!strings.Contains(c.Failure.Body, "ap: id doc-00042 differs in text") || !strings.Contains(c.Failure.Message, "threshold: every region's INDEX_HASH equal")) {
				t.Errorf("index_hash failure lacks its evidence or threshold: %+v", c.Failure)
			}
		case c.Error != nil:
			got = "error"
			if c.Error.Message != "us: health URL did not answer" || !strings.Contains(c.Error.Body, "ctl \uFFFD\uFFFD char ]]> end") {
				t.Errorf("health error = %+v", c.Error)
			}
		case c.Skipped != nil:
			got = "skipped"
		}
		if got != want[c.Name] {
			t.Errorf("test case %s is %s, want %s", c.Name, got, want[c.Name])
		}
		delete(want, c.Name)
	}
	if len(want) > 0 {
		t.Errorf("no test case for %v", want)
	}
}

var (
	externalRef = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|\bsrc\s*=|@import|url\(`)
	hrefAttr    = regexp.MustCompile(`href="([^"]*)"`)
)

func TestHTML(t *testing.T) {
	t.Run("SelfContained", func(t *testing.T) {
		for _, fx := range fixtures {
			page := string(renderT(t, FormatHTML, fx.model(t)))
			for _, bad := range []string{"http://", "https://", "<script", "<?xml", "xmlns", "<link rel=\"stylesheet\""} {
				if strings.Contains(page, bad) {
					t.Errorf("%s: page contains %q", fx.name, bad)
				}
			}
			if m := externalRef.FindString(page); m != "" {
				t.Errorf("%s: page has an external reference %q", fx.name, m)
			}
			for _, h := range hrefAttr.FindAllStringSubmatch(page, -1) {
				if !strings.HasPrefix(h[1], "#") && h[1] != "data:," {
					t.Errorf("%s: link to %q leaves the page", fx.name, h[1])
				}
			}
			if !strings.Contains(page, `content="default-src 'none';`) {
				t.Errorf("%s: page has no Content-Security-Policy forbidding loads", fx.name)
			}
		}
	})

	t.Run("NotMeasuredNotes", func(t *testing.T) {
		page := string(renderT(t, FormatHTML, inconclusiveModel(t)))
		for _, want := range []string{"were not measured in this verdict", "No Merkle bucket map in this verdict", "No blob diff in this verdict"} {
			if !strings.Contains(page, want) {
				t.Errorf("page without detail lacks the note %q", want)
			}
		}
		if n := strings.Count(page, "<svg"); n != 1 {
			t.Errorf("page without detail has %d charts, want 1 (checks)", n)
		}
	})

	t.Run("EscapesInput", func(t *testing.T) {
		m := failingModel(t)
		m.Verdict.Checks[0].Evidence = []string{`<img src=x onerror="alert(1)">`}
		m.Verdict.Regions[2].Name = `ap"><b>`
		m.BucketMaps[0].To = `ap"><b>`
		page := string(renderT(t, FormatHTML, m))
		if strings.Contains(page, "<img") || strings.Contains(page, `"><b>`) {
			t.Errorf("input is not escaped in the page")
		}
	})

	t.Run("EvidenceCut", func(t *testing.T) {
		page := string(renderT(t, FormatHTML, withEvidence(t, htmlEvidencePerCheck+7, 40)))
		if !strings.Contains(page, "… and 7 more in the verdict JSON.") {
			t.Errorf("page does not say that evidence was cut")
		}
	})

	t.Run("ManyBuckets", func(t *testing.T) {
		m := failingModel(t)
		m.BucketMaps[0].Buckets = 65536
		for i := 0; i < 65536; i += 2 {
			m.BucketMaps[0].Differing = append(m.BucketMaps[0].Differing, i)
		}
		m.BucketMaps[0].Differing = append(m.BucketMaps[0].Differing, 70000)
		page := string(renderT(t, FormatHTML, m))
		if !strings.Contains(page, "differing buckets not drawn") {
			t.Errorf("bucket map drawn with %d of %d cells and no note", maxBucketCells, len(m.BucketMaps[0].Differing))
		}
		if len(page) > 20<<20 {
			t.Errorf("page is %d MB", len(page)>>20)
		}
	})
}

func TestWrite(t *testing.T) {
	t.Run("WriteAll", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		paths, err := WriteAll(dir, failingModel(t))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range paths {
			names = append(names, filepath.Base(p))
			if fi, err := os.Stat(p); err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o644 {
				t.Errorf("%s: %v %v", p, fi, err)
			}
		}
		if got, want := strings.Join(names, ","), "report.json,report.md,report.html,junit.xml"; got != want {
			t.Errorf("wrote %s, want %s", got, want)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 4 {
			t.Errorf("dir holds %d files, want 4 (no temp files left)", len(ents))
		}
		// Overwrite in place.
		if _, err := WriteAll(dir, inconclusiveModel(t)); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "report.json"))
		if !bytes.Contains(b, []byte(`"decision": "inconclusive"`)) {
			t.Errorf("report.json not replaced")
		}
	})

	t.Run("RenderErrorWritesNothing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		m := failingModel(t)
		m.Probes.Questions[0].Drift = math.Inf(1)
		if _, err := WriteAll(dir, m); err == nil {
			t.Fatal("WriteAll accepted an infinite drift")
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("WriteAll created %s although rendering failed", dir)
		}
	})

	t.Run("WriteFileByExtension", func(t *testing.T) {
		dir := t.TempDir()
		for ext, want := range map[string]string{".html": "<!DOCTYPE html>", ".md": "## 🟠", ".json": `"decision": "degraded"`, ".xml": "<testsuites"} {
			p := filepath.Join(dir, "r"+ext)
			if err := WriteFile(p, failingModel(t)); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(p); !bytes.Contains(b, []byte(want)) {
				t.Errorf("%s does not contain %q", p, want)
			}
		}
		if err := WriteFile(filepath.Join(dir, "r.pdf"), failingModel(t)); err == nil {
			t.Error("WriteFile accepted a .pdf")
		}
	})

	t.Run("ParseFormats", func(t *testing.T) {
		for in, want := range map[string]string{
			"html,md": "html,md", "all": "json,md,html,junit", " JUnit , xml,markdown ": "junit,md", "json,all": "json,md,html,junit",
		} {
			fs, err := ParseFormats(in)
			var got []string
			for _, f := range fs {
				got = append(got, string(f))
			}
			if err != nil || strings.Join(got, ",") != want {
				t.Errorf("ParseFormats(%q) = %v, %v; want %s", in, got, err, want)
			}
		}
		for _, in := range []string{"pdf", "", ","} {
			if _, err := ParseFormats(in); err == nil {
				t.Errorf("ParseFormats(%q) accepted", in)
			}
		}
	})

	t.Run("NoVerdict", func(t *testing.T) {
		for _, f := range Formats {
			if err := Render(&bytes.Buffer{}, f, &Model{}); err == nil {
				t.Errorf("%s rendered a model without a verdict", f)
			}
		}
	})
}
