package vectortest

import (
	"context"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier"
)

// countingReader counts the points a store hands over, whole scans and
// bucket scans alike.
type countingReader struct {
	adapters.VectorReader
	rows int64
}

func (c *countingReader) Scan(ctx context.Context, fn func(p *parity.Point) error) error {
	return c.VectorReader.Scan(ctx, func(p *parity.Point) error { c.rows++; return fn(p) })
}

// countingBucketReader is a countingReader over a store that can push a
// bucket filter down.
type countingBucketReader struct{ *countingReader }

func (c countingBucketReader) ScanBuckets(ctx context.Context, f adapters.BucketFilter, fn func(p *parity.Point) error) error {
	return c.VectorReader.(adapters.BucketScanner).ScanBuckets(ctx, f, func(p *parity.Point) error { c.rows++; return fn(p) })
}

// countingRowReader is a countingBucketReader over a store that can also
// split itself by row range.
type countingRowReader struct {
	countingBucketReader
	rowSplit
}

// countingRowOnlyReader is a countingReader over a store that splits by
// row range and cannot filter by bucket (Qdrant).
type countingRowOnlyReader struct {
	*countingReader
	rowSplit
}

// rowSplit passes a RangeSharder's methods on, counting the rows.
type rowSplit struct{ c *countingReader }

func (r rowSplit) RowShards(ctx context.Context) (bool, error) {
	return r.c.VectorReader.(adapters.RangeSharder).RowShards(ctx)
}

// IDsUnique passes the store's answer on: row-range shards need it.
func (r rowSplit) IDsUnique(ctx context.Context) (bool, error) {
	if u, ok := r.c.VectorReader.(adapters.UniqueIDs); ok {
		return u.IDsUnique(ctx)
	}
	return false, nil
}

func (r rowSplit) ScanShard(ctx context.Context, i, n int, fn func(p *parity.Point) error) error {
	return r.c.VectorReader.(adapters.RangeSharder).ScanShard(ctx, i, n, func(p *parity.Point) error { r.c.rows++; return fn(p) })
}

func counting(r adapters.VectorReader) (adapters.VectorReader, *countingReader) {
	c := &countingReader{VectorReader: r}
	_, rows := r.(adapters.RangeSharder)
	_, buckets := r.(adapters.BucketScanner)
	switch {
	case rows && buckets:
		return countingRowReader{countingBucketReader{c}, rowSplit{c}}, c
	case rows:
		return countingRowOnlyReader{c, rowSplit{c}}, c
	case buckets:
		return countingBucketReader{c}, c
	}
	return c, c
}

// runShards checks `hash --shard i/N`: the shards merge to exactly the
// whole run's INDEX_HASH and tolerant root, and each shard reads only its
// own rows, unless the harness documents that the backend cannot filter by
// bucket (ShardsReadAll): then each shard reads the whole collection. A
// backend that splits by row range (ShardsByRows) must say so in the
// shards' Split.
func runShards(t *testing.T, h Harness) {
	s := h.New(t)
	const n, shards = 600, 4
	Load(t, s, Spec(h.IDKinds[0]), Points(h.IDKinds[0], n, 11))
	whole, err := verifier.HashStore(ctx(t), s, verifier.Options{Tolerant: true})
	if err != nil {
		t.Fatalf("HashStore: %v", err)
	}
	var parts []verifier.ShardRegion
	var total int64
	for i := 0; i < shards; i++ {
		r, c := counting(s)
		sc, err := verifier.HashStore(ctx(t), r, verifier.Options{Tolerant: true, Shard: verifier.Shard{I: i, N: shards}})
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		wantSplit := verifier.SplitBuckets
		if h.ShardsByRows {
			wantSplit = verifier.SplitRows
		}
		if sc.Split != wantSplit {
			t.Errorf("shard %d: split %q, the harness documents %q", i, sc.Split, wantSplit)
		}
		if sc.RowsRead != c.rows {
			t.Errorf("shard %d: Scan.RowsRead = %d, the store handed over %d", i, sc.RowsRead, c.rows)
		}
		if h.ShardsReadAll {
			if c.rows != n {
				t.Errorf("shard %d read %d rows: the harness documents that every shard reads all %d", i, c.rows, n)
			}
		} else if c.rows != sc.Points {
			t.Errorf("shard %d read %d rows for its %d points: the bucket filter was not pushed down to the store", i, c.rows, sc.Points)
		}
		total += c.rows
		parts = append(parts, verifier.ShardOf("r", sc))
	}
	want := int64(n)
	if h.ShardsReadAll {
		want = n * shards
	}
	if total != want {
		t.Errorf("%d shards read %d rows in all, want %d (a table of %d)", shards, total, want, n)
	}
	m, _, err := verifier.MergeShards(whole.Buckets, parts, false)
	if err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	m.SettingsDigest = whole.SettingsDigest
	if m.Points != n || m.IndexHash() != whole.IndexHash() || m.ContentRootTolerant() != whole.ContentRootTolerant() {
		t.Errorf("merged shards: %d points, INDEX_HASH %s, tolerant root %s; whole run %d, %s, %s",
			m.Points, m.IndexHash(), m.ContentRootTolerant(), whole.Points, whole.IndexHash(), whole.ContentRootTolerant())
	}
}
