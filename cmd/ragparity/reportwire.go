package main

import (
	"sync"

	"github.com/ragparity/ragparity/reports"
	"github.com/ragparity/ragparity/verifier/gate"
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

func init() {
	writeReport = func(path string, v *gate.Verdict) error {
		detailMu.Lock()
		m := lastDetail
		detailMu.Unlock()
		m.Verdict = v
		return reports.WriteFile(path, &m)
	}
}
