package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/replicate"
)

func TestReplicateBlobs(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for k, v := range map[string]string{"docs/a.txt": "alpha", "docs/b.txt": "beta", "model/w.bin": "weights"} {
		os.MkdirAll(filepath.Join(a, filepath.Dir(k)), 0o755)
		os.WriteFile(filepath.Join(a, k), []byte(v), 0o644)
	}
	os.MkdirAll(filepath.Join(b, "docs"), 0o755)
	os.WriteFile(filepath.Join(b, "docs/a.txt"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(b, "docs/b.txt"), []byte("betA"), 0o644)   // same size, other bytes
	os.WriteFile(filepath.Join(b, "extra.txt"), []byte("keep me"), 0o644) // only in b
	cfg := writeConfig(t, fmt.Sprintf("regions:\n  - name: a\n    blobs: \"file://%s\"\n  - name: b\n    blobs: \"file://%s\"\n", a, b))

	code, out, errOut := runCLI(t, "replicate", "blobs", "--config", cfg, "--from", "a", "--to", "b", "--json")
	if code != ExitEqual {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res replicate.BlobCopyResult
	json.Unmarshal([]byte(out), &res)
	if got, want := strings.Join(res.Copied, ","), "docs/b.txt,model/w.bin"; got != want || !res.Verified || len(res.Deleted) != 0 {
		t.Errorf("result %+v, want copied %s, verified, nothing deleted", res, want)
	}
	if b, _ := os.ReadFile(filepath.Join(b, "docs/b.txt")); string(b) != "beta" {
		t.Errorf("docs/b.txt = %q after replication", b)
	}
	if _, err := os.Stat(filepath.Join(b, "extra.txt")); err != nil {
		t.Errorf("extra.txt deleted without --delete")
	}
	code, out, _ = runCLI(t, "replicate", "blobs", "--config", cfg, "--from", "a", "--to", "b", "--delete", "--json")
	json.Unmarshal([]byte(out), &res)
	if code != ExitEqual || len(res.Copied) != 0 || strings.Join(res.Deleted, ",") != "extra.txt" {
		t.Errorf("with --delete: exit %d, %+v", code, res)
	}
	code, _, _ = runCLI(t, "manifest", "--config", cfg)
	if code != ExitEqual {
		t.Errorf("manifest after replication: exit %d, want 0 (equal)", code)
	}
	if code, _, errOut := runCLI(t, "replicate", "blobs", "--config", cfg, "--from", "a", "--to", "a"); code != ExitUnknown || !strings.Contains(errOut, "two different regions") {
		t.Errorf("same region: exit %d %s", code, errOut)
	}
}
