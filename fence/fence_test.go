package fence

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func redisURL() string {
	if u := os.Getenv("RAGPARITY_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

func fences(t *testing.T) map[string]Fence {
	r, err := Open(redisURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Warm(context.Background()); err != nil {
		t.Fatalf("Redis not reachable at %s (start it with `make services`): %v", redisURL(), err)
	}
	b, err := Open("", filepath.Join(t.TempDir(), "fence.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); b.Close() })
	return map[string]Fence{"redis": r, "bbolt": b}
}

func TestFenceSemantics(t *testing.T) {
	for name, f := range fences(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := Key(fmt.Sprint(rand.Uint64()), "rev1", "ih", "us-east-1")
			if st, _ := f.Claim(ctx, key, "A", time.Minute); st != Acquired {
				t.Fatalf("first claim = %v, want Acquired", st)
			}
			if st, _ := f.Claim(ctx, key, "B", time.Minute); st != HeldByOther {
				t.Fatalf("claim held by A, as B = %v, want HeldByOther", st)
			}
			if st, _ := f.Claim(ctx, key, "A", time.Minute); st != Acquired {
				t.Fatalf("A re-claiming its own pending claim (resume) = %v, want Acquired", st)
			}
			if err := f.Done(ctx, key, time.Hour); err != nil {
				t.Fatal(err)
			}
			if st, _ := f.Claim(ctx, key, "B", time.Minute); st != AlreadyDone {
				t.Fatalf("claim after done = %v, want AlreadyDone", st)
			}
			// A dead writer's lease expires; another takes over.
			k2 := Key(fmt.Sprint(rand.Uint64()), "rev1", "ih", "p")
			f.Claim(ctx, k2, "dead", 50*time.Millisecond)
			time.Sleep(120 * time.Millisecond)
			if st, _ := f.Claim(ctx, k2, "B", time.Minute); st != Acquired {
				t.Fatalf("claim after the lease expired = %v, want Acquired", st)
			}
			before, err := f.Warm(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.MarkWarm(ctx, DedupeStat{Hits: 3, Misses: 5}); err != nil {
				t.Fatal(err)
			}
			w, err := f.Warm(ctx)
			if !w.Warm || err != nil {
				t.Errorf("Warm = %+v, %v after MarkWarm", w, err)
			}
			// The counters are running totals. The bbolt file is this
			// test's own; Redis is shared with other packages' tests
			// running at the same time, which may add to it.
			dh, dm := w.Hits-before.Hits, w.Misses-before.Misses
			if name == "bbolt" && (dh != 3 || dm != 5) || dh < 3 || dm < 5 {
				t.Errorf("dedupe counts moved by hits %d, misses %d; want 3, 5", dh, dm)
			}
			if time.Since(w.At) > time.Minute {
				t.Errorf("warm marker time %v, want about now", w.At)
			}
		})
	}
}

func TestFenceConcurrentClaimsExactlyOne(t *testing.T) {
	for name, f := range fences(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			base := fmt.Sprint(rand.Uint64())
			var acquired atomic.Int64
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < 100; i++ {
						st, err := f.Claim(ctx, Key(base, fmt.Sprint(i), "ih", "p"), fmt.Sprint("w", w), time.Minute)
						if err != nil {
							t.Error(err)
							return
						}
						if st == Acquired {
							acquired.Add(1)
						}
					}
				}(w)
			}
			wg.Wait()
			if got := acquired.Load(); got != 100 {
				t.Errorf("%d claims acquired by 8 concurrent writers over 100 keys, want exactly 100", got)
			}
		})
	}
}

func TestFenceKeySeparatesFields(t *testing.T) {
	if Key("ab", "c", "x", "p") == Key("a", "bc", "x", "p") {
		t.Errorf("fence key does not separate fields")
	}
	if len(Key("a", "b", "c", "d")) != 64 {
		t.Errorf("fence key is not a hex sha256")
	}
}

func TestFenceBadURL(t *testing.T) {
	if _, err := Open("memcached://h:1", ""); err == nil {
		t.Errorf("unknown scheme accepted")
	}
	if _, err := Open("", ""); err == nil {
		t.Errorf("no Redis and no fallback accepted")
	}
}
