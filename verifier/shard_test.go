package verifier

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/parity"
)

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		s      string
		ok     bool
		lo, hi int
	}{{"0/4", true, 0, 1024}, {"3/4", true, 3072, 4096}, {"1/3", true, 1365, 2730}, {"4/4", false, 0, 0}, {"-1/2", false, 0, 0}, {"1/0", false, 0, 0}, {"01/2", false, 0, 0}, {"x", false, 0, 0}} {
		s, err := ParseShard(c.s)
		if (err == nil) != c.ok {
			t.Errorf("ParseShard(%q) error = %v, want ok=%v", c.s, err, c.ok)
			continue
		}
		if c.ok {
			if lo, hi := s.Range(4096); lo != c.lo || hi != c.hi {
				t.Errorf("%s range = [%d,%d), want [%d,%d)", c.s, lo, hi, c.lo, c.hi)
			}
		}
	}
}

// Shards taken at different snapshots of the store (or of different
// stores) would merge into a root no whole run ever had: refused unless
// allowSkew, which then reports it.
func TestMergeShardsRefusesSkew(t *testing.T) {
	part := func(i int, store, snap string) ShardRegion {
		sh := Shard{I: i, N: 2}
		lo, hi := sh.Range(64)
		return ShardRegion{Name: "a", Shard: sh.String(), Range: [2]int{lo, hi}, SettingsDigest: parity.Digest{1}.Hex(), EngineDigest: parity.Digest{2}.Hex(),
			Settings: map[string]any{"dim": 3}, Leaves: []LeafJSON{}, LeavesTolerant: []LeafJSON{}, StoreID: store, Snapshot: snap}
	}
	if _, skew, err := MergeShards(64, []ShardRegion{part(0, "pg:1/db/t", "lsn 0/10"), part(1, "pg:1/db/t", "lsn 0/10")}, false); err != nil || len(skew) != 0 {
		t.Fatalf("same snapshot: skew %v, err %v", skew, err)
	}
	for name, parts := range map[string][]ShardRegion{
		"OtherSnapshot": {part(0, "pg:1/db/t", "lsn 0/10"), part(1, "pg:1/db/t", "lsn 0/20")},
		"OtherStore":    {part(0, "pg:1/db/t", "lsn 0/10"), part(1, "pg:2/db/t", "lsn 0/10")},
		"OneUnmarked":   {part(0, "pg:1/db/t", "lsn 0/10"), part(1, "", "")},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := MergeShards(64, parts, false); err == nil || !strings.Contains(err.Error(), "--allow-skew") {
				t.Fatalf("merged shards of different snapshots: %v", err)
			}
			_, skew, err := MergeShards(64, parts, true)
			if err != nil || len(skew) == 0 {
				t.Fatalf("allow skew: skew %v, err %v; want it merged and reported", skew, err)
			}
		})
	}
}

// rowParts splits leaves over n row-range shards: every shard holds a
// share of every bucket, as a TID range shard of a table does.
func rowParts(t *testing.T, whole []parity.Leaf, pts [][]parity.Digest, n int) []ShardRegion {
	t.Helper()
	var parts []ShardRegion
	for i := 0; i < n; i++ {
		ls := make([]parity.Leaf, len(whole))
		for b := range pts {
			for j, d := range pts[b] {
				if j%n == i {
					ls[b].Add(d)
				}
			}
		}
		sh := Shard{I: i, N: n}
		parts = append(parts, ShardRegion{Name: "a", Shard: sh.String(), Range: [2]int{0, len(whole)}, Split: SplitRows,
			SettingsDigest: parity.Digest{1}.Hex(), EngineDigest: parity.Digest{2}.Hex(), Settings: map[string]any{"dim": 3},
			Leaves: leavesJSON(ls, 0, len(ls)), Points: int64(countOf(ls))})
	}
	return parts
}

func countOf(ls []parity.Leaf) (n uint64) {
	for _, l := range ls {
		n += l.Count
	}
	return n
}

