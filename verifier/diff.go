package verifier

import (
	"fmt"
	"sort"

	"github.com/ragparity/ragparity/parity"
)

// Changed is an id present in both regions whose content differs.
type Changed struct {
	ID string `json:"id"`
	// Fields names what differs: "vector", "payload", "text".
	Fields []string `json:"fields"`
	// VectorWithinTolerance is set when the vector differs: true when it is
	// numerically equivalent within the tolerance (tolerant digests agree).
	VectorWithinTolerance *bool `json:"vector_within_tolerance,omitempty"`
}

// DiffResult says which ids and settings differ between two regions.
type DiffResult struct {
	From       string    `json:"from"`
	To         string    `json:"to"`
	Equal      bool      `json:"equal"`
	OnlyInFrom []string  `json:"only_in_from"`
	OnlyInTo   []string  `json:"only_in_to"`
	Changed    []Changed `json:"changed"`
	// SettingsDiff lists semantic (hashed) and info settings that differ;
	// EngineDiff the engine settings, which leave INDEX_HASH alone (a
	// separate finding: EngineEqual).
	SettingsDiff []parity.SettingDiff `json:"settings_diff"`
	EngineDiff   []parity.SettingDiff `json:"engine_diff"`
	// DuplicatesFrom and DuplicatesTo are the ids each region returned more
	// than once, with how many times (a duplicated id is not "only in"
	// either side).
	DuplicatesFrom   map[string]int `json:"duplicates_from,omitempty"`
	DuplicatesTo     map[string]int `json:"duplicates_to,omitempty"`
	EngineEqual      bool           `json:"engine_equal"`
	BucketsCompared  int            `json:"buckets_compared"`
	BucketsDiffering int            `json:"buckets_differing"`
	// PointsExamined counts the point records compared (both sides): only
	// those of differing buckets.
	PointsExamined int64 `json:"points_examined"`
	// ViaFrom and ViaTo say how each region was read: "direct" or
	// "agent <url>" (Scan.Via).
	ViaFrom string `json:"via_from,omitempty"`
	ViaTo   string `json:"via_to,omitempty"`
}

// BucketRecords reads back the per-point digests of chosen buckets: a
// Spill, or a regional agent's signed records (agent.Client).
type BucketRecords interface {
	ReadBuckets(want map[int]bool, fn func(r *SpillRecord)) error
	Close() error
}

// Diff compares two scans leaf by leaf and, for differing buckets only,
// point by point from their spills (or an agent's records).
func Diff(from, to string, a, b *Scan, sa, sb BucketRecords) (*DiffResult, error) {
	if a.Buckets != b.Buckets {
		return nil, fmt.Errorf("diff: bucket counts differ (%d vs %d)", a.Buckets, b.Buckets)
	}
	r := &DiffResult{From: from, To: to, OnlyInFrom: []string{}, OnlyInTo: []string{}, Changed: []Changed{},
		SettingsDiff: []parity.SettingDiff{}, EngineDiff: []parity.SettingDiff{}, EngineEqual: a.EngineDigest == b.EngineDigest,
		DuplicatesFrom: a.Duplicates, DuplicatesTo: b.Duplicates, ViaFrom: a.Via, ViaTo: b.Via}
	for _, d := range parity.DiffSettings(a.Settings, b.Settings) {
		if d.Engine {
			r.EngineDiff = append(r.EngineDiff, d)
		} else {
			r.SettingsDiff = append(r.SettingsDiff, d)
		}
	}
	want := map[int]bool{}
	for i := range a.Leaves {
		r.BucketsCompared++
		if a.Leaves[i] != b.Leaves[i] {
			want[i] = true
		}
	}
	r.BucketsDiffering = len(want)
	if len(want) > 0 {
		left := map[string]SpillRecord{}
		if err := sa.ReadBuckets(want, func(rec *SpillRecord) {
			left[rec.ID.S] = *rec
			r.PointsExamined++
		}); err != nil {
			return nil, err
		}
		seenTo := map[string]bool{}
		if err := sb.ReadBuckets(want, func(rec *SpillRecord) {
			r.PointsExamined++
			if seenTo[rec.ID.S] {
				return // a further copy of a duplicated id
			}
			seenTo[rec.ID.S] = true
			l, ok := left[rec.ID.S]
			if !ok {
				r.OnlyInTo = append(r.OnlyInTo, rec.ID.S)
				return
			}
			delete(left, rec.ID.S)
			var c Changed
			if l.Digests.Vectors != rec.Digests.Vectors {
				c.Fields = append(c.Fields, "vector")
				w := l.Digests.VectorsTolerant == rec.Digests.VectorsTolerant
				c.VectorWithinTolerance = &w
			}
			if l.Digests.Payload != rec.Digests.Payload {
				c.Fields = append(c.Fields, "payload")
			}
			if l.Digests.Text != rec.Digests.Text {
				c.Fields = append(c.Fields, "text")
			}
			if len(c.Fields) > 0 {
				c.ID = rec.ID.S
				r.Changed = append(r.Changed, c)
			}
		}); err != nil {
			return nil, err
		}
		for id := range left {
			r.OnlyInFrom = append(r.OnlyInFrom, id)
		}
	}
	sort.Strings(r.OnlyInFrom)
	sort.Strings(r.OnlyInTo)
	sort.Slice(r.Changed, func(i, j int) bool { return r.Changed[i].ID < r.Changed[j].ID })
	// Equal: the same INDEX_HASH content and semantic settings; an engine
	// difference alone does not make two regions differ.
	r.Equal = len(want) == 0 && a.SettingsDigest == b.SettingsDigest
	return r, nil
}
