package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
	"github.com/ragparity/ragparity/verifier"
)

// runCLI runs the command in-process and returns exit code, stdout, stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "regions.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// embeddedRegion loads pts into a fresh embedded store and returns its URL.
func embeddedRegion(t *testing.T, pts []parity.Point) string {
	t.Helper()
	u := fmt.Sprintf("embedded://%s?collection=chunks", t.TempDir())
	s, err := adapters.OpenVector(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	vectortest.Load(t, s, vectortest.Spec(parity.IDString), pts)
	return u
}

func TestHashAndDiffExitCodes(t *testing.T) {
	pts := vectortest.Points(parity.IDString, 400, 7)
	a := embeddedRegion(t, pts)
	b := embeddedRegion(t, pts)
	changed := vectortest.Points(parity.IDString, 400, 7)
	changed[10].Payload = []byte(`{"doc":"other"}`)
	changed[20].Text = "replaced text"
	changed = append(changed[:30], changed[31:]...) // doc-00030 missing
	c := embeddedRegion(t, changed)
	cfg := writeConfig(t, fmt.Sprintf(`release: r1
settings:
  model_tag: test-model
regions:
  - name: a
    vectors: %q
  - name: b
    vectors: %q
  - name: c
    vectors: %q
`, a, b, c))

	t.Run("HashEqual", func(t *testing.T) {
		code, out, errOut := runCLI(t, "hash", "--config", cfg, "--region", "a,b", "--json")
		if code != ExitEqual {
			t.Fatalf("exit %d, want 0; stderr: %s", code, errOut)
		}
		var h gate.HashJSON
		if err := json.Unmarshal([]byte(out), &h); err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%s", err, out)
		}
		if !h.Equal || len(h.Regions) != 2 || h.Regions[0].Points != 400 || h.Release != "r1" {
			t.Fatalf("hash JSON = %+v", h)
		}
		r := h.Regions[0]
		if len(r.IndexHash) != 64 || len(r.SettingsDigest) != 64 || len(r.ContentRoot) != 64 || r.ContentRootTolerant != "" {
			t.Errorf("digests not 64 hex digits, or a tolerant root nobody asked for: %+v", r)
		}
		_, tout, _ := runCLI(t, "hash", "--config", cfg, "--region", "a,b", "--json", "--tolerant")
		var ht gate.HashJSON
		if err := json.Unmarshal([]byte(tout), &ht); err != nil || len(ht.Regions) != 2 || len(ht.Regions[0].ContentRootTolerant) != 64 || ht.Regions[0].IndexHash != r.IndexHash {
			t.Errorf("hash --tolerant: want content_root_tolerant and the same INDEX_HASH %s: %v %s", r.IndexHash, err, tout)
		}
		if r.Settings["model_tag"] != "test-model" {
			t.Errorf("declared setting missing from settings: %v", r.Settings)
		}
		if len(r.EngineDigest) != 64 || r.EngineDigest == r.SettingsDigest || r.SettingsEngine["index.type"] == nil {
			t.Errorf("engine_digest %q, settings_engine %v: want a digest of its own over the engine settings (index.type ...)", r.EngineDigest, r.SettingsEngine)
		}
		if _, ok := r.Settings["index.type"]; ok {
			t.Errorf("index.type is a semantic (hashed) setting: %v", r.Settings)
		}
		_, text, _ := runCLI(t, "hash", "--config", cfg, "--region", "a,b")
		if !strings.Contains(text, "  engine_digest          "+r.EngineDigest) || !strings.Contains(text, "  engine settings        index.type=") {
			t.Errorf("text output lacks the engine digest and settings:\n%s", text)
		}
	})
	t.Run("HashDiffer", func(t *testing.T) {
		code, out, _ := runCLI(t, "hash", "--config", cfg)
		if code != ExitDiffer {
			t.Fatalf("exit %d, want 1\n%s", code, out)
		}
		if !strings.Contains(out, "a vs c: content differ") {
			t.Errorf("text output does not say content differs:\n%s", out)
		}
	})
	t.Run("DiffNamesIDsAndFields", func(t *testing.T) {
		code, out, errOut := runCLI(t, "diff", "--config", cfg, "--from", "a", "--to", "c", "--json")
		if code != ExitDiffer {
			t.Fatalf("exit %d, want 1; stderr %s", code, errOut)
		}
		var d verifier.DiffResult
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("bad JSON: %v\n%s", err, out)
		}
		if got, want := fmt.Sprint(d.OnlyInFrom), "[doc-00030]"; got != want {
			t.Errorf("only_in_from = %s, want %s", got, want)
		}
		if len(d.OnlyInTo) != 0 {
			t.Errorf("only_in_to = %v, want none", d.OnlyInTo)
		}
		if got, want := fmt.Sprint(d.Changed), "[{doc-00010 [payload] <nil>} {doc-00020 [text] <nil>}]"; got != want {
			t.Errorf("changed = %s, want %s", got, want)
		}
		if d.BucketsDiffering != 3 || d.PointsExamined > 10 {
			t.Errorf("buckets_differing = %d, points_examined = %d: want 3 buckets and only their points", d.BucketsDiffering, d.PointsExamined)
		}
	})
	t.Run("DiffEqual", func(t *testing.T) {
		code, out, _ := runCLI(t, "diff", "--config", cfg, "--from", "a", "--to", "b")
		if code != ExitEqual || !strings.Contains(out, "EQUAL") {
			t.Fatalf("exit %d, want 0\n%s", code, out)
		}
	})
	t.Run("ShardsMergeToWholeRun", func(t *testing.T) {
		_, whole, _ := runCLI(t, "hash", "--config", cfg, "--json")
		var w gate.HashJSON
		json.Unmarshal([]byte(whole), &w)
		dir := t.TempDir()
		var files []string
		for i := 0; i < 3; i++ {
			code, out, errOut := runCLI(t, "hash", "--config", cfg, "--shard", fmt.Sprintf("%d/3", i), "--json")
			if code != ExitEqual {
				t.Fatalf("shard %d: exit %d: %s", i, code, errOut)
			}
			f := filepath.Join(dir, fmt.Sprintf("s%d.json", i))
			os.WriteFile(f, []byte(out), 0o600)
			files = append(files, f)
		}
		code, out, errOut := runCLI(t, append([]string{"merge", "--json"}, files...)...)
		if code != ExitDiffer {
			t.Fatalf("merge exit %d, want 1 (region c differs): %s", code, errOut)
		}
		var m gate.HashJSON
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatal(err)
		}
		for i := range w.Regions {
			if m.Regions[i].IndexHash != w.Regions[i].IndexHash || m.Regions[i].Points != w.Regions[i].Points {
				t.Errorf("region %s: merged %s (%d points), whole run %s (%d points)", w.Regions[i].Name, m.Regions[i].IndexHash, m.Regions[i].Points, w.Regions[i].IndexHash, w.Regions[i].Points)
			}
		}
		code, _, errOut = runCLI(t, "merge", files[0], files[2])
		if code != ExitUnknown || !strings.Contains(errOut, "missing shards [1] of 3") {
			t.Errorf("merge with a missing shard: exit %d, stderr %q", code, errOut)
		}
	})
}

