package verifier

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ragparity/ragparity/parity"
)

// ShardFormat names the shard output format.
const ShardFormat = "ragparity-shard/v2" // v2: settings digest v2, engine_digest

// How a shard's points were chosen (Scan.Split, ShardRegion.Split).
const (
	// SplitBuckets: shard i of N holds the points of its bucket range
	// (Shard.Range); merge takes each shard's leaves for its range. A
	// ragparity-shard/v2 file without "split" is of this kind.
	SplitBuckets = "buckets"
	// SplitRows: shard i of N holds the points of a physical row range of
	// the store (adapters.RangeSharder), in any bucket: its range is the
	// whole [0, buckets) and merge adds the N shards' leaves.
	SplitRows = "rows"
)

// LeafJSON is a non-empty leaf in a shard output.
type LeafJSON struct {
	Bucket int    `json:"b"`
	Count  uint64 `json:"n"`
	Sum    string `json:"sum"`
}

// ShardRegion is one region's part of a shard run.
type ShardRegion struct {
	Name  string `json:"name"`
	Shard string `json:"shard"`
	Range [2]int `json:"range"`
	// Split is SplitRows for a row-range shard, absent for a bucket-range
	// one (SplitBuckets).
	Split          string         `json:"split,omitempty"`
	SettingsDigest string         `json:"settings_digest"`
	Settings       map[string]any `json:"settings"`
	SettingsInfo   map[string]any `json:"settings_info,omitempty"`
	EngineDigest   string         `json:"engine_digest"`
	SettingsEngine map[string]any `json:"settings_engine"`
	Points         int64          `json:"points"`
	ElapsedMS      int64          `json:"elapsed_ms"`
	Leaves         []LeafJSON     `json:"leaves"`
	// LeavesTolerant is present only when the shard was hashed with
	// --tolerant (hash.tolerant); merge gives a tolerant root only when
	// every shard holding points has them.
	LeavesTolerant []LeafJSON `json:"leaves_tolerant,omitempty"`
	// StoreID and Snapshot: the store's identity and snapshot marker when
	// the shard's scan started (adapters.SnapshotMarker), "" when it has none.
	StoreID  string `json:"store_id,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ShardJSON is the output of `hash --shard i/N --json`.
type ShardJSON struct {
	Format    string        `json:"format"`
	Release   string        `json:"release"`
	Shard     string        `json:"shard"`
	Buckets   int           `json:"buckets"`
	Tolerance float64       `json:"tolerance"`
	Regions   []ShardRegion `json:"regions"`
}

func leavesJSON(ls []parity.Leaf, lo, hi int) []LeafJSON {
	out := []LeafJSON{}
	for b := lo; b < hi; b++ {
		if ls[b].Count > 0 {
			out = append(out, LeafJSON{b, ls[b].Count, ls[b].Sum.Hex()})
		}
	}
	return out
}

// ShardOf exports a scan's shard leaves.
func ShardOf(name string, s *Scan) ShardRegion {
	lo, hi := s.Shard.Range(s.Buckets)
	split := ""
	if s.Split == SplitRows {
		lo, hi, split = 0, s.Buckets, SplitRows
	}
	return ShardRegion{Name: name, Shard: s.Shard.String(), Range: [2]int{lo, hi}, Split: split,
		SettingsDigest: s.SettingsDigest.Hex(), Settings: s.Settings.Hashed, SettingsInfo: s.Settings.Info,
		EngineDigest: s.EngineDigest.Hex(), SettingsEngine: s.Settings.Engine, Points: s.Points, ElapsedMS: s.Elapsed.Milliseconds(), StoreID: s.StoreID, Snapshot: s.Snapshot,
		Leaves: leavesJSON(s.Leaves, lo, hi), LeavesTolerant: tolerantJSON(s, lo, hi)}
}

func tolerantJSON(s *Scan, lo, hi int) []LeafJSON {
	if !s.HasTolerant() {
		return nil
	}
	return leavesJSON(s.LeavesTolerant, lo, hi)
}

// MergeShards combines one region's shard outputs into the scan a whole run
// would give. Every shard i of N must be present exactly once, with the
// same settings digest, store identity and snapshot marker. Shards of
// different stores or snapshots are refused unless allowSkew; then they are
// merged and each difference is returned in skew. Bucket-range shards
// each give the leaves of their range; row-range shards (Split SplitRows)
// each give partial leaves of every bucket, which are added; a region's
// shards must all be of one kind.
func MergeShards(buckets int, parts []ShardRegion, allowSkew bool) (s *Scan, skew []string, err error) {
	if len(parts) > 0 {
		p0 := parts[0]
		for _, p := range parts[1:] {
			if p.StoreID != p0.StoreID {
				skew = append(skew, fmt.Sprintf("region %s: shard %s read store %q, shard %s store %q", p.Name, p0.Shard, p0.StoreID, p.Shard, p.StoreID))
			}
			if p.Snapshot != p0.Snapshot {
				skew = append(skew, fmt.Sprintf("region %s: shard %s read snapshot %q, shard %s snapshot %q", p.Name, p0.Shard, p0.Snapshot, p.Shard, p.Snapshot))
			}
		}
		if len(skew) > 0 && !allowSkew {
			return nil, nil, fmt.Errorf("merge: region %s: shards of different stores or snapshots (%s): the merged root would be one no whole run had; re-run the shards together, or pass --allow-skew to merge anyway (reported)", p0.Name, strings.Join(skew, "; "))
		}
	}
	s, err = mergeShards(buckets, parts)
	if err != nil {
		return nil, nil, err
	}
	return s, skew, nil
}

func mergeShards(buckets int, parts []ShardRegion) (*Scan, error) {
	if !parity.ValidBuckets(buckets) {
		return nil, fmt.Errorf("merge: bad bucket count %d", buckets)
	}
	if len(parts) == 0 {
		return nil, errors.New("merge: no shards")
	}
	name := parts[0].Name
	var n int
	split := splitOf(parts[0])
	seen := map[int]bool{}
	s := &Scan{Buckets: buckets, Leaves: make([]parity.Leaf, buckets), LeavesTolerant: make([]parity.Leaf, buckets)}
	// The merged scan has a tolerant root only when some shard carries
	// tolerant leaves and every shard with points does.
	tolerant, anyTolerant := true, false
	for _, p := range parts {
		if p.Error != "" {
			return nil, fmt.Errorf("merge: region %s shard %s failed: %s", name, p.Shard, p.Error)
		}
		sh, err := ParseShard(p.Shard)
		if err != nil || sh.N == 0 {
			return nil, fmt.Errorf("merge: region %s: bad shard %q", name, p.Shard)
		}
		if n == 0 {
			n = sh.N
		}
		if sh.N != n {
			return nil, fmt.Errorf("merge: region %s: shards of different splits (%d and %d)", name, n, sh.N)
		}
		if seen[sh.I] {
			return nil, fmt.Errorf("merge: region %s: shard %s given twice", name, p.Shard)
		}
		seen[sh.I] = true
		if k := splitOf(p); k != split {
			return nil, fmt.Errorf("merge: region %s: shard %s split by %s, shard %s by %s: shards of one run split one way", name, parts[0].Shard, split, p.Shard, k)
		}
		lo, hi := sh.Range(buckets)
		if split == SplitRows {
			lo, hi = 0, buckets
		}
		if p.Range != [2]int{lo, hi} {
			return nil, fmt.Errorf("merge: region %s shard %s: bucket range %v, want [%d %d] (different bucket count?)", name, p.Shard, p.Range, lo, hi)
		}
		d, err := parity.ParseDigest(p.SettingsDigest)
		if err != nil {
			return nil, fmt.Errorf("merge: region %s shard %s: settings_digest: %w", name, p.Shard, err)
		}
		ed, err := parity.ParseDigest(p.EngineDigest)
		if err != nil {
			return nil, fmt.Errorf("merge: region %s shard %s: engine_digest: %w", name, p.Shard, err)
		}
		if s.Settings.Hashed == nil {
			s.SettingsDigest, s.EngineDigest = d, ed
			s.Settings = parity.Settings{Hashed: p.Settings, Engine: p.SettingsEngine, Info: p.SettingsInfo}
			if s.Settings.Engine == nil {
				s.Settings.Engine = map[string]any{}
			}
		} else if d != s.SettingsDigest {
			return nil, fmt.Errorf("merge: region %s: shard %s has a different settings digest (the store changed between shard runs?)", name, p.Shard)
		} else if ed != s.EngineDigest {
			return nil, fmt.Errorf("merge: region %s: shard %s has a different engine digest (the index changed between shard runs?)", name, p.Shard)
		}
		if len(p.LeavesTolerant) > 0 {
			anyTolerant = true
		} else if len(p.Leaves) > 0 {
			tolerant = false
		}
		for _, set := range []struct {
			field string
			in    []LeafJSON
			out   []parity.Leaf
		}{{"leaves", p.Leaves, s.Leaves}, {"leaves_tolerant", p.LeavesTolerant, s.LeavesTolerant}} {
			// Each bucket once per shard, and the shard's points are its
			// leaves' counts: a file that repeats a bucket (hand-edited,
			// two files spliced) would otherwise add its points twice.
			listed := make(map[int]bool, len(set.in))
			var count uint64
			for _, l := range set.in {
				if l.Bucket < lo || l.Bucket >= hi {
					return nil, fmt.Errorf("merge: region %s shard %s: %s: bucket %d outside its range", name, p.Shard, set.field, l.Bucket)
				}
				if listed[l.Bucket] {
					return nil, fmt.Errorf("merge: region %s shard %s: %s: bucket %d listed twice", name, p.Shard, set.field, l.Bucket)
				}
				listed[l.Bucket] = true
				sum, err := parity.ParseDigest(l.Sum)
				if err != nil {
					return nil, fmt.Errorf("merge: region %s shard %s bucket %d: %w", name, p.Shard, l.Bucket, err)
				}
				if count+l.Count < count {
					return nil, fmt.Errorf("merge: region %s shard %s: %s: counts overflow at bucket %d", name, p.Shard, set.field, l.Bucket)
				}
				set.out[l.Bucket].Merge(parity.Leaf{Count: l.Count, Sum: sum})
				count += l.Count
			}
			if len(set.in) > 0 || set.field == "leaves" {
				if p.Points < 0 || uint64(p.Points) != count {
					return nil, fmt.Errorf("merge: region %s shard %s: %d points, but its %s count %d", name, p.Shard, p.Points, set.field, count)
				}
			}
		}
		s.Points += p.Points
		s.Elapsed = max(s.Elapsed, msDuration(p.ElapsedMS))
	}
	var missing []int
	for i := 0; i < n; i++ {
		if !seen[i] {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		sort.Ints(missing)
		return nil, fmt.Errorf("merge: region %s: missing shards %v of %d", name, missing, n)
	}
	if !tolerant || !anyTolerant {
		s.LeavesTolerant = nil
	}
	return s, nil
}

// Shard selects a contiguous range of buckets: shard I of N holds buckets
// [I*B/N, (I+1)*B/N). N == 0 means the whole index.
type Shard struct{ I, N int }

// Range returns the shard's bucket range [lo, hi).
func (s Shard) Range(buckets int) (lo, hi int) {
	if s.N <= 0 {
		return 0, buckets
	}
	return s.I * buckets / s.N, (s.I + 1) * buckets / s.N
}

func (s Shard) String() string {
	if s.N <= 0 {
		return "all"
	}
	return fmt.Sprintf("%d/%d", s.I, s.N)
}

// ParseShard parses "i/N" (0 <= i < N).
func ParseShard(v string) (Shard, error) {
	var s Shard
	if v == "" {
		return s, nil
	}
	if _, err := fmt.Sscanf(v, "%d/%d", &s.I, &s.N); err != nil || s.N < 1 || s.I < 0 || s.I >= s.N || fmt.Sprintf("%d/%d", s.I, s.N) != v {
		return Shard{}, fmt.Errorf("--shard %q: want i/N with 0 <= i < N, e.g. 0/4", v)
	}
	return s, nil
}

// splitOf is how a shard region was split; "" (a v2 file from before
// row-range shards) is SplitBuckets.
func splitOf(p ShardRegion) string {
	if p.Split == "" {
		return SplitBuckets
	}
	return p.Split
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
