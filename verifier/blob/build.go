package blob

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// ListManifest lists the store. In content mode it hashes every object
// while listing (hits from the cache are not read); in checksum mode it
// reads every object's stored checksums (when the store can report them);
// in ETag mode it reads nothing. Call PlanBlobChecksums (checksum mode),
// HashPending and Finish next.
func ListManifest(ctx context.Context, r adapters.BlobReader, o ManifestOptions) (*BlobManifest, error) {
	if err := o.norm(); err != nil {
		return nil, err
	}
	if o.Cache != nil && o.RehashEvery > 0 {
		o.Cache.RehashEvery = o.RehashEvery
	}
	if pl, ok := r.(adapters.ParallelLister); ok {
		pl.SetListWorkers(o.Workers)
	}
	m := &BlobManifest{Location: r.Location(), Mode: o.Mode, start: time.Now()}
	stop := m.progress(o.Progress)
	defer stop()
	stater, canStat := r.(adapters.BlobStater)
	var do func(ctx context.Context, j blobJob) (blobResult, error)
	switch {
	case o.Mode == ModeContent:
		do = m.hashJob(r, o)
	case o.Mode == ModeChecksum && canStat:
		do = func(ctx context.Context, j blobJob) (blobResult, error) {
			info, err := stater.Stat(ctx, j.key)
			if err != nil {
				return blobResult{}, err
			}
			return blobResult{idx: j.idx, info: info}, nil
		}
	}
	feed := func(send func(blobJob) error) error {
		return r.List(ctx, func(oi parity.ObjectInfo) error {
			idx := len(m.Entries)
			e := BlobEntry{Key: oi.Key, Size: oi.Size, ETag: oi.ETag, LastModified: oi.LastModified,
				ChecksumSHA256: oi.ChecksumSHA256, ChecksumCRC64NVME: oi.ChecksumCRC64NVME}
			e.ck = KeyOf(oi)
			atomic.AddInt64(&m.Objects, 1)
			m.Bytes += oi.Size
			if o.Mode == ModeETag {
				e.Basis = BasisETag
			}
			hit := o.Mode == ModeContent && m.cached(&e, o)
			m.Entries = append(m.Entries, e)
			if hit || do == nil {
				return nil
			}
			return send(blobJob{idx: idx, key: e.Key, size: e.Size, ck: KeyOf(oi)})
		})
	}
	res, err := runBlobPool(ctx, o.Workers, feed, do)
	if err != nil {
		return nil, err
	}
	for _, x := range res {
		e := &m.Entries[x.idx]
		if o.Mode == ModeContent {
			e.SHA256, e.Basis = x.sha, BasisContent
			continue
		}
		if x.info.Size != e.Size {
			return nil, fmt.Errorf("blob manifest: key %q changed while listing (size %d, then %d): run again", e.Key, e.Size, x.info.Size)
		}
		e.ChecksumSHA256, e.ChecksumCRC64NVME = x.info.ChecksumSHA256, x.info.ChecksumCRC64NVME
	}
	m.complete = true
	return m, nil
}

func (m *BlobManifest) cached(e *BlobEntry, o ManifestOptions) bool {
	if o.Cache == nil || o.NoCacheRead {
		return false
	}
	sha, ok := o.Cache.Get(e.ck)
	if !ok {
		return false
	}
	e.SHA256, e.Basis = sha, BasisContent
	m.CacheHits++
	return true
}

// hashJob streams one object into SHA-256 and records it in the cache.
func (m *BlobManifest) hashJob(r adapters.BlobReader, o ManifestOptions) func(ctx context.Context, j blobJob) (blobResult, error) {
	bufs := sync.Pool{New: func() any { b := make([]byte, hashBufferBytes); return &b }}
	return func(ctx context.Context, j blobJob) (blobResult, error) {
		buf := bufs.Get().(*[]byte)
		defer bufs.Put(buf)
		rc, err := r.Open(ctx, j.key)
		if err != nil {
			return blobResult{}, err
		}
		h := sha256.New()
		n, err := io.CopyBuffer(h, &countingReader{r: rc, n: &m.BytesRead}, *buf)
		rc.Close()
		if err != nil {
			return blobResult{}, fmt.Errorf("read %q: %w", j.key, err)
		}
		if n != j.size {
			return blobResult{}, fmt.Errorf("blob manifest: key %q changed while it was read (listed %d bytes, read %d): run again", j.key, j.size, n)
		}
		atomic.AddInt64(&m.ObjectsRead, 1)
		var res blobResult
		res.idx = j.idx
		h.Sum(res.sha[:0])
		if o.Cache != nil {
			o.Cache.Put(j.ck, res.sha)
		}
		return res, nil
	}
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	atomic.AddInt64(c.n, int64(n))
	return n, err
}

// progress starts a ticker calling fn; the returned func stops it.
func (m *BlobManifest) progress(fn func(objects, bytes int64)) func() {
	if fn == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn(atomic.LoadInt64(&m.Objects), atomic.LoadInt64(&m.BytesRead))
			}
		}
	}()
	return func() { close(done) }
}

// HashPending reads and hashes every entry still BasisPending (checksum
// mode's fallbacks), using the cache like content mode.
func (m *BlobManifest) HashPending(ctx context.Context, r adapters.BlobReader, o ManifestOptions) error {
	if err := o.norm(); err != nil {
		return err
	}
	stop := m.progress(o.Progress)
	defer stop()
	do := m.hashJob(r, o)
	feed := func(send func(blobJob) error) error {
		for i := range m.Entries {
			e := &m.Entries[i]
			if e.Basis != BasisPending || m.cached(e, o) {
				continue
			}
			if err := send(blobJob{idx: i, key: e.Key, size: e.Size, ck: e.ck}); err != nil {
				return err
			}
		}
		return nil
	}
	res, err := runBlobPool(ctx, o.Workers, feed, do)
	if err != nil {
		return err
	}
	for _, x := range res {
		m.Entries[x.idx].SHA256, m.Entries[x.idx].Basis = x.sha, BasisContent
	}
	return nil
}

// Finish computes entry digests and leaves and sorts the entries by bucket
// and key. A key listed twice is an error.
func (m *BlobManifest) Finish() error {
	for i := range m.Entries {
		e := &m.Entries[i]
		if err := e.computeDigest(); err != nil {
			return err
		}
		e.bucket = parity.BucketOf(e.Key, ManifestBuckets)
	}
	sort.Slice(m.Entries, func(i, j int) bool {
		a, b := &m.Entries[i], &m.Entries[j]
		if a.bucket != b.bucket {
			return a.bucket < b.bucket
		}
		return a.Key < b.Key
	})
	m.Leaves = make([]parity.Leaf, ManifestBuckets)
	m.bucketStart = make([]int, ManifestBuckets+1)
	for i := range m.Entries {
		e := &m.Entries[i]
		if i > 0 && m.Entries[i-1].Key == e.Key {
			return fmt.Errorf("blob manifest: key %q listed twice by %s", e.Key, m.Location)
		}
		m.Leaves[e.bucket].Add(e.digest)
		m.bucketStart[e.bucket+1] = i + 1
	}
	for b := 1; b <= ManifestBuckets; b++ {
		m.bucketStart[b] = max(m.bucketStart[b], m.bucketStart[b-1])
	}
	if !m.start.IsZero() {
		m.Elapsed = time.Since(m.start)
	}
	return nil
}

func (m *BlobManifest) bucket(b int) []BlobEntry {
	return m.Entries[m.bucketStart[b]:m.bucketStart[b+1]]
}
