package pgvector_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
	"github.com/ragparity/ragparity/verifier"
)

// A shard records the table and the WAL position its scan started at; a
// write between two shard runs changes the marker, so merge refuses them.
func TestSnapshotMarkerSeesWritesBetweenShards(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	s := open(t, tableURL(pgtest.URL(), uniqueTable()))
	t.Cleanup(func() { s.Drop(ctx) })
	pts := vectortest.Points(parity.IDString, 50, 3)
	vectortest.Load(t, s, vectortest.Spec(parity.IDString), pts)
	o := verifier.Options{Buckets: 64, Shard: verifier.Shard{I: 0, N: 2}}
	s0, err := verifier.HashStore(ctx, s, o)
	if err != nil {
		t.Fatal(err)
	}
	if s0.StoreID == "" || !strings.HasPrefix(s0.Snapshot, "lsn ") {
		t.Fatalf("store id %q snapshot %q: want both recorded", s0.StoreID, s0.Snapshot)
	}
	if err := s.Upsert(ctx, vectortest.Points(parity.IDString, 51, 4)[50:]); err != nil {
		t.Fatal(err)
	}
	o.Shard.I = 1
	s1, err := verifier.HashStore(ctx, s, o)
	if err != nil {
		t.Fatal(err)
	}
	if s1.StoreID != s0.StoreID {
		t.Errorf("store id changed: %q then %q", s0.StoreID, s1.StoreID)
	}
	parts := []verifier.ShardRegion{verifier.ShardOf("a", s0), verifier.ShardOf("a", s1)}
	if _, _, err := verifier.MergeShards(64, parts, false); err == nil {
		t.Fatalf("shards either side of a write merged")
	}
	if _, skew, err := verifier.MergeShards(64, parts, true); err != nil || len(skew) == 0 {
		t.Fatalf("--allow-skew: skew %v err %v", skew, err)
	}
	var _ adapters.SnapshotMarker = s.(adapters.SnapshotMarker)
}
