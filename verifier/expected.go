package verifier

import (
	"fmt"
	"sync"

	"github.com/ragparity/ragparity/parity"
)

// Expected accumulates, point by point, the scan a store must produce
// (the same digests, buckets and leaves HashStore computes), for a writer
// that knows every point it puts there: a rebuild checks its stage against
// it before promoting. Points are not kept; their digests go to the
// optional spill so that Diff can name the ids that differ.
type Expected struct {
	mu      sync.Mutex
	o       Options
	leaves  []parity.Leaf
	tol     []parity.Leaf
	spill   *Spill
	h       parity.Hasher
	rec     []byte
	points  int64
	flushed bool
}

// NewExpected starts an empty expectation for scans made with o (Buckets
// and Tolerance; Spill receives the digests when set).
func NewExpected(o Options) (*Expected, error) {
	if err := o.norm(); err != nil {
		return nil, err
	}
	return &Expected{o: o, leaves: make([]parity.Leaf, o.Buckets), tol: make([]parity.Leaf, o.Buckets), spill: o.Spill}, nil
}

// Add records one point. It is safe for concurrent use.
func (e *Expected) Add(p *parity.Point) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.flushed {
		return fmt.Errorf("expected: Add after Scan")
	}
	d, err := e.h.Digests(p, e.o.Tolerance)
	if err != nil {
		return fmt.Errorf("expected: point %s: %w", p.ID.S, err)
	}
	b := parity.BucketOf(p.ID.S, e.o.Buckets)
	e.leaves[b].Add(parity.PointDigest(p.ID.S, &d, false))
	e.tol[b].Add(parity.PointDigest(p.ID.S, &d, true))
	e.points++
	if e.spill != nil {
		if e.rec, err = e.spill.write(e.rec, b, p.ID, &d); err != nil {
			return err
		}
	}
	return nil
}

// Points is the number of points added so far.
func (e *Expected) Points() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.points
}

// Scan returns the expected scan with the settings of like (a scan of the
// store the points went to), so that Diff compares content only. No point
// may be added afterwards.
func (e *Expected) Scan(like *Scan) (*Scan, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.flushed && e.spill != nil {
		if err := e.spill.flush(); err != nil {
			return nil, err
		}
	}
	e.flushed = true
	s := &Scan{Buckets: e.o.Buckets, Points: e.points, Leaves: e.leaves, LeavesTolerant: e.tol}
	if like != nil {
		s.Settings, s.SettingsDigest = like.Settings, like.SettingsDigest
	}
	return s, nil
}
