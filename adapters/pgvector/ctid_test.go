package pgvector_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
	"github.com/ragparity/ragparity/verifier"
)

func ctidTable() string { return fmt.Sprintf("ctid_%08x", rand.Uint32()) }

// rowCounter counts the points each kind of scan hands over.
type rowCounter struct {
	adapters.VectorStore
	rows, shardRows, bucketRows int64
}

func (c *rowCounter) IDsUnique(ctx context.Context) (bool, error) {
	return c.VectorStore.(adapters.UniqueIDs).IDsUnique(ctx)
}

func (c *rowCounter) RowShards(ctx context.Context) (bool, error) {
	return c.VectorStore.(adapters.RangeSharder).RowShards(ctx)
}

func (c *rowCounter) ScanShard(ctx context.Context, i, n int, fn func(p *parity.Point) error) error {
	return c.VectorStore.(adapters.RangeSharder).ScanShard(ctx, i, n, func(p *parity.Point) error { c.rows++; c.shardRows++; return fn(p) })
}

func (c *rowCounter) ScanBuckets(ctx context.Context, f adapters.BucketFilter, fn func(p *parity.Point) error) error {
	return c.VectorStore.(adapters.BucketScanner).ScanBuckets(ctx, f, func(p *parity.Point) error { c.rows++; c.bucketRows++; return fn(p) })
}

func (c *rowCounter) Scan(ctx context.Context, fn func(p *parity.Point) error) error {
	return c.VectorStore.Scan(ctx, func(p *parity.Point) error { c.rows++; return fn(p) })
}

// A table with a primary key on the id is hashed in N row-range shards
// (heap block ranges): each row is handed to exactly one shard, every
// shard gets some, and the shards' partial leaves add up to exactly the
// whole run's leaves and INDEX_HASH, through the shard JSON and merge.
func TestRowRangeShards(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	const n, shards = 3000, 4
	s := open(t, tableURL(pgtest.URL(), ctidTable()))
	t.Cleanup(func() { s.Drop(context.Background()) })
	vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, n, 21))
	whole, err := verifier.HashStore(ctx, s, verifier.Options{Tolerant: true})
	if err != nil {
		t.Fatal(err)
	}
	var parts []verifier.ShardRegion
	var total int64
	for i := 0; i < shards; i++ {
		c := &rowCounter{VectorStore: s}
		sc, err := verifier.HashStore(ctx, c, verifier.Options{Tolerant: true, Shard: verifier.Shard{I: i, N: shards}})
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		if sc.Split != verifier.SplitRows || c.shardRows != c.rows {
			t.Fatalf("shard %d: split %q, %d of its %d rows through ScanShard; want a row-range shard", i, sc.Split, c.shardRows, c.rows)
		}
		if c.rows == 0 || c.rows == n || sc.Points != c.rows {
			t.Errorf("shard %d: the store handed over %d rows for %d points (a table of %d)", i, c.rows, sc.Points, n)
		}
		total += c.rows
		parts = append(parts, verifier.ShardOf("r", sc))
	}
	if total != n {
		t.Errorf("%d shards were handed %d rows in all, want the table's %d once each", shards, total, n)
	}
	for _, p := range parts {
		if p.Split != verifier.SplitRows || p.Range != [2]int{0, whole.Buckets} {
			t.Fatalf("shard %s: split %q range %v, want rows over [0 %d]", p.Shard, p.Split, p.Range, whole.Buckets)
		}
	}
	m, _, err := verifier.MergeShards(whole.Buckets, parts, false)
	if err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	for b := range whole.Leaves {
		if m.Leaves[b] != whole.Leaves[b] || m.LeavesTolerant[b] != whole.LeavesTolerant[b] {
			t.Fatalf("bucket %d: merged leaf %v / %v, whole run %v / %v", b, m.Leaves[b], m.LeavesTolerant[b], whole.Leaves[b], whole.LeavesTolerant[b])
		}
	}
	if m.Points != n || m.IndexHash() != whole.IndexHash() || m.ContentRootTolerant() != whole.ContentRootTolerant() {
		t.Errorf("merged: %d points, INDEX_HASH %s; whole run %d, %s", m.Points, m.IndexHash(), whole.Points, whole.IndexHash())
	}
	if _, _, err := verifier.MergeShards(whole.Buckets, parts[1:], false); err == nil {
		t.Error("merged row-range shards without shard 0/4")
	}
}