// Row-range shards carry partial leaves of every bucket: merge adds them
// (count and sum mod 2^256) into the whole run's leaves, and refuses a
// missing shard, shards of different N, and a region whose shards were
// split different ways.
func TestMergeRowShards(t *testing.T) {
	const buckets, n = 64, 4
	whole := make([]parity.Leaf, buckets)
	pts := make([][]parity.Digest, buckets)
	for k := 0; k < 1000; k++ {
		var d parity.Digest
		for j := range d {
			d[j] = byte(k*31 + j*7 + k>>3)
		}
		d[0] = 0xff // sums overflow 2^256
		b := k % buckets
		pts[b] = append(pts[b], d)
		whole[b].Add(d)
	}
	parts := rowParts(t, whole, pts, n)
	m, _, err := MergeShards(buckets, parts, false)
	if err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	for b := range whole {
		if m.Leaves[b] != whole[b] {
			t.Fatalf("bucket %d: merged leaf %+v, whole %+v", b, m.Leaves[b], whole[b])
		}
	}
	if m.Points != 1000 || m.ContentRoot() != parity.Root(whole) {
		t.Fatalf("merged %d points, root %s; want 1000, %s", m.Points, m.ContentRoot(), parity.Root(whole))
	}
	bucketPart := func(i, n int) ShardRegion {
		sh := Shard{I: i, N: n}
		lo, hi := sh.Range(buckets)
		return ShardRegion{Name: "a", Shard: sh.String(), Range: [2]int{lo, hi}, SettingsDigest: parity.Digest{1}.Hex(), EngineDigest: parity.Digest{2}.Hex(),
			Settings: map[string]any{"dim": 3}, Leaves: leavesJSON(whole, lo, hi), Points: int64(countOf(whole[lo:hi]))}
	}
	// A shard file that lists one bucket twice (hand-edited, or two files
	// spliced): adding both would count its points twice.
	dupLeaf := func(p ShardRegion) ShardRegion {
		l := p.Leaves[1]
		l.Sum = parity.Digest{9}.Hex()
		p.Leaves = append(append([]LeafJSON(nil), p.Leaves...), l)
		return p
	}
	// A shard whose points do not add up to its leaves' counts.
	badPoints := func(p ShardRegion) ShardRegion { p.Points++; return p }
	// Counts that wrap around 2^64 to the shard's points.
	wrap := func(p ShardRegion) ShardRegion {
		p.Leaves = append([]LeafJSON(nil), p.Leaves...)
		p.Leaves[0].Count += 1 << 63
		p.Leaves[1].Count += 1 << 63
		return p
	}
	other := rowParts(t, whole, pts, 2)
	for name, c := range map[string]struct {
		parts []ShardRegion
		want  string
	}{
		"Missing":          {parts[:3], "missing shards [3]"},
		"Twice":            {[]ShardRegion{parts[0], parts[1], parts[2], parts[2]}, "given twice"},
		"OtherN":           {[]ShardRegion{parts[0], parts[1], other[1], parts[3]}, "different splits"},
		"Mixed":            {[]ShardRegion{parts[0], parts[1], parts[2], bucketPart(3, 4)}, "split by rows"},
		"MixedFirst":       {[]ShardRegion{bucketPart(0, 4), parts[1], parts[2], parts[3]}, "split by buckets"},
		"RowsRange":        {[]ShardRegion{parts[0], parts[1], parts[2], func() ShardRegion { p := parts[3]; p.Range = [2]int{48, 64}; return p }()}, "bucket range"},
		"BucketsNoOK":      {[]ShardRegion{bucketPart(0, 4), bucketPart(1, 4), bucketPart(2, 4)}, "missing shards [3]"},
		"RowsLeafTwice":    {[]ShardRegion{parts[0], dupLeaf(parts[1]), parts[2], parts[3]}, "shard 1/4: leaves: bucket " + fmt.Sprint(parts[1].Leaves[1].Bucket) + " listed twice"},
		"BucketsLeafTwice": {[]ShardRegion{bucketPart(0, 4), bucketPart(1, 4), dupLeaf(bucketPart(2, 4)), bucketPart(3, 4)}, "listed twice"},
		"RowsPoints":       {[]ShardRegion{parts[0], parts[1], badPoints(parts[2]), parts[3]}, fmt.Sprintf("shard 2/4: %d points, but its leaves count %d", parts[2].Points+1, parts[2].Points)},
		"RowsWrap":         {[]ShardRegion{parts[0], parts[1], parts[2], wrap(parts[3])}, "counts overflow"},
		"BucketsPoints":    {[]ShardRegion{badPoints(bucketPart(0, 4)), bucketPart(1, 4), bucketPart(2, 4), bucketPart(3, 4)}, "but its leaves count"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := MergeShards(buckets, c.parts, false); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("merged: err %v, want one saying %q", err, c.want)
			}
		})
	}
	// Bucket shards as before, and a v2 file without "split" is one.
	var bs []ShardRegion
	for i := 0; i < n; i++ {
		bs = append(bs, bucketPart(i, n))
	}
	if m, _, err := MergeShards(buckets, bs, false); err != nil || m.ContentRoot() != parity.Root(whole) {
		t.Fatalf("bucket shards: %v", err)
	}
}
