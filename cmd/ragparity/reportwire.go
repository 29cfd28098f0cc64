package main

import (
	"sync"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/reports"
)

// lastDetail holds the detail behind the latest verdict's checks (probe
// questions, bucket maps, blob diffs) for its report.
var (
	detailMu   sync.Mutex
	lastDetail reports.Model
)

func setProbeDetail(p *reports.ProbeDetail) {
	detailMu.Lock()
	lastDetail.Probes = p
	detailMu.Unlock()
}

func addBlobDiff(d reports.BlobDiff) {
	detailMu.Lock()
	lastDetail.BlobDiffs = append(lastDetail.BlobDiffs, d)
	detailMu.Unlock()
}

func addBucketMap(from, to string, buckets int, differing []int) {
	detailMu.Lock()
	lastDetail.BucketMaps = append(lastDetail.BucketMaps, reports.BucketMap{From: from, To: to, Buckets: buckets, Differing: differing})
	detailMu.Unlock()
}

// resetDetail forgets the detail of an earlier verdict (serve verifies
// repeatedly; the demo verifies three times in one process).
func resetDetail() {
	detailMu.Lock()
	lastDetail = reports.Model{}
	detailMu.Unlock()
}

func init() {
	writeReport = func(path string, v *gate.Verdict) error {
		detailMu.Lock()
		m := lastDetail
		detailMu.Unlock()
		m.Verdict = v
		return reports.WriteFile(path, &m)
	}
}