// Without a unique index on the id, two copies of an id may sit in
// different row ranges, where no shard's duplicate check would see both:
// shards then split by bucket (every copy of an id lands in one shard),
// and the copies are still reported.
func TestRowRangeShardsNeedUniqueIDs(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	table := ctidTable()
	id := pgx.Identifier{table}.Sanitize()
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+id) })
	const n, shards = 3000, 4
	for _, q := range []string{
		"CREATE TABLE " + id + " (id bigint, embedding vector(8), metadata jsonb, content text)",
		fmt.Sprintf("INSERT INTO %s SELECT g, ('[' || array_to_string(array_fill(g::float4, '{8}'), ',') || ']')::vector, '{}', repeat('x', 200) FROM generate_series(1, %d) g", id, n),
		// Second copies of the first ids, at the end of the heap.
		"INSERT INTO " + id + " SELECT id, embedding, metadata, 'copy' FROM " + id + " WHERE id <= 20",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// The copies of id 1 are in the first and the last quarter of the heap:
	// row-range shards would put them in different shards.
	var first, last, blocks int64
	if err := conn.QueryRow(ctx, "SELECT min((ctid::text::point)[0])::bigint, max((ctid::text::point)[0])::bigint, pg_relation_size('"+table+"') / current_setting('block_size')::bigint FROM "+id+" WHERE id = 1").Scan(&first, &last, &blocks); err != nil {
		t.Fatal(err)
	}
	if first >= blocks/shards || last < blocks*(shards-1)/shards {
		t.Fatalf("id 1 on blocks %d and %d of %d: the test wants them in different quarters", first, last, blocks)
	}
	s := open(t, tableURL(pgtest.URL(), table))
	if ok, err := s.(adapters.RangeSharder).RowShards(ctx); err != nil || !ok {
		t.Fatalf("RowShards = %v, %v: a plain table can be split by rows", ok, err)
	}
	dups := map[string]int{}
	var total int64
	for i := 0; i < shards; i++ {
		c := &rowCounter{VectorStore: s}
		sc, err := verifier.HashStore(ctx, c, verifier.Options{Shard: verifier.Shard{I: i, N: shards}})
		if err != nil {
			t.Fatal(err)
		}
		if sc.Split != verifier.SplitBuckets || c.shardRows != 0 || c.bucketRows != c.rows {
			t.Fatalf("shard %d: split %q, %d rows by row range, %d by bucket: want bucket shards for non-unique ids", i, sc.Split, c.shardRows, c.bucketRows)
		}
		total += c.rows
		for k, v := range sc.Duplicates {
			dups[k] += v
		}
	}
	if total != n+20 {
		t.Errorf("shards read %d rows, want %d", total, n+20)
	}
	if len(dups) != 20 || dups["1"] != 2 || dups["20"] != 2 {
		t.Errorf("duplicates reported by the shards: %v, want ids 1..20 twice each", dups)
	}
}

// A view has no heap blocks of its own: it is not split by rows.
func TestRowShardsNotForViews(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	table, view := ctidTable(), ctidTable()
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP VIEW IF EXISTS "+view)
		conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+table)
	})
	for _, q := range []string{"CREATE TABLE " + table + " (id bigint PRIMARY KEY, embedding vector(2), metadata jsonb, content text)",
		"CREATE VIEW " + view + " AS SELECT * FROM " + table} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]bool{table: true, view: false} {
		s := open(t, tableURL(pgtest.URL(), name))
		if ok, err := s.(adapters.RangeSharder).RowShards(ctx); err != nil || ok != want {
			t.Errorf("%s: RowShards = %v, %v; want %v", name, ok, err, want)
		}
	}
}
