package blob

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/parity"
)

func TestBlobCacheRoundTripAndStaleness(t *testing.T) {
	dir := t.TempDir()
	lm := time.Unix(1_700_000_000, 123_000_000)
	c, err := OpenBlobCache(dir, "http://h/b/p/")
	if err != nil || c.Rebuilt != "" {
		t.Fatalf("OpenBlobCache on an empty folder: %v, rebuilt %q", err, c.Rebuilt)
	}
	sum := parity.Digest(sha256.Sum256([]byte("x")))
	c.Put(CacheKey{Key: "a", Size: 1, ETag: "e1", LM: lm}, sum)
	c.Put(CacheKey{Key: "b c/ü", Size: 2, LM: lm}, sum)
	if err := c.Save(true); err != nil {
		t.Fatal(err)
	}
	c, _ = OpenBlobCache(dir, "http://h/b/p/")
	if got, ok := c.Get(CacheKey{Key: "a", Size: 1, ETag: "e1", LM: lm}); !ok || got != sum {
		t.Errorf("Get(a) = %x, %v; want the stored hash", got, ok)
	}
	for _, miss := range []struct {
		key  string
		size int64
		etag string
		lm   time.Time
		id   string
	}{{"a", 2, "e1", lm, ""}, {"a", 1, "e2", lm, ""}, {"a", 1, "e1", lm.Add(time.Millisecond), ""}, {"zz", 1, "e1", lm, ""}, {"a", 1, "e1", lm, "ino=9"}} {
		if _, ok := c.Get(CacheKey{Key: miss.key, Size: miss.size, ETag: miss.etag, LM: miss.lm, Identity: miss.id}); ok {
			t.Errorf("Get(%+v) hit; want a miss (stale listing)", miss)
		}
	}
	// Save(true) keeps only what was seen (a); Save(false) keeps the rest.
	if err := c.Save(false); err != nil {
		t.Fatal(err)
	}
	if check, _ := OpenBlobCache(dir, "http://h/b/p/"); len(check.old) != 2 {
		t.Errorf("incomplete run kept %d records, want 2 (the unseen one too)", len(check.old))
	}
	c2, _ := OpenBlobCache(dir, "http://h/b/p/")
	c2.Get(CacheKey{Key: "a", Size: 1, ETag: "e1", LM: lm})
	c2.Save(true)
	c3, _ := OpenBlobCache(dir, "http://h/b/p/")
	if _, ok := c3.Get(CacheKey{Key: "b c/ü", Size: 2, LM: lm}); ok {
		t.Errorf("complete run kept a record for an object no longer listed")
	}
	// Another location has its own file.
	if other, _ := OpenBlobCache(dir, "http://h/b/q/"); len(other.old) != 0 {
		t.Errorf("location q sees %d records of location p", len(other.old))
	}
}

func TestBlobCacheRejectsCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	loc := "file:///data"
	c, _ := OpenBlobCache(dir, loc)
	for i := range 20 {
		c.Put(CacheKey{Key: strings.Repeat("k", i+1), Size: int64(i), ETag: "etag", LM: time.Unix(int64(i), 0)}, parity.Digest{byte(i)})
	}
	if err := c.Save(true); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(c.Path())
	if err != nil {
		t.Fatal(err)
	}
	var otherLoc bytes.Buffer
	writeCache(&otherLoc, "file:///elsewhere", map[string]cacheRec{"a": {size: 1}})
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"Truncated":     {good[:len(good)-10], "checksum mismatch"},
		"FlippedByte":   {flip(good, len(good)/2), "checksum mismatch"},
		"Empty":         {nil, "not a ragparity blob cache"},
		"OtherVersion":  {append([]byte("ragparity/blobcache/v0\n"), good[len(cacheMagic):]...), "not a ragparity blob cache"},
		"OtherLocation": {otherLoc.Bytes(), "another location"},
		"Garbage":       {[]byte("hello world, this is not a cache at all, no no no"), "not a ragparity blob cache"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(c.Path(), tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := OpenBlobCache(dir, loc)
			if err != nil {
				t.Fatalf("OpenBlobCache: %v", err)
			}
			if !strings.Contains(got.Rebuilt, tc.want) || len(got.old) != 0 {
				t.Errorf("Rebuilt = %q with %d records; want %q and none trusted", got.Rebuilt, len(got.old), tc.want)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 1
	return out
}

// FuzzBlobCache: the cache parser never panics and accepts only what it
// wrote.
func FuzzBlobCache(f *testing.F) {
	var good bytes.Buffer
	writeCache(&good, "loc", map[string]cacheRec{"a": {size: 1, etag: "e", lm: 5}, "b/ü": {size: 0}})
	f.Add(good.Bytes())
	f.Add([]byte(cacheMagic))
	f.Add([]byte{})
	body := append([]byte(cacheMagic), 0, 0, 0, 3, 'l', 'o', 'c', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	sum := sha256.Sum256(body)
	f.Add(append(body, sum[:]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := readCache(bytes.NewReader(data), "loc")
		if err != nil {
			return
		}
		var again bytes.Buffer
		if err := writeCache(&again, "loc", recs); err != nil {
			t.Fatal(err)
		}
		recs2, err := readCache(&again, "loc")
		if err != nil || len(recs2) != len(recs) {
			t.Fatalf("re-read of a written cache: %d records, %v; want %d", len(recs2), err, len(recs))
		}
	})
}

// Every cached entry is re-hashed at least once per RehashEvery, each key at
// its own phase in the period, so the work spreads over runs.
func TestBlobCacheRehashEvery(t *testing.T) {
	dir := t.TempDir()
	c, err := OpenBlobCache(dir, "loc")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	period := 24 * time.Hour
	c.RehashEvery = period
	c.Now = func() time.Time { return t0 }
	const n = 1000
	var sum parity.Digest
	for i := 0; i < n; i++ {
		c.Put(CacheKey{Key: fmt.Sprint("k", i), Size: 1, ETag: "e"}, sum)
	}
	if err := c.Save(true); err != nil {
		t.Fatal(err)
	}
	due := func(at time.Time) int {
		c, err := OpenBlobCache(dir, "loc")
		if err != nil {
			t.Fatal(err)
		}
		c.RehashEvery, c.Now = period, func() time.Time { return at }
		misses := 0
		for i := 0; i < n; i++ {
			if _, ok := c.Get(CacheKey{Key: fmt.Sprint("k", i), Size: 1, ETag: "e"}); !ok {
				misses++
			}
		}
		return misses
	}
	if got := due(t0.Add(time.Minute)); got > n/50 {
		t.Errorf("a minute later %d of %d entries are due; want about 0", got, n)
	}
	if got := due(t0.Add(period / 4)); got < n/8 || got > n*3/8 {
		t.Errorf("a quarter period later %d of %d entries are due; want about a quarter", got, n)
	}
	if got := due(t0.Add(period)); got != n {
		t.Errorf("a full period later %d of %d entries are due; want all", got, n)
	}
}
