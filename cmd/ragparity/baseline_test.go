package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/replicate"
)

// TestBaselineReleaseFloors: with the offline embedder on the SciFact
// subset and the default thresholds, `baseline create --goldset` refuses
// the release (it misses the quality floors) and names the floors; with
// --accept-below-floor it records and signs the reason.
func TestBaselineReleaseFloors(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join("..", "..", "testdata", "scifact")
	var ih string
	e, err := gate.OpenEmbedder("glove")
	if err != nil {
		t.Fatal(err)
	}
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"schema_rev": "s1", "model_tag": e.ModelTag(), "secrets_rev": "k1", "index_hash": ih})
	}))
	t.Cleanup(health.Close)
	cfg := writeConfig(t, fmt.Sprintf("release: r-floors\nembedder: glove\ncache_dir: %q\ngate:\n  signing_key: %q\nregions:\n  - name: a\n    vectors: %q\n    health: %q\n    dedupe_kv: %q\n",
		filepath.Join(dir, "cache"), writeSigningKey(t, dir), "embedded://"+filepath.Join(dir, "vectors")+"?collection=chunks", health.URL, "file://"+filepath.Join(dir, "fence.db")))
	code, out, errOut := runCLI(t, "rebuild", "--config", cfg, "--source", filepath.Join(corpus, "corpus.jsonl"), "--promote", "--json")
	if code != 0 {
		t.Fatalf("rebuild: %d %s%s", code, out, errOut)
	}
	var rb replicate.Result
	json.Unmarshal([]byte(out), &rb)
	ih = rb.IndexHash["a"]

	code, _, errOut = runCLI(t, "baseline", "create", "--config", cfg, "--from", "a", "--goldset", corpus)
	if code != ExitDiffer || !strings.Contains(errOut, "below the quality floors") || !strings.Contains(errOut, "--accept-below-floor") {
		t.Fatalf("below the floors: exit %d, want 1 naming the floors: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "baseline", "show", "--config", cfg); code != ExitUnknown || !strings.Contains(errOut, "no baseline") {
		t.Errorf("a refused baseline was stored: exit %d %s", code, errOut)
	}
	reason := "offline embedder; parity only"
	if code, out, errOut := runCLI(t, "baseline", "create", "--config", cfg, "--from", "a", "--goldset", corpus, "--accept-below-floor", reason); code != 0 {
		t.Fatalf("accepted below the floors: exit %d %s%s", code, out, errOut)
	}
	_, out, _ = runCLI(t, "baseline", "show", "--config", cfg, "--json")
	var b gate.Baseline
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		t.Fatal(err)
	}
	if b.BelowFloor == nil || b.BelowFloor.Reason != reason || len(b.BelowFloor.Missed) == 0 || b.Signature == "" || b.Probes == nil {
		t.Errorf("baseline below_floor %+v, signed %v, probes %v", b.BelowFloor, b.Signature != "", b.Probes != nil)
	}
}

// TestRebuildPromoteMakesBaseline: `rebuild --promote --baseline` takes the
// release baseline from the region it promoted (its health endpoint reports
// the INDEX_HASH it serves, as an application computing it from its store
// would), so verify then decides that region against it.
func TestRebuildPromoteMakesBaseline(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join("..", "..", "testdata", "scifact")
	var cfgPath string
	e, err := gate.OpenEmbedder("glove")
	if err != nil {
		t.Fatal(err)
	}
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := config.Load(cfgPath)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sc := gate.ScanRegions(r.Context(), c, []*config.Region{&c.Regions[0]}, gate.ScanOptions{})
		if sc[0].Err != nil {
			http.Error(w, sc[0].Err.Error(), 503)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"schema_rev": "s1", "model_tag": e.ModelTag(), "secrets_rev": "k1", "index_hash": sc[0].Scan.IndexHash().Hex()})
	}))
	t.Cleanup(health.Close)
	cfgPath = writeConfig(t, fmt.Sprintf("release: r-rb\nembedder: glove\ncache_dir: %q\ngate:\n  signing_key: %q\n  skip: [blobs, probes]\nregions:\n  - name: a\n    vectors: %q\n    health: %q\n    dedupe_kv: %q\n",
		filepath.Join(dir, "cache"), writeSigningKey(t, dir), "embedded://"+filepath.Join(dir, "vectors")+"?collection=chunks", health.URL, "file://"+filepath.Join(dir, "fence.db")))
	if code, _, errOut := runCLI(t, "rebuild", "--config", cfgPath, "--source", filepath.Join(corpus, "corpus.jsonl"), "--baseline"); code != ExitUnknown || !strings.Contains(errOut, "needs --promote") {
		t.Errorf("--baseline without --promote: exit %d %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "rebuild", "--config", cfgPath, "--source", filepath.Join(corpus, "corpus.jsonl"), "--promote", "--baseline")
	if code != 0 || !strings.Contains(out, "baseline b") {
		t.Fatalf("rebuild --promote --baseline: exit %d\n%s%s", code, out, errOut)
	}
	_, out, _ = runCLI(t, "baseline", "show", "--config", cfgPath, "--json")
	var b gate.Baseline
	if err := json.Unmarshal([]byte(out), &b); err != nil || b.From != "a" || b.Index.Points == 0 {
		t.Fatalf("stored baseline %+v, %v", b, err)
	}
	code, out, errOut = runCLI(t, "verify", "--config", cfgPath, "--json")
	var v gate.Verdict
	json.Unmarshal([]byte(out), &v)
	if code != ExitEqual || v.BaselineID != b.ID {
		t.Errorf("verify against the rebuild's baseline: exit %d, baseline %q (want %s)\n%s", code, v.BaselineID, b.ID, errOut)
	}
}
