package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/gate"
)

// storedVerdict writes a signed verdict, as 'verify --json' prints it, and
// returns its path.
func storedVerdict(t *testing.T) string {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	v := &gate.Verdict{
		ID: "v20250314T090000.000Z-00000001", Release: "r1", CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		Decision: gate.Fail,
		Regions: []gate.RegionVerdict{
			{Name: "a", Status: gate.Pass, Admit: true, IndexHash: "aaaa"},
			{Name: "b", Status: gate.Fail, Admit: false, IndexHash: "bbbb", Reasons: []string{"failed index_hash"}},
		},
		Checks: []gate.Check{
			{Name: gate.CheckIndexHash, Status: gate.Fail, Figure: "1 of 2 regions agree (INDEX_HASH aaaa)", Threshold: "every region's INDEX_HASH equal",
				Evidence: []string{"b: id doc-00042 differs in text"}, FailedRegions: []string{"b"}},
			{Name: gate.CheckBlobs, Status: gate.Skipped, Figure: "skipped by gate.skip", Evidence: []string{}},
		},
		InputsDigest: "00",
	}
	if err := v.Sign(key); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "verdict.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReportCommand(t *testing.T) {
	verdict := storedVerdict(t)

	t.Run("AllFormats", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "reports")
		code, stdout, stderr := runCLI(t, "report", "--verdict", verdict, "--out", out)
		if code != 0 {
			t.Fatalf("exit %d, want 0; stderr: %s", code, stderr)
		}
		for _, name := range []string{"report.json", "report.md", "report.html", "junit.xml"} {
			p := filepath.Join(out, name)
			if !strings.Contains(stdout, p+"\n") {
				t.Errorf("stdout does not list %s:\n%s", p, stdout)
			}
			if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
				t.Errorf("%s: %v", p, err)
			}
		}
		md, _ := os.ReadFile(filepath.Join(out, "report.md"))
		for _, want := range []string{"## ❌ ragparity gate: FAIL", "| b | ❌ fail | ⛔ block |", "b: id doc-00042 differs in text"} {
			if !strings.Contains(string(md), want) {
				t.Errorf("report.md lacks %q:\n%s", want, md)
			}
		}

		// A report.json renders again, to the same Markdown.
		again := filepath.Join(t.TempDir(), "again")
		if code, _, stderr := runCLI(t, "report", "--verdict", filepath.Join(out, "report.json"), "--out", again, "--format", "md"); code != 0 {
			t.Fatalf("re-rendering report.json: exit %d; stderr: %s", code, stderr)
		}
		md2, _ := os.ReadFile(filepath.Join(again, "report.md"))
		if string(md2) != string(md) {
			t.Errorf("report.md from report.json differs from the one from the verdict")
		}
	})

	t.Run("SomeFormats", func(t *testing.T) {
		out := t.TempDir()
		code, _, stderr := runCLI(t, "report", "--verdict", verdict, "--out", out, "--format", "html,junit")
		if code != 0 {
			t.Fatalf("exit %d; stderr: %s", code, stderr)
		}
		ents, _ := os.ReadDir(out)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if got, want := strings.Join(names, ","), "junit.xml,report.html"; got != want {
			t.Errorf("wrote %s, want %s", got, want)
		}
	})

	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"NoFlags", nil, "report needs --verdict FILE and --out DIR"},
		{"NoOut", []string{"--verdict", verdict}, "report needs --verdict FILE and --out DIR"},
		{"MissingFile", []string{"--verdict", filepath.Join(dir, "nope.json"), "--out", dir}, "no such file"},
		{"NotJSON", []string{"--verdict", write("page.html", "<html></html>"), "--out", dir}, "not a ragparity verdict"},
		{"EmptyFile", []string{"--verdict", write("empty.json", ""), "--out", dir}, "the file is empty"},
		{"NotAVerdict", []string{"--verdict", write("cfg.json", `{"release": "r1"}`), "--out", dir}, `not a ragparity verdict: no "id"`},
		{"BadDecision", []string{"--verdict", write("bad.json", `{"id": "v1", "decision": "maybe", "checks": [{"name": "x", "status": "pass"}]}`), "--out", dir}, `"decision" is "maybe"`},
		{"BadFormat", []string{"--verdict", verdict, "--out", dir, "--format", "pdf"}, `unknown report format "pdf"`},
		{"UnexpectedArg", []string{"--verdict", verdict, "--out", dir, "extra"}, `unexpected argument "extra"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, append([]string{"report"}, tc.args...)...)
			if code != ExitUnknown {
				t.Errorf("exit %d, want %d", code, ExitUnknown)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr = %q, want it to mention %q", stderr, tc.want)
			}
		})
	}

	t.Run("Help", func(t *testing.T) {
		code, _, stderr := runCLI(t, "report", "-h")
		if code != 0 || !strings.Contains(stderr, "Usage: ragparity report --verdict FILE.json --out DIR") {
			t.Errorf("exit %d, help:\n%s", code, stderr)
		}
	})
}
