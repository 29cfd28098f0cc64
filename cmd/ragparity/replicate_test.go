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
	if code != ExitDiffer { // extra.txt kept: not equal
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res replicate.BlobCopyResult
	json.Unmarshal([]byte(out), &res)
	if got, want := strings.Join(res.Copied, ","), "docs/b.txt,model/w.bin"; got != want || !res.Verified || len(res.Deleted) != 0 || res.Equal || strings.Join(res.Extra, ",") != "extra.txt" {
		t.Errorf("result %+v, want copied %s, verified, nothing deleted", res, want)
	}
	if b, _ := os.ReadFile(filepath.Join(b, "docs/b.txt")); string(b) != "beta" {
		t.Errorf("docs/b.txt = %q after replication", b)
	}
	if _, err := os.Stat(filepath.Join(b, "extra.txt")); err != nil {
		t.Errorf("extra.txt deleted without --delete")
	}
	code, out, _ = runCLI(t, "replicate", "blobs", "--config", cfg, "--from", "a", "--to", "b", "--delete", "--json")
	res = replicate.BlobCopyResult{}
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

func writeBlobs(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for k, v := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(k)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func blobsConfig(t *testing.T, a, b string) string {
	return writeConfig(t, fmt.Sprintf("regions:\n  - name: a\n    blobs: \"file://%s\"\n  - name: b\n    blobs: \"file://%s\"\n", a, b))
}

// Without --delete, extra objects on the target are not "verified equal".
func TestReplicateBlobsExtraWithoutDeleteExits1(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeBlobs(t, a, map[string]string{"x.txt": "x"})
	writeBlobs(t, b, map[string]string{"extra1.txt": "e", "extra2.txt": "f"})
	code, out, errOut := runCLI(t, "replicate", "blobs", "--config", blobsConfig(t, a, b), "--from", "a", "--to", "b")
	if code != ExitDiffer {
		t.Fatalf("exit %d, want %d; %s %s", code, ExitDiffer, out, errOut)
	}
	if all := out + errOut; !strings.Contains(all, "copied 1; target still has 2 extra objects (pass --delete)") || strings.Contains(all, "verified equal") {
		t.Errorf("output %q", all)
	}
}

// A source nested in the destination (or the other way round) is refused:
// --delete would delete the source's own objects.
func TestReplicateBlobsRefusesOverlap(t *testing.T) {
	for _, tc := range []struct{ name, src, dst string }{{"SourceInsideDestination", "d/src", "d"}, {"DestinationInsideSource", "d", "d/dst"}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			src, dst := filepath.Join(root, tc.src), filepath.Join(root, tc.dst)
			writeBlobs(t, src, map[string]string{"a.txt": "alpha"})
			writeBlobs(t, dst, map[string]string{"other.txt": "o"})
			code, _, errOut := runCLI(t, "replicate", "blobs", "--config", blobsConfig(t, src, dst), "--from", "a", "--to", "b", "--delete")
			if code != ExitUnknown || !strings.Contains(errOut, "overlap") {
				t.Fatalf("exit %d %q, want 2 naming the overlap", code, errOut)
			}
			if _, err := os.Stat(filepath.Join(src, "a.txt")); err != nil {
				t.Errorf("the source's object is gone: %v", err)
			}
		})
	}
}

// --delete with an empty source listing would empty the destination.
func TestReplicateBlobsDeleteWithEmptySource(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeBlobs(t, b, map[string]string{"keep.txt": "k"})
	cfg := blobsConfig(t, a, b)
	code, _, errOut := runCLI(t, "replicate", "blobs", "--config", cfg, "--from", "a", "--to", "b", "--delete")
	if code != ExitUnknown || !strings.Contains(errOut, "--allow-empty-source") {
		t.Fatalf("exit %d %q, want 2 naming --allow-empty-source", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(b, "keep.txt")); err != nil {
		t.Fatalf("destination object deleted: %v", err)
	}
	code, _, errOut = runCLI(t, "replicate", "blobs", "--config", cfg, "--from", "a", "--to", "b", "--delete", "--allow-empty-source")
	if code != ExitEqual {
		t.Fatalf("with --allow-empty-source: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(b, "keep.txt")); err == nil {
		t.Errorf("keep.txt still there with --allow-empty-source --delete")
	}
}

// A symlinked folder in a file:// destination is never followed.
func TestReplicateBlobsDoesNotFollowSymlinksInDestination(t *testing.T) {
	a, b, outside := t.TempDir(), t.TempDir(), t.TempDir()
	writeBlobs(t, a, map[string]string{"docs/a.txt": "alpha"})
	if err := os.Symlink(outside, filepath.Join(b, "docs")); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "replicate", "blobs", "--config", blobsConfig(t, a, b), "--from", "a", "--to", "b")
	if code != ExitUnknown || !strings.Contains(errOut, "docs") || !strings.Contains(errOut, "symbolic link") {
		t.Fatalf("exit %d %q, want 2 naming the link docs", code, errOut)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("wrote outside the destination: %v", ents)
	}
}
