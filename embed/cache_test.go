package embed_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragparity/ragparity/embed"
)

func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("chunk %d about topic %d", i, i%7)
	}
	return out
}

// newCached wraps a counting hash embedder in a cache in dir and returns
// both, with the cache's log going to logBuf.
func newCached(t *testing.T, dir string, logBuf *bytes.Buffer, opts ...embed.CacheOption) (*embed.Cache, *embed.Counting) {
	t.Helper()
	inner, err := embed.Open("hash://?dim=32")
	if err != nil {
		t.Fatal(err)
	}
	cnt := embed.NewCounting(inner)
	if logBuf != nil {
		opts = append(opts, embed.WithLogger(slog.New(slog.NewTextHandler(logBuf, nil))))
	}
	c, err := embed.Cached(cnt, dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, cnt
}

func mustEmbed(t *testing.T, e embed.Embedder, in []string) [][]float32 {
	t.Helper()
	vs, err := e.Embed(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(in) {
		t.Fatalf("%d vectors for %d texts", len(vs), len(in))
	}
	return vs
}

func sameVectors(t *testing.T, got, want [][]float32) {
	t.Helper()
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("vector %d component %d: got %v, want %v", i, j, got[i][j], want[i][j])
			}
		}
	}
}

func TestCache(t *testing.T) {
	t.Run("SecondPassMakesNoInnerCalls", func(t *testing.T) {
		dir := t.TempDir()
		c, cnt := newCached(t, dir, nil)
		in := texts(50)
		first := mustEmbed(t, c, in)
		if got, want := cnt.Calls(), int64(1); got != want {
			t.Fatalf("first pass: %d inner calls, want %d", got, want)
		}
		second := mustEmbed(t, c, in)
		if got := cnt.Calls(); got != 1 {
			t.Fatalf("second pass made %d inner calls, want 0", got-1)
		}
		sameVectors(t, second, first)
		if got, want := c.Hits(), int64(50); got != want {
			t.Errorf("Hits() = %d, want %d", got, want)
		}
		// The vectors survive a reopen.
		c.Close()
		c2, cnt2 := newCached(t, dir, nil)
		sameVectors(t, mustEmbed(t, c2, in), first)
		if got := cnt2.Calls(); got != 0 {
			t.Fatalf("after reopen: %d inner calls, want 0", got)
		}
	})
	t.Run("PartialHitsAskOnlyForMisses", func(t *testing.T) {
		c, cnt := newCached(t, t.TempDir(), nil)
		mustEmbed(t, c, texts(10))
		mustEmbed(t, c, texts(15))
		if got, want := cnt.Texts(), int64(15); got != want {
			t.Fatalf("inner saw %d texts, want %d", got, want)
		}
	})
	t.Run("DuplicatesInOneCallEmbeddedOnce", func(t *testing.T) {
		c, cnt := newCached(t, t.TempDir(), nil)
		vs := mustEmbed(t, c, []string{"x", "y", "x", "x"})
		if got, want := cnt.Texts(), int64(2); got != want {
			t.Fatalf("inner saw %d texts, want %d", got, want)
		}
		sameVectors(t, [][]float32{vs[2]}, [][]float32{vs[0]})
		vs[0][0] = 42 // results do not alias each other
		if vs[2][0] == 42 {
			t.Fatal("duplicate texts share one slice")
		}
	})
	t.Run("KeyIncludesModelTag", func(t *testing.T) {
		if embed.Key("a", "b") == embed.Key("b", "a") || embed.Key("m1", "t") == embed.Key("m2", "t") {
			t.Fatal("keys collide")
		}
	})
	t.Run("Empty", func(t *testing.T) {
		c, cnt := newCached(t, t.TempDir(), nil)
		if vs := mustEmbed(t, c, nil); len(vs) != 0 || cnt.Calls() != 0 {
			t.Fatal("an empty call should do nothing")
		}
	})
}

