package gate_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/ragparity/ragparity/adapters/localfs"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/verifier/blob"
)

func blobRegion(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func manifests(t *testing.T, cfg *config.Config, cacheDir string) map[string]string {
	t.Helper()
	var regions []*config.Region
	for i := range cfg.Regions {
		regions = append(regions, &cfg.Regions[i])
	}
	out := map[string]string{}
	for _, m := range gate.BuildManifests(context.Background(), cfg, regions, gate.BlobOptions{Mode: blob.ModeContent, Workers: 2, CacheDir: cacheDir}) {
		if m.Err != nil {
			t.Fatalf("%s: %v", m.Region.Name, m.Err)
		}
		out[m.Region.Name] = m.M.Hash().Hex()
	}
	return out
}

// A file rewritten with the same size and its mtime restored (cp -p) must
// not be trusted from the cache: local files are identified by size, mtime,
// ctime and inode, never mtime alone.
func TestBlobCacheNotFooledBySameSizeAndMtime(t *testing.T) {
	files := map[string]string{"a.txt": "alpha bytes", "b.txt": "bravo bytes"}
	us, eu := blobRegion(t, files), blobRegion(t, files)
	cfg := &config.Config{Timeout: 10 * time.Second, Regions: []config.Region{
		{Name: "us", Blobs: "file://" + us}, {Name: "eu", Blobs: "file://" + eu}}}
	cache := t.TempDir()
	first := manifests(t, cfg, cache)
	if first["us"] != first["eu"] {
		t.Fatalf("equal folders give different manifests: %v", first)
	}
	p := filepath.Join(eu, "a.txt")
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // past the kernel's timestamp tick
	if err := os.WriteFile(p, []byte("ALPHA BYTES"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if st2, _ := os.Stat(p); st2.Size() != st.Size() || !st2.ModTime().Equal(st.ModTime()) {
		t.Fatalf("fixture: size or mtime changed")
	}
	second := manifests(t, cfg, cache)
	if second["us"] == second["eu"] {
		t.Fatalf("a rewritten file (same size, mtime kept) was trusted from the cache: both manifests %s", second["us"])
	}
}
