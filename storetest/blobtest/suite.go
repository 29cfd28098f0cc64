// Package blobtest is the conformance suite every blob backend runs (the
// objstore AcceptanceTest / rclone fstests pattern). Each backend's
// _test.go builds a Harness and calls Run; the suite checks the backend and
// the manifest built on it (verifier/manifest.go) together.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier/blob"
)

// Harness tells the suite how to get fresh stores of one backend.
type Harness struct {
	// Name of the backend as printed in the test log ("s3", "localfs").
	Name string
	// Target says what the suite ran against, logged so a reader can see
	// which backends actually ran.
	Target string
	// New returns an empty store in a fresh, unique bucket (or folder); it
	// registers its own cleanup with t.Cleanup.
	New func(t *testing.T) adapters.BlobStore
	// Sub returns a store over prefix (ending in "/") inside s's bucket.
	Sub func(t *testing.T, s adapters.BlobStore, prefix string) adapters.BlobStore
	// Missing returns a reader for a bucket (folder) that does not exist.
	Missing func(t *testing.T) adapters.BlobReader
	// Denied, if set, returns a reader whose store refuses access.
	Denied func(t *testing.T) adapters.BlobReader
	// Tamper changes the byte at off of key behind the store's back (in the
	// server's storage), keeping the size and the stored ETag, and moves the
	// file's modification time 2s later.
	Tamper func(t *testing.T, s adapters.BlobStore, key string, off int64)
	// Many is the object count of the many-pages test (default 2500).
	Many int
}

func ctx(t *testing.T) context.Context { return t.Context() }

// Data returns n deterministic bytes for a seed.
func Data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Put stores objects, up to 16 at once.
func Put(t testing.TB, s adapters.BlobWriter, objs map[string][]byte) {
	t.Helper()
	keys := make(chan string)
	var wg sync.WaitGroup
	var first atomic.Value
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				if err := s.Put(context.Background(), k, bytes.NewReader(objs[k]), int64(len(objs[k]))); err != nil {
					first.CompareAndSwap(nil, fmt.Errorf("Put %q: %w", k, err))
				}
			}
		}()
	}
	for k := range objs {
		keys <- k
	}
	close(keys)
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// Fixture is a small set of objects with awkward keys.
func Fixture() map[string][]byte {
	return map[string][]byte{
		"readme.txt":                     []byte("hello\n"),
		"docs/a.md":                      Data(1, 1000),
		"docs/nested/deeper/b.bin":       Data(2, 70_000),
		"with space/file name.txt":       []byte("spaces in the key"),
		"unicodé/日本語/ключ-ü.json":        []byte(`{"k":"ü"}`),
		"empty":                          {},
		"plus+and&amp=eq%25.txt":         []byte("url-special characters"),
		"docs/a.md.bak":                  Data(1, 1000),
		"tab\tand'quote\"s/x":            []byte("x"),
		"deep/1/2/3/4/5/6/7/8/9/10/leaf": Data(3, 33),
	}
}

// Manifest builds a finished manifest of r.
func Manifest(t testing.TB, r adapters.BlobReader, o blob.ManifestOptions) *blob.BlobManifest {
	t.Helper()
	m, err := blob.BuildManifest(context.Background(), r, o)
	if err != nil {
		t.Fatalf("BuildManifest(%s, mode %s): %v", r.Location(), o.Mode, err)
	}
	return m
}