func TestCacheConcurrent(t *testing.T) {
	c, cnt := newCached(t, t.TempDir(), nil)
	in := texts(40)
	want := mustEmbed(t, embed.NewCounting(mustOpen(t, "hash://?dim=32")), in)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine asks for an overlapping window.
			lo := (g * 5) % 20
			vs, err := c.Embed(context.Background(), in[lo:lo+20])
			if err != nil {
				t.Error(err)
				return
			}
			for i, v := range vs {
				for j := range v {
					if v[j] != want[lo+i][j] {
						t.Errorf("goroutine %d text %d: wrong vector", g, lo+i)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if got := cnt.Repeated(); got != 0 {
		t.Fatalf("%d texts were embedded more than once", got)
	}
}

func mustOpen(t *testing.T, spec string) embed.Embedder {
	t.Helper()
	e, err := embed.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCacheCorruption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"Garbage", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			for i := range b {
				b[i] = byte(i*7 + 3)
			}
			writeFile(t, path, b)
		}},
		{"Truncated", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			writeFile(t, path, b[:len(b)/3])
		}},
		{"MetaPagesZeroed", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			clear(b[:8192])
			writeFile(t, path, b)
		}},
		{"NotABoltFile", func(t *testing.T, path string) {
			writeFile(t, path, []byte("hello, I am not a database\n"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c, _ := newCached(t, dir, nil)
			in := texts(30)
			want := mustEmbed(t, c, in)
			path := c.Path()
			c.Close()
			tc.corrupt(t, path)

			var log bytes.Buffer
			c2, cnt := newCached(t, dir, &log)
			got := mustEmbed(t, c2, in)
			sameVectors(t, got, want)
			if n := cnt.Texts(); n != int64(len(in)) {
				t.Fatalf("after corruption the inner embedder saw %d texts, want all %d re-embedded", n, len(in))
			}
			if !strings.Contains(log.String(), "level=WARN") || !strings.Contains(log.String(), "rebuilding") {
				t.Fatalf("no rebuild warning logged; log:\n%s", log.String())
			}
			if _, err := os.Stat(path + ".corrupt"); err != nil {
				t.Errorf("corrupt file not kept aside: %v", err)
			}
			// The rebuilt file serves the next pass.
			mustEmbed(t, c2, in)
			if n := cnt.Texts(); n != int64(len(in)) {
				t.Fatalf("rebuilt cache missed: inner saw %d texts", n)
			}
		})
	}
}

// TestCacheBadValue flips one byte inside one stored vector: its CRC fails,
// it is dropped with a warning and re-embedded; the others are still served.
func TestCacheBadValue(t *testing.T) {
	dir := t.TempDir()
	c, _ := newCached(t, dir, nil)
	in := texts(20)
	want := mustEmbed(t, c, in)
	path := c.Path()
	c.Close()

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pat []byte
	for _, x := range want[7] {
		pat = binary.LittleEndian.AppendUint32(pat, math.Float32bits(x))
	}
	at := bytes.Index(b, pat)
	if at < 0 {
		t.Fatal("stored vector not found in the file")
	}
	b[at+5] ^= 0x40
	writeFile(t, path, b)

	var log bytes.Buffer
	c2, cnt := newCached(t, dir, &log)
	sameVectors(t, mustEmbed(t, c2, in), want)
	if got, want := cnt.Texts(), int64(1); got != want {
		t.Fatalf("inner saw %d texts, want only the damaged one", got)
	}
	if got := c2.Bad(); got != 1 {
		t.Errorf("Bad() = %d, want 1", got)
	}
	if !strings.Contains(log.String(), "checksum") {
		t.Errorf("no warning about the bad value; log:\n%s", log.String())
	}
}

func TestCacheLocked(t *testing.T) {
	dir := t.TempDir()
	newCached(t, dir, nil)
	inner := mustOpen(t, "hash")
	start := time.Now()
	_, err := embed.Cached(inner, dir, embed.WithLockTimeout(100*time.Millisecond))
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second open: err = %v, want a locked error", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("lock wait did not honour the timeout")
	}
	if _, err := os.Stat(filepath.Join(dir, embed.CacheFile+".corrupt")); err == nil {
		t.Fatal("a locked file must not be treated as corrupt")
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
