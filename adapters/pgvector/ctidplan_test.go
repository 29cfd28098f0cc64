package pgvector

import (
	"context"
	"strings"
	"testing"
)

// Each row-range shard's scan is a TID Range Scan over its own blocks, not
// a sequential scan of the whole table filtered afterwards; and the
// shards' block ranges cover the table once, the last one open ended.
func TestShardScanIsTidRangeScan(t *testing.T) {
	s, ti := planTable(t, "ctid")
	ctx := context.Background()
	table := s.table
	if _, err := s.pool.Exec(ctx, "INSERT INTO "+table+" SELECT g, '[1,2]' FROM generate_series(1, 5000) g; ANALYZE "+table); err != nil {
		t.Fatal(err)
	}
	var blocks int64
	if err := s.pool.QueryRow(ctx, "SELECT pg_relation_size('"+table+"') / current_setting('block_size')::bigint").Scan(&blocks); err != nil {
		t.Fatal(err)
	}
	if blocks < 8 {
		t.Fatalf("table of %d blocks: want several per shard", blocks)
	}
	const n = 4
	var total int64
	for i := 0; i < n; i++ {
		cond := tidCond(blocks, i, n)
		p := explain(t, s, s.selectSQL(ti, "", cond))
		if !strings.Contains(p, "Tid Range Scan") || strings.Contains(p, "Seq Scan") {
			t.Errorf("shard %d/%d (%s): want a Tid Range Scan, plan:\n%s", i, n, cond, p)
		}
		var c int64
		if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM ("+s.selectSQL(ti, "", cond)+") x").Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c == 0 {
			t.Errorf("shard %d/%d (%s): no rows", i, n, cond)
		}
		total += c
	}
	if total != 5000 {
		t.Errorf("the %d shards' ranges hold %d rows, want 5000", n, total)
	}
	// Pages added after the count belong to the last shard.
	if c := tidCond(blocks, n-1, n); strings.Contains(c, "<") {
		t.Errorf("last shard %q: want an open-ended range", c)
	}
}