func list(t *testing.T, r adapters.BlobReader) map[string]parity.ObjectInfo {
	t.Helper()
	got := map[string]parity.ObjectInfo{}
	err := r.List(ctx(t), func(oi parity.ObjectInfo) error {
		if _, dup := got[oi.Key]; dup {
			return fmt.Errorf("key %q listed twice", oi.Key)
		}
		got[oi.Key] = oi
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return got
}

func read(t *testing.T, r adapters.BlobReader, key string) []byte {
	t.Helper()
	rc, err := r.Open(ctx(t), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Run runs the conformance suite against one backend.
func Run(t *testing.T, h Harness) {
	t.Logf("blobtest: running the blob conformance suite on backend %q against %s", h.Name, h.Target)
	if h.Many == 0 {
		h.Many = 2500
	}
	content := blob.ManifestOptions{Mode: blob.ModeContent, Workers: 8}

	t.Run("EmptyStore", func(t *testing.T) {
		a, b := h.New(t), h.New(t)
		if got := list(t, a); len(got) != 0 {
			t.Fatalf("List of an empty store returned %d objects: %v", len(got), sortedKeys(got))
		}
		ma, mb := Manifest(t, a, content), Manifest(t, b, content)
		if ma.Objects != 0 {
			t.Errorf("Objects = %d, want 0", ma.Objects)
		}
		if ma.Hash() != mb.Hash() {
			t.Errorf("two empty stores: manifest hashes %s and %s differ", ma.Hash().Hex(), mb.Hash().Hex())
		}
		Put(t, b, map[string][]byte{"x": []byte("x")})
		if mb2 := Manifest(t, b, content); mb2.Hash() == ma.Hash() {
			t.Errorf("a store with one object has the empty manifest hash")
		}
	})

	t.Run("RoundTripAwkwardKeys", func(t *testing.T) {
		s := h.New(t)
		objs := Fixture()
		Put(t, s, objs)
		got := list(t, s)
		if g, w := sortedKeys(got), sortedKeys(objs); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("List keys = %q, want %q", g, w)
		}
		for k, want := range objs {
			oi := got[k]
			if oi.Size != int64(len(want)) {
				t.Errorf("key %q: listed size %d, want %d", k, oi.Size, len(want))
			}
			if oi.LastModified.IsZero() {
				t.Errorf("key %q: LastModified is zero", k)
			}
			if b := read(t, s, k); !bytes.Equal(b, want) {
				t.Errorf("key %q: read %d bytes that differ from the %d put", k, len(b), len(want))
			}
		}
		m := Manifest(t, s, content)
		if m.Objects != int64(len(objs)) || m.ObjectsRead != int64(len(objs)) {
			t.Errorf("manifest Objects=%d ObjectsRead=%d, want %d and %d", m.Objects, m.ObjectsRead, len(objs), len(objs))
		}
		// The manifest hash is the published formula over the fixture.
		want := expectedHash(objs)
		if got := m.Hash(); got != want {
			t.Errorf("manifest hash = %s, want %s (computed from the fixture by the published formula)", got.Hex(), want.Hex())
		}
	})

	t.Run("OpenMissingKey", func(t *testing.T) {
		s := h.New(t)
		Put(t, s, map[string][]byte{"present": []byte("1")})
		if _, err := s.Open(ctx(t), "absent"); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("Open(absent) error = %v, want one wrapping ErrNotFound", err)
		}
	})

	t.Run("Prefixes", func(t *testing.T) {
		s := h.New(t)
		Put(t, s, map[string][]byte{
			"a/one": []byte("1"), "a/sub/two": []byte("22"), "ab/not-under-a": []byte("3"), "a.txt": []byte("4"),
			"b/one": []byte("1"), "b/sub/two": []byte("22"),
		})
		a, b := h.Sub(t, s, "a/"), h.Sub(t, s, "b/")
		got := list(t, a)
		if g, w := sortedKeys(got), []string{"one", "sub/two"}; fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("List under prefix a/ = %q, want %q (keys relative to the prefix, nothing from ab/ or a.txt)", g, w)
		}
		if got := read(t, a, "sub/two"); string(got) != "22" {
			t.Errorf("Open(sub/two) under a/ = %q, want %q", got, "22")
		}
		ma, mb := Manifest(t, a, content), Manifest(t, b, content)
		if ma.Hash() != mb.Hash() {
			t.Errorf("prefixes a/ and b/ hold the same relative keys and bytes but hashes differ")
		}
		if ma.Location == mb.Location {
			t.Errorf("Location %q is the same for two prefixes (it keys the cache)", ma.Location)
		}
	})

	t.Run("MissingExtraAndChangedKeys", func(t *testing.T) {
		a, b := h.New(t), h.New(t)
		objs := Fixture()
		Put(t, a, objs)
		other := Fixture()
		delete(other, "with space/file name.txt")                      // only in a
		other["new key ü.txt"] = []byte("extra")                       // only in b
		other["docs/a.md"] = append([]byte(nil), objs["docs/a.md"]...) // same size, one byte changed
		other["docs/a.md"][500] ^= 1
		other["readme.txt"] = []byte("hello, longer\n") // size changed
		Put(t, b, other)
		d := blob.DiffManifests("a", "b", Manifest(t, a, content), Manifest(t, b, content))
		if d.Verdict != blob.VerdictDifferent || d.Equal {
			t.Fatalf("verdict = %s (equal %v), want different", d.Verdict, d.Equal)
		}
		if got, want := fmt.Sprint(d.OnlyInFrom), fmt.Sprint([]string{"with space/file name.txt"}); got != want {
			t.Errorf("only_in_from = %s, want %s", got, want)
		}
		if got, want := fmt.Sprint(d.OnlyInTo), fmt.Sprint([]string{"new key ü.txt"}); got != want {
			t.Errorf("only_in_to = %s, want %s", got, want)
		}
		got := map[string]string{}
		for _, c := range d.Changed {
			got[c.Key] = c.Reason
		}
		if want := map[string]string{"docs/a.md": "content", "readme.txt": "size"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("changed = %v, want %v", got, want)
		}
		if d.BucketsDiffering < 1 || d.BucketsDiffering > 4 {
			t.Errorf("buckets differing = %d, want 1..4 for 4 differing keys", d.BucketsDiffering)
		}
	})

	t.Run("ChangedByteSameSizeAndETag", func(t *testing.T) {
		a, b := h.New(t), h.New(t)
		objs := map[string][]byte{"model/weights.bin": Data(9, 300_000), "other": Data(10, 10)}
		Put(t, a, objs)
		Put(t, b, objs)
		cacheDir := t.TempDir()
		warm := func(r adapters.BlobReader) *blob.BlobManifest {
			c, err := blob.OpenBlobCache(cacheDir, r.Location())
			if err != nil {
				t.Fatal(err)
			}
			o := content
			o.Cache = c
			m := Manifest(t, r, o)
			if err := c.Save(true); err != nil {
				t.Fatal(err)
			}
			return m
		}
		if d := blob.DiffManifests("a", "b", warm(a), warm(b)); d.Verdict != blob.VerdictEqual {
			t.Fatalf("before tampering: verdict %s, want equal", d.Verdict)
		}
		before := list(t, b)["model/weights.bin"]
		h.Tamper(t, b, "model/weights.bin", 123_456)
		after := list(t, b)["model/weights.bin"]
		if after.Size != before.Size || after.ETag != before.ETag {
			t.Fatalf("Tamper changed the listing: size %d -> %d, etag %q -> %q", before.Size, after.Size, before.ETag, after.ETag)
		}
		for _, tc := range []struct {
			name string
			mb   func() *blob.BlobManifest
		}{
			{"NoCache", func() *blob.BlobManifest { return Manifest(t, b, content) }},
			{"WarmCache", func() *blob.BlobManifest { return warm(b) }},
		} {
			d := blob.DiffManifests("a", "b", Manifest(t, a, content), tc.mb())
			if d.Verdict != blob.VerdictDifferent || len(d.Changed) != 1 || d.Changed[0].Key != "model/weights.bin" || d.Changed[0].Reason != "content" {
				t.Errorf("%s: diff after one byte changed = verdict %s, changed %+v; want different with model/weights.bin (content)", tc.name, d.Verdict, d.Changed)
			}
		}
		// ETag mode must not call it equal.
		etag := blob.ManifestOptions{Mode: blob.ModeETag}
		if d := blob.DiffManifests("a", "b", Manifest(t, a, etag), Manifest(t, b, etag)); d.Verdict == blob.VerdictEqual || d.Equal {
			t.Errorf("etag mode verdict = %s, must never be equal", d.Verdict)
		}
	})

	t.Run("ManyPages", func(t *testing.T) {
		a, b := h.New(t), h.New(t)
		objs := map[string][]byte{}
		for i := range h.Many {
			objs[fmt.Sprintf("p%02d/obj-%06d", i%7, i)] = []byte(fmt.Sprintf("object %d\n", i))
		}
		Put(t, a, objs)
		objs["p03/obj-000003"] = []byte("object X\n")
		delete(objs, fmt.Sprintf("p%02d/obj-%06d", (h.Many-1)%7, h.Many-1))
		Put(t, b, objs)
		if got := len(list(t, a)); got != h.Many {
			t.Fatalf("List returned %d objects, want %d", got, h.Many)
		}
		ma, mb := Manifest(t, a, content), Manifest(t, b, content)
		if ma.Objects != int64(h.Many) || mb.Objects != int64(h.Many-1) {
			t.Fatalf("Objects = %d and %d, want %d and %d", ma.Objects, mb.Objects, h.Many, h.Many-1)
		}
		d := blob.DiffManifests("a", "b", ma, mb)
		wantGone := fmt.Sprintf("p%02d/obj-%06d", (h.Many-1)%7, h.Many-1)
		if fmt.Sprint(d.OnlyInFrom) != fmt.Sprint([]string{wantGone}) || len(d.OnlyInTo) != 0 ||
			len(d.Changed) != 1 || d.Changed[0].Key != "p03/obj-000003" {
			t.Errorf("diff = only_in_from %v, only_in_to %v, changed %+v; want [%s], [], p03/obj-000003", d.OnlyInFrom, d.OnlyInTo, d.Changed, wantGone)
		}
		if d.EntriesExamined > 10 {
			t.Errorf("entries examined = %d, want only those of the 2 differing buckets", d.EntriesExamined)
		}
	})

	t.Run("CacheSkipsUnchangedAndSurvivesCorruption", func(t *testing.T) {
		s := h.New(t)
		objs := map[string][]byte{}
		for i := range 50 {
			objs[fmt.Sprintf("k%03d", i)] = Data(uint64(i), 2000)
		}
		Put(t, s, objs)
		dir := t.TempDir()
		run := func(noRead bool) (*blob.BlobManifest, *blob.BlobCache) {
			c, err := blob.OpenBlobCache(dir, s.Location())
			if err != nil {
				t.Fatal(err)
			}
			o := content
			o.Cache, o.NoCacheRead = c, noRead
			m := Manifest(t, s, o)
			if err := c.Save(true); err != nil {
				t.Fatal(err)
			}
			return m, c
		}
		cold, _ := run(false)
		hot, c := run(false)
		if hot.ObjectsRead != 0 || hot.CacheHits != 50 || c.Rebuilt != "" {
			t.Errorf("warm run: read %d, cache hits %d (rebuilt %q); want 0 and 50", hot.ObjectsRead, hot.CacheHits, c.Rebuilt)
		}
		if hot.Hash() != cold.Hash() {
			t.Errorf("warm-cache hash %s != cold %s", hot.Hash().Hex(), cold.Hash().Hex())
		}
		// Rewriting an object through the store (same size) is seen.
		Put(t, s, map[string][]byte{"k007": Data(999, 2000)})
		changed, _ := run(false)
		if changed.ObjectsRead != 1 || changed.Hash() == cold.Hash() {
			t.Errorf("after rewriting one object: read %d objects (want 1), hash changed %v (want true)", changed.ObjectsRead, changed.Hash() != cold.Hash())
		}
		// --no-cache reads everything.
		if full, _ := run(true); full.ObjectsRead != 50 || full.Hash() != changed.Hash() {
			t.Errorf("no-cache run: read %d (want 50), hash equal to cached run %v (want true)", full.ObjectsRead, full.Hash() == changed.Hash())
		}
		// A corrupt cache file is detected, not trusted, and rebuilt.
		path := blob.BlobCacheFile(dir, s.Location())
		corruptFile(t, path)
		m, c := run(false)
		if c.Rebuilt == "" || m.ObjectsRead != 50 || m.Hash() != changed.Hash() {
			t.Errorf("corrupt cache: rebuilt %q, read %d (want 50), hash right %v", c.Rebuilt, m.ObjectsRead, m.Hash() == changed.Hash())
		}
		if m, c := run(false); c.Rebuilt != "" || m.ObjectsRead != 0 {
			t.Errorf("after rebuild: rebuilt %q, read %d; want a clean cache and 0 reads", c.Rebuilt, m.ObjectsRead)
		}
	})

	t.Run("MissingBucket", func(t *testing.T) {
		r := h.Missing(t)
		if err := r.List(ctx(t), func(parity.ObjectInfo) error { return nil }); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("List error = %v, want one wrapping ErrNotFound", err)
		}
		if _, err := r.Open(ctx(t), "x"); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("Open error = %v, want one wrapping ErrNotFound", err)
		}
		if _, err := blob.BuildManifest(ctx(t), r, content); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("BuildManifest error = %v, want one wrapping ErrNotFound", err)
		}
	})

	if h.Denied != nil {
		t.Run("AccessDenied", func(t *testing.T) {
			r := h.Denied(t)
			err := r.List(ctx(t), func(parity.ObjectInfo) error { return nil })
			if !errors.Is(err, adapters.ErrDenied) {
				t.Errorf("List error = %v, want one wrapping ErrDenied", err)
			}
		})
	} else {
		t.Logf("blobtest: backend %q has no access control to test (AccessDenied not run)", h.Name)
	}

	t.Run("CancelledContextAndCallbackError", func(t *testing.T) {
		s := h.New(t)
		Put(t, s, map[string][]byte{"a": []byte("1"), "b/c": []byte("2"), "d/e": []byte("3")})
		c, cancel := context.WithCancel(ctx(t))
		cancel()
		if err := s.List(c, func(parity.ObjectInfo) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Errorf("List with a cancelled context: error = %v, want context.Canceled", err)
		}
		if _, err := blob.BuildManifest(c, s, content); !errors.Is(err, context.Canceled) {
			t.Errorf("BuildManifest with a cancelled context: error = %v, want context.Canceled", err)
		}
		stop := errors.New("stop here")
		n := 0
		if err := s.List(ctx(t), func(parity.ObjectInfo) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
			t.Errorf("List callback error: got %v after %d calls, want %v after 1", err, n, stop)
		}
	})

	t.Run("MemoryFlatWhileStreaming", func(t *testing.T) {
		s := h.New(t)
		const n, size = 8, 16 << 20 // 128 MiB in all
		for i := range n {
			if err := s.Put(ctx(t), fmt.Sprintf("big-%02d", i), io.LimitReader(&pattern{seed: byte(i)}, size), size); err != nil {
				t.Fatalf("Put: %v", err)
			}
		}
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		var peak atomic.Uint64
		done := make(chan struct{})
		go func() {
			var ms runtime.MemStats
			for {
				select {
				case <-done:
					return
				case <-time.After(2 * time.Millisecond):
				}
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}()
		m := Manifest(t, s, blob.ManifestOptions{Mode: blob.ModeContent, Workers: 4})
		close(done)
		if m.BytesRead != n*size {
			t.Fatalf("read %d bytes, want %d", m.BytesRead, n*size)
		}
		grew := int64(peak.Load()) - int64(base.HeapInuse)
		// Holding bodies would take 4 workers x 16 MiB.
		if grew > 16<<20 {
			t.Errorf("heap grew by %d MiB while hashing %d MiB with 4 workers; want < 16 MiB (bodies must stream)", grew>>20, n*size>>20)
		}
		t.Logf("heap in use grew by at most %.1f MiB while hashing %d MiB", float64(grew)/(1<<20), n*size>>20)
	})
}

// pattern is an endless deterministic byte stream.
type pattern struct {
	seed byte
	i    int
}

func (p *pattern) Read(b []byte) (int, error) {
	for k := range b {
		b[k] = byte(p.i*31) ^ p.seed
		p.i++
	}
	return len(b), nil
}

// expectedHash computes a manifest hash from objects by the published
// formula, independently of BlobManifest.
func expectedHash(objs map[string][]byte) parity.Digest {
	leaves := make([]parity.Leaf, blob.ManifestBuckets)
	for k, v := range objs {
		d := blob.BlobEntryDigest(k, int64(len(v)), sha256Sum(v))
		leaves[parity.BucketOf(k, blob.ManifestBuckets)].Add(d)
	}
	r := parity.Root(leaves)
	return sha256Sum(append([]byte("manifest/v1"), r[:]...))
}
