package qdrant_test

import (
	"testing"

	"github.com/ragparity/ragparity/adapters/qdrant"
	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
	"github.com/ragparity/ragparity/verifier"
)

// Shards by scroll position: for any N (more shards than points too), the
// shards hand over every point exactly once, skipping over several pages
// of ids, and merge to the whole run's root; the scroll server returns
// each point's payload and vectors once in all.
func TestScanShardPositions(t *testing.T) {
	defer qdrant.SetSkipPage(7)()
	srv := qdranttest.Start(t)
	for _, kind := range []parity.IDKind{parity.IDInt, parity.IDUUID} {
		s := newStore(t, srv, "text", "content", "page_size", "10")
		const total = 53
		vectortest.Load(t, s, vectortest.Spec(kind), vectortest.Points(kind, total, 5))
		whole, err := verifier.HashStore(t.Context(), s, verifier.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 2, 3, 7, 60} {
			seen := map[string]int{}
			var parts []verifier.ShardRegion
			for i := 0; i < n; i++ {
				if err := s.ScanShard(t.Context(), i, n, func(p *parity.Point) error { seen[p.ID.S]++; return nil }); err != nil {
					t.Fatalf("%d/%d: %v", i, n, err)
				}
				sc, err := verifier.HashStore(t.Context(), s, verifier.Options{Shard: verifier.Shard{I: i, N: n}})
				if err != nil {
					t.Fatal(err)
				}
				if n > 1 && sc.Split != verifier.SplitRows {
					t.Fatalf("shard %d/%d split %q", i, n, sc.Split)
				}
				parts = append(parts, verifier.ShardOf("q", sc))
			}
			if len(seen) != total {
				t.Errorf("%v, %d shards: %d distinct points handed over, want %d", kind, n, len(seen), total)
			}
			for id, c := range seen {
				if c != 1 {
					t.Errorf("%v, %d shards: point %s handed over %d times", kind, n, id, c)
				}
			}
			if n == 1 {
				continue
			}
			m, _, err := verifier.MergeShards(whole.Buckets, parts, false)
			if err != nil || m.ContentRoot() != whole.ContentRoot() || m.Points != total {
				t.Errorf("%v, %d shards merged: %v, root %s points %d; whole %s", kind, n, err, m.ContentRoot().Hex(), m.Points, whole.ContentRoot().Hex())
			}
		}
	}
	// The scroll server counted what the shards' full pages returned.
	s := newStore(t, srv, "text", "content", "page_size", "10")
	vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 40, 6))
	srv.ResetScrolledPoints()
	for i := 0; i < 4; i++ {
		if err := s.ScanShard(t.Context(), i, 4, func(*parity.Point) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// Ids skipped: 0 + 10 + 20 + 30; points read in full: 40.
	if got, want := srv.ScrolledPoints(), int64(40+60); got != want {
		t.Errorf("4 shards of 40 points scrolled %d results (ids and full points), want %d", got, want)
	}
	if err := s.ScanShard(t.Context(), 4, 4, func(*parity.Point) error { return nil }); err == nil {
		t.Errorf("shard 4/4: no error")
	}
}
