package gate

import "sync"

// Detail is what a verification found beyond the verdict's checks: the
// per-question probe results, the Merkle buckets and blob keys that differ.
// Reports draw it; it is not signed.
type Detail struct {
	// Probes is the per-question detail behind the probes check.
	Probes *ProbeDetail
	// BucketMaps are the Merkle buckets that differ, one per pair of
	// regions compared (reference first).
	BucketMaps []BucketMap
	// BlobDiffs are the blob manifest differences, one per pair.
	BlobDiffs []BlobDiff

	mu sync.Mutex // checks add detail concurrently
}

// addBlobDiff, addBucketMap and setProbes are how the concurrent checks
// add to a Detail.
func (d *Detail) addBlobDiff(b BlobDiff) {
	d.mu.Lock()
	d.BlobDiffs = append(d.BlobDiffs, b)
	d.mu.Unlock()
}

func (d *Detail) addBucketMap(b BucketMap) {
	d.mu.Lock()
	d.BucketMaps = append(d.BucketMaps, b)
	d.mu.Unlock()
}

func (d *Detail) setProbes(p *ProbeDetail) {
	d.mu.Lock()
	d.Probes = p
	d.mu.Unlock()
}

// ProbeDetail is the gold-set probe detail of a verdict.
type ProbeDetail struct {
	// DriftThreshold bounds a region's drift against the reference
	// (metrics.md: 0.03).
	DriftThreshold float64 `json:"drift_threshold"`
	// DeltaSMax is the per-question quality floor on ΔS (metrics.md: 0.45);
	// 0 draws no line.
	DeltaSMax float64 `json:"delta_s_max,omitempty"`
	// Seeds names the seeds, in the order of QuestionDetail.Lambda's
	// states; empty labels them 1, 2, ...
	Seeds     []uint64         `json:"seeds,omitempty"`
	Questions []QuestionDetail `json:"questions"`
}

// QuestionDetail is one gold question's probe result.
type QuestionDetail struct {
	ID string `json:"id"`
	// DeltaS is ΔS per region.
	DeltaS map[string]float64 `json:"delta_s"`
	// Drift is the question's largest drift.
	Drift float64 `json:"drift"`
	// Lambda is the λ state per seed, per region: "convergent",
	// "recursive", "divergent" or "chaotic" (or →, <>, ←, ×).
	Lambda map[string][]string `json:"lambda,omitempty"`
}

// BucketMap names the Merkle buckets whose leaves differ between two
// regions.
type BucketMap struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Buckets   int    `json:"buckets"`
	Differing []int  `json:"differing"`
}

// BlobDiff is the blob manifest difference between two regions.
type BlobDiff struct {
	From       string       `json:"from"`
	To         string       `json:"to"`
	OnlyInFrom []string     `json:"only_in_from"`
	OnlyInTo   []string     `json:"only_in_to"`
	Changed    []BlobChange `json:"changed"`
}

// BlobChange is a key present in both regions whose object differs.
type BlobChange struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
}