func TestBadInputExits2(t *testing.T) {
	cases := []struct {
		name string
		args func(t *testing.T) []string
		want string
	}{
		{"UnknownKey", func(t *testing.T) []string {
			return []string{"hash", "--config", writeConfig(t, "release: x\nregions:\n  - name: a\n    vector: embedded:///tmp/x\n")}
		}, `regions.yaml:4: unknown field "vector"`},
		{"MissingConfig", func(t *testing.T) []string { return []string{"hash", "--config", "/nonexistent/r.yaml"} }, "/nonexistent/r.yaml"},
		{"MissingCollection", func(t *testing.T) []string {
			return []string{"hash", "--config", writeConfig(t, fmt.Sprintf("regions:\n  - name: east\n    vectors: \"embedded://%s?collection=nope\"\n", t.TempDir()))}
		}, "region east: embedded: collection \"nope\""},
		{"UnknownScheme", func(t *testing.T) []string {
			return []string{"hash", "--config", writeConfig(t, "regions:\n  - name: east\n    vectors: \"mongo://h/x\"\n")}
		}, `unknown scheme "mongo"`},
		{"BadShard", func(t *testing.T) []string { return []string{"hash", "--shard", "3/3"} }, "want i/N"},
		{"DiffSameRegion", func(t *testing.T) []string { return []string{"diff", "--from", "a", "--to", "a"} }, "same region"},
		{"UnknownCommand", func(t *testing.T) []string { return []string{"hsah"} }, `unknown command "hsah"`},
		{"UnknownFlag", func(t *testing.T) []string { return []string{"hash", "--jsn"} }, "flag provided but not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args(t)...)
			if code != ExitUnknown {
				t.Fatalf("exit %d, want 2; stdout %s", code, out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q does not contain %q", errOut, tc.want)
			}
		})
	}
}

// TestStoreStopsAnswering: a store that stops answering mid-scan makes hash
// exit 2 within the configured timeout, naming the region.
func TestStoreStopsAnswering(t *testing.T) {
	table := fmt.Sprintf("rp_cli_%d", time.Now().UnixNano())
	s, base := openPGTable(t, table)
	vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 3000, 1))
	stalled := *base
	stalled.Host = vectortest.StallProxy(t, base.Host, 64<<10)
	cfg := writeConfig(t, fmt.Sprintf("timeout: 1s\nregions:\n  - name: healthy\n    vectors: %q\n  - name: eu-stalled\n    vectors: %q\n", base.String(), stalled.String()))
	start := time.Now()
	code, out, errOut := runCLI(t, "hash", "--config", cfg, "--json")
	el := time.Since(start)
	if code != ExitUnknown {
		t.Fatalf("exit %d, want 2\n%s", code, out)
	}
	if el > 4*time.Second {
		t.Errorf("took %v with a 1s timeout", el)
	}
	if !strings.Contains(errOut, "region eu-stalled") || !strings.Contains(errOut, "timeout") {
		t.Errorf("stderr does not name the region and the timeout: %s", errOut)
	}
	var h gate.HashJSON
	if err := json.Unmarshal([]byte(out), &h); err != nil || h.Equal || h.Error == "" {
		t.Errorf("JSON on error = %+v (%v), want equal=false with an error", h, err)
	}
}
