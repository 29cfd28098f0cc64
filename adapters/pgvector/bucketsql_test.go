package pgvector

import (
	"strings"
	"testing"

	"github.com/ragparity/ragparity/adapters"
)

// The bucket predicate of a shard scan computes the id's SHA-256 once per
// row: inlined into the predicate, PostgreSQL evaluated it once per
// reference (four times a row), which made every shard's server scan
// several times dearer than the rows it ships.
func TestBucketPredicateHashesOncePerRow(t *testing.T) {
	s, ti := planTable(t, "rp_test")
	for _, f := range []adapters.BucketFilter{{Buckets: 4096, Keep: []int{0, 1, 2, 3}}, {Buckets: 4096, Keep: []int{5, 70, 900}}} {
		cond, err := s.bucketCond(f)
		if err != nil {
			t.Fatal(err)
		}
		plan := explain(t, s, s.selectSQL(ti, cond, ""))
		if n := strings.Count(plan, "sha256("); n != 1 {
			t.Errorf("keep %v: the plan computes sha256 %d times a row, want once:\n%s", f.Keep, n, plan)
		}
	}
}
