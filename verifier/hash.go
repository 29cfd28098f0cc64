// Package verifier computes INDEX_HASH, content roots and their diffs from
// what adapters read (definitions: README "Hash format").
package verifier

import (
	"context"
	"fmt"
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// Defaults of the hash format.
const (
	DefaultBuckets   = 4096
	DefaultTolerance = 1e-6
)

// Options control one scan.
type Options struct {
	// Buckets is the number of Merkle buckets (power of two; default 4096).
	Buckets int
	// Tolerance is the grid of the tolerant digest (default 1e-6).
	Tolerance float64
	// Tolerant asks for the tolerant leaves and root (Scan.LeavesTolerant):
	// a second SHA-256 over every vector, so off unless asked. A Spill
	// always records each point's tolerant vectors digest, which Diff
	// needs to say whether a changed vector is within tolerance.
	Tolerant bool
	// Shard restricts the scan to one shard's buckets.
	Shard Shard
	// Declared settings from config, merged into the store's.
	Declared map[string]any
	// Spill, when non-nil, receives every point's digests (for Diff).
	Spill *Spill
	// Progress, when set, is called about twice a second with the number of
	// points hashed so far.
	Progress func(points int64)
	// Workers is how many goroutines hash: 1 hashes in the goroutine that
	// reads the store, with no hand-off; 0 chooses: 1 for a store whose
	// server paces the scan (adapters.ServerPaced), else GOMAXPROCS.
	Workers int
}

func (o *Options) norm() error {
	if o.Buckets == 0 {
		o.Buckets = DefaultBuckets
	}
	if !parity.ValidBuckets(o.Buckets) {
		return fmt.Errorf("buckets: %d is not a power of two in [2, 65536]", o.Buckets)
	}
	if o.Tolerance == 0 {
		o.Tolerance = DefaultTolerance
	}
	if o.Tolerance < 0 {
		return fmt.Errorf("tolerance: %g must be positive", o.Tolerance)
	}
	if o.Workers < 0 {
		return fmt.Errorf("workers: %d is negative", o.Workers)
	}
	return nil
}

// Scan is the result of hashing one region (or one shard of it).
type Scan struct {
	Settings       parity.Settings
	SettingsDigest parity.Digest
	// EngineDigest covers Settings.Engine: compared beside INDEX_HASH,
	// never part of it.
	EngineDigest parity.Digest
	Points       int64
	Buckets      int
	Shard        Shard
	// Split says how a shard's points were chosen: SplitBuckets (the
	// shard's bucket range; leaves outside it are zero) or SplitRows (a
	// physical row range of the store, adapters.RangeSharder: leaves of
	// every bucket, partial, added up by MergeShards).
	Split string
	// Leaves has Buckets entries; outside the shard's range they are zero.
	// LeavesTolerant is the same over the tolerant point digests, nil
	// unless Options.Tolerant asked for it.
	Leaves, LeavesTolerant []parity.Leaf
	// RowsRead is how many points the store handed over: Points plus those
	// outside the shard that a store unable to filter by bucket returned.
	RowsRead int64
	Elapsed  time.Duration
	// Duplicates are the ids the store returned more than once (a store
	// that inserts instead of upserting, LlamaIndex's PGVectorStore on a
	// re-ingest), with how many times; every copy is in the leaves, so a
	// region with duplicates never hashes equal to one without.
	Duplicates map[string]int
	// StoreID and Snapshot are the store's SnapshotMarker at the start of
	// the scan ("" when it has none).
	StoreID, Snapshot string
	// RootTolerant is the tolerant root when LeavesTolerant is nil: a
	// regional agent signs it and serves only the exact leaves.
	RootTolerant parity.Digest
	// RootSigned is the content root a regional agent signed (zero for a
	// direct scan). LeavesPartial says Leaves hold only the subtrees where
	// two agents' trees differ, zero elsewhere in both
	// (agent.CompletePair, for a diff): ContentRoot is then RootSigned.
	RootSigned    parity.Digest
	LeavesPartial bool
	// Via says how the scan was made: "direct" (this process read the
	// store) or "agent <url>" (a regional agent's signed answer).
	Via string
}

// DuplicateRows is how many rows beyond the first the duplicated ids
// have.
func (s *Scan) DuplicateRows() int {
	n := 0
	for _, c := range s.Duplicates {
		n += c - 1
	}
	return n
}

// ContentRoot is the Merkle root over the exact leaves (the signed root
// when the leaves are partial).
func (s *Scan) ContentRoot() parity.Digest {
	if s.LeavesPartial {
		return s.RootSigned
	}
	return parity.Root(s.Leaves)
}

// HasTolerant reports whether the scan has a tolerant root: its tolerant
// leaves (hash --tolerant, diff), or the tolerant root an agent signed.
func (s *Scan) HasTolerant() bool {
	return s.LeavesTolerant != nil || s.RootTolerant != (parity.Digest{})
}

// ContentRootTolerant is the root over the tolerant leaves, or the one an
// agent signed (zero when the scan has none: HasTolerant).
func (s *Scan) ContentRootTolerant() parity.Digest {
	if s.LeavesTolerant == nil {
		return s.RootTolerant
	}
	return parity.Root(s.LeavesTolerant)
}

// TolerantRootHex is the tolerant content root in hex, "" when the scan
// has none (hash without --tolerant).
func TolerantRootHex(s *Scan) string {
	if !s.HasTolerant() {
		return ""
	}
	return s.ContentRootTolerant().Hex()
}

// IndexHash is INDEX_HASH (meaningful only for a whole, unsharded scan).
func (s *Scan) IndexHash() parity.Digest { return parity.IndexHash(s.SettingsDigest, s.ContentRoot()) }

// DigestSettings merges the declared settings into a store's and returns
// them with the settings digest (part of INDEX_HASH) and the engine digest:
// what every scan, direct or through an agent, starts from.
func DigestSettings(st parity.Settings, declared map[string]any) (parity.Settings, parity.Digest, parity.Digest, error) {
	st, err := parity.MergeSettings(st, declared)
	if err != nil {
		return st, parity.Digest{}, parity.Digest{}, err
	}
	sd, err := parity.SettingsDigest(st.Hashed)
	if err != nil {
		return st, parity.Digest{}, parity.Digest{}, err
	}
	ed, err := parity.EngineDigest(st.Engine)
	return st, sd, ed, err
}

type batch struct {
	pts []parity.Point
	n   int
}

const batchSize = 64

// HashStore reads settings and every point of r and computes the scan.
func HashStore(ctx context.Context, r adapters.VectorReader, o Options) (*Scan, error) {
	if err := o.norm(); err != nil {
		return nil, err
	}
	start := time.Now()
	var storeID, snap string
	if sm, ok := r.(adapters.SnapshotMarker); ok {
		var err error
		if storeID, snap, err = sm.SnapshotMarker(ctx); err != nil {
			return nil, err
		}
	}
	st, err := r.Settings(ctx)
	if err != nil {
		return nil, err
	}
	st, sd, ed, err := DigestSettings(st, o.Declared)
	if err != nil {
		return nil, err
	}
	s := &Scan{Settings: st, SettingsDigest: sd, EngineDigest: ed, Buckets: o.Buckets, Shard: o.Shard, StoreID: storeID, Snapshot: snap, Via: "direct",
		Leaves: make([]parity.Leaf, o.Buckets)}
	if o.Tolerant {
		s.LeavesTolerant = make([]parity.Leaf, o.Buckets)
	}
	// Duplicate ids cannot occur in a store that enforces unique ids; the
	// check's memory would grow with the collection for nothing.
	checkDups := true
	if u, ok := r.(adapters.UniqueIDs); ok {
		unique, err := u.IDsUnique(ctx)
		if err != nil {
			return nil, err
		}
		checkDups = !unique
	}
	// Row-range shards need unique ids: two copies of an id in different
	// row ranges would escape each shard's duplicate check.
	rs, byRows := r.(adapters.RangeSharder)
	if byRows = byRows && o.Shard.N > 1 && !checkDups; byRows {
		if byRows, err = rs.RowShards(ctx); err != nil {
			return nil, err
		}
	}
	lo, hi := o.Shard.Range(o.Buckets)
	if o.Shard.N > 1 {
		s.Split = SplitBuckets
	}
	if byRows {
		lo, hi, s.Split = 0, o.Buckets, SplitRows
	}

	// The tolerant vectors digest is computed when a root or a spill needs it.
	tolerant := o.Tolerant || o.Spill != nil

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	workers := o.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
		if sp, ok := r.(adapters.ServerPaced); ok && sp.ServerPaced() {
			workers = 1
		}
	}
	// With one worker the reading goroutine hashes each batch itself.
	inline := workers == 1
	if inline {
		workers = 0
	}
	free := make(chan *batch, workers*4)
	work := make(chan *batch, workers*4)
	for i := 0; i < cap(free); i++ {
		free <- &batch{pts: make([]parity.Point, batchSize)}
	}
	var done atomic.Int64
	var wg sync.WaitGroup
	var workErr error
	var errOnce sync.Once
	fail := func(err error) {
		errOnce.Do(func() { workErr = err; cancel(err) })
	}
	newHasher := func() *batchHasher {
		bh := &batchHasher{o: &o, lo: lo, hi: hi, tolerant: tolerant, exact: make([]parity.Leaf, o.Buckets)}
		if o.Tolerant {
			bh.tol = make([]parity.Leaf, o.Buckets)
		}
		return bh
	}
	// hashers[0] is the reading goroutine's own (inline hashing; nil when
	// workers hash), the rest the workers'.
	hashers := make([]*batchHasher, workers+1)
	if inline {
		hashers[0] = newHasher()
	}
	for w := 1; w <= workers; w++ {
		hashers[w] = newHasher()
		wg.Add(1)
		go func(bh *batchHasher) {
			defer wg.Done()
			for b := range work {
				if err := bh.hash(b); err != nil {
					fail(err)
				}
				done.Add(int64(b.n))
				free <- b
			}
		}(hashers[w])
	}
	stopProgress := make(chan struct{})
	var progWG sync.WaitGroup
	if o.Progress != nil {
		progWG.Add(1)
		go func() {
			defer progWG.Done()
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					o.Progress(done.Load())
				case <-stopProgress:
					return
				}
			}
		}()
	}

	// Duplicate ids are counted by a 64-bit hash of the canonical id (a
	// false duplicate needs a hash collision: about 3e-8 at 1M ids) with
	// the id kept once it repeats.
	seen := make(map[uint64]uint8, 1024)
	seed := maphash.MakeSeed()
	dups := map[string]int{}
	var cur *batch
	var rows int64
	bs, pushDown := r.(adapters.BucketScanner)
	pushDown = pushDown && o.Shard.N > 1 && !byRows
	var emitPoint func(p *parity.Point) error
	emit := func(p *parity.Point) error {
		rows++
		if !checkDups {
			return emitPoint(p)
		}
		if o.Shard.N > 1 && !pushDown && !byRows {
			if bk := parity.BucketOf(p.ID.S, o.Buckets); bk < lo || bk >= hi {
				return emitPoint(p) // not this shard's: the worker drops it
			}
		}
		h := maphash.String(seed, p.ID.S)
		if c := seen[h]; c == 0 {
			seen[h] = 1
		} else {
			if c < 255 {
				seen[h] = c + 1
			}
			if dups[p.ID.S] == 0 {
				dups[p.ID.S] = 1
			}
			dups[p.ID.S]++
		}
		return emitPoint(p)
	}
	var pending int64 // points hashed inline, not yet added to done
	emitPoint = func(p *parity.Point) error {
		if inline {
			// Hashed here, during the callback, so p needs no copy.
			if pending++; pending == batchSize {
				done.Add(pending)
				pending = 0
			}
			return hashers[0].point(p)
		}
		if cur == nil {
			select {
			case cur = <-free:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			cur.n = 0
		}
		copyPoint(&cur.pts[cur.n], p)
		cur.n++
		if cur.n < batchSize {
			return nil
		}
		select {
		case work <- cur:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		cur = nil
		return nil
	}
	var scanErr error
	if byRows {
		scanErr = rs.ScanShard(ctx, o.Shard.I, o.Shard.N, emit)
	} else if pushDown {
		keep := make([]int, 0, hi-lo)
		for b := lo; b < hi; b++ {
			keep = append(keep, b)
		}
		scanErr = bs.ScanBuckets(ctx, adapters.BucketFilter{Buckets: o.Buckets, Keep: keep}, emit)
	} else {
		scanErr = r.Scan(ctx, emit)
	}
	if scanErr == nil && cur != nil && cur.n > 0 {
		work <- cur
	}
	done.Add(pending)
	close(work)
	wg.Wait()
	close(stopProgress)
	progWG.Wait()
	if workErr != nil {
		return nil, workErr
	}
	if scanErr != nil {
		return nil, scanErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, p := range hashers {
		if p == nil {
			continue
		}
		for b := lo; b < hi; b++ {
			s.Leaves[b].Merge(p.exact[b])
			if p.tol != nil {
				s.LeavesTolerant[b].Merge(p.tol[b])
			}
		}
	}
	for b := lo; b < hi; b++ {
		s.Points += int64(s.Leaves[b].Count)
	}
	s.RowsRead = rows
	if len(dups) > 0 {
		s.Duplicates = dups
	}
	if o.Progress != nil {
		o.Progress(done.Load())
	}
	if o.Spill != nil {
		if err := o.Spill.flush(); err != nil {
			return nil, err
		}
	}
	s.Elapsed = time.Since(start)
	return s, nil
}

// copyPoint deep-copies src into dst, reusing dst's buffers.
func copyPoint(dst, src *parity.Point) {
	dst.ID = src.ID
	if cap(dst.Vectors) < len(src.Vectors) {
		dst.Vectors = make([]parity.NamedVector, len(src.Vectors))
	}
	dst.Vectors = dst.Vectors[:len(src.Vectors)]
	for i := range src.Vectors {
		dst.Vectors[i].Name = src.Vectors[i].Name
		dst.Vectors[i].Values = append(dst.Vectors[i].Values[:0], src.Vectors[i].Values...)
		dst.Vectors[i].Sparse, dst.Vectors[i].Multi = src.Vectors[i].Sparse, src.Vectors[i].Multi
		if src.Vectors[i].Indices == nil {
			dst.Vectors[i].Indices = nil
		} else {
			dst.Vectors[i].Indices = append(dst.Vectors[i].Indices[:0], src.Vectors[i].Indices...)
		}
	}
	if src.Payload == nil {
		dst.Payload = nil
	} else {
		dst.Payload = append(dst.Payload[:0], src.Payload...)
	}
	dst.Text = src.Text
	dst.HasText = src.HasText
}

// batchHasher hashes batches of points into its own leaves (merged once
// the scan ends).
type batchHasher struct {
	o          *Options
	lo, hi     int
	tolerant   bool
	exact, tol []parity.Leaf
	h          parity.Hasher
	rec        []byte
}

func (bh *batchHasher) hash(b *batch) error {
	for i := 0; i < b.n; i++ {
		if err := bh.point(&b.pts[i]); err != nil {
			return err
		}
	}
	return nil
}

// point adds one point to the leaves of its bucket, if it is in range.
func (bh *batchHasher) point(pt *parity.Point) error {
	o := bh.o
	bk := parity.BucketOf(pt.ID.S, o.Buckets)
	if bk < bh.lo || bk >= bh.hi {
		return nil
	}
	var d parity.PointDigests
	var err error
	if bh.tolerant {
		d, err = bh.h.Digests(pt, o.Tolerance)
	} else {
		d, err = bh.h.DigestsExact(pt)
	}
	if err != nil {
		return err
	}
	bh.exact[bk].Add(parity.PointDigest(pt.ID.S, &d, false))
	if bh.tol != nil {
		bh.tol[bk].Add(parity.PointDigest(pt.ID.S, &d, true))
	}
	if o.Spill != nil {
		bh.rec, err = o.Spill.write(bh.rec, bk, pt.ID, &d)
	}
	return err
}
