package pgvector

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/adapters"
)

// The bucket predicate of a shard scan computes the id's SHA-256 once per
// row: inlined into the predicate, PostgreSQL evaluated it once per
// reference (four times a row), which made every shard's server scan
// several times dearer than the rows it ships.
func TestBucketPredicateHashesOncePerRow(t *testing.T) {
	base := os.Getenv("RAGPARITY_PG_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	table := fmt.Sprintf("rp_test_%08x", rand.Uint32())
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("table", table)
	q.Set("id", "id")
	q.Set("vector", "embedding")
	u.RawQuery = q.Encode()
	vs, err := Open(ctx, u)
	if err != nil {
		t.Skipf("PostgreSQL: %v", err)
	}
	s := vs.(*Store)
	defer s.Close()
	if _, err := s.pool.Exec(ctx, "CREATE TABLE "+table+" (id bigint PRIMARY KEY, embedding vector(2))"); err != nil {
		t.Skipf("PostgreSQL: %v", err)
	}
	defer s.pool.Exec(context.Background(), "DROP TABLE "+table)
	ti, err := s.inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []adapters.BucketFilter{{Buckets: 4096, Keep: []int{0, 1, 2, 3}}, {Buckets: 4096, Keep: []int{5, 70, 900}}} {
		cond, err := s.bucketCond(f)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		rows, err := s.pool.Query(ctx, "EXPLAIN (VERBOSE) "+s.selectSQL(ti, cond, ""))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			rows.Scan(&line)
			plan = append(plan, line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(strings.Join(plan, "\n"), "sha256("); n != 1 {
			t.Errorf("keep %v: the plan computes sha256 %d times a row, want once:\n%s", f.Keep, n, strings.Join(plan, "\n"))
		}
	}
}
