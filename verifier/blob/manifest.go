package blob

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// Blob manifest parity (README "Blob manifest parity"). A manifest entry is
// (key, size, SHA-256 of the content):
//
//	entry digest  = SHA-256("ragparity/blob/v1" || u32be(len(key)) || key || u64be(size) || sha256(content))
//	bucket        = parity.BucketOf(key, 4096)
//	manifest_hash = hex(SHA-256("manifest/v1" || parity.Root(leaves)))
//
// with leaves and parity.Root as for content_root. ETags are not content hashes
// (a multipart ETag depends on the part size; SSE makes them opaque), so
// only the content and checksum modes can say "equal".

// BlobMode says how object contents are compared.
type BlobMode string

const (
	// ModeContent streams every object and hashes it with SHA-256 (the
	// gate's mode); a cache keyed by the listing skips unchanged objects.
	ModeContent BlobMode = "content"
	// ModeChecksum trusts a stored full-object checksum where every region
	// holding the key has one (x-amz-checksum-sha256, else CRC64NVME) and
	// reads the content otherwise.
	ModeChecksum BlobMode = "checksum"
	// ModeETag compares size and ETag only: a pre-filter that can find
	// differences but never proves equality.
	ModeETag BlobMode = "etag"
)

// ParseBlobMode parses a --mode value ("" is content).
func ParseBlobMode(s string) (BlobMode, error) {
	switch m := BlobMode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeContent, nil
	case ModeContent, ModeChecksum, ModeETag:
		return m, nil
	}
	return "", fmt.Errorf("--mode %q: want content, checksum or etag", s)
}

// ManifestBuckets is the number of Merkle buckets of a blob manifest.
const ManifestBuckets = 4096

const (
	tagBlob         = "ragparity/blob/v1"
	tagBlobCRC      = "ragparity/blob-crc64nvme/v1"
	tagBlobETag     = "ragparity/blob-etag/v1"
	tagManifest     = "manifest/v1"
	hashBufferBytes = 256 << 10
)

// Basis says how an entry's content identity was established.
type Basis uint8

const (
	// BasisPending: not established yet (to be read).
	BasisPending Basis = iota
	// BasisContent: the content was read and hashed (or the cache had its
	// hash for the same size, ETag and last-modified time).
	BasisContent
	// BasisChecksumSHA256: the stored full-object SHA-256, which is the
	// content hash itself.
	BasisChecksumSHA256
	// BasisChecksumCRC: the stored CRC64NVME.
	BasisChecksumCRC
	// BasisETag: size and ETag only.
	BasisETag
)

func (b Basis) String() string {
	return [...]string{"pending", "content", "checksum-sha256", "checksum-crc64nvme", "etag"}[b]
}

// BlobEntry is one object of a manifest.
type BlobEntry struct {
	Key                               string
	Size                              int64
	ETag                              string
	LastModified                      time.Time
	ChecksumSHA256, ChecksumCRC64NVME string
	// SHA256 is the content hash when Basis is BasisContent or
	// BasisChecksumSHA256.
	SHA256 parity.Digest
	Basis  Basis
	bucket int
	digest parity.Digest
}

// BlobEntryDigest is an entry's leaf contribution (content basis).
func BlobEntryDigest(key string, size int64, sha parity.Digest) parity.Digest {
	b := make([]byte, 0, len(tagBlob)+4+len(key)+8+32)
	b = append(b, tagBlob...)
	b = parity.AppendLP(b, key)
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = append(b, sha[:]...)
	return sha256.Sum256(b)
}

func (e *BlobEntry) computeDigest() error {
	switch e.Basis {
	case BasisContent, BasisChecksumSHA256:
		e.digest = BlobEntryDigest(e.Key, e.Size, e.SHA256)
	case BasisChecksumCRC, BasisETag:
		tag, v := tagBlobETag, e.ETag
		if e.Basis == BasisChecksumCRC {
			tag, v = tagBlobCRC, e.ChecksumCRC64NVME
		}
		b := append([]byte(tag), nil...)
		b = parity.AppendLP(b, e.Key)
		b = binary.BigEndian.AppendUint64(b, uint64(e.Size))
		b = parity.AppendLP(b, v)
		e.digest = sha256.Sum256(b)
	default:
		return fmt.Errorf("blob manifest: key %q: content not established", e.Key)
	}
	return nil
}

// BlobManifest is one region's blob store as hashed.
type BlobManifest struct {
	Location string
	Mode     BlobMode
	// Entries, after Finish, sorted by bucket and then key.
	Entries []BlobEntry
	Leaves  []parity.Leaf
	Objects int64
	Bytes   int64
	// ObjectsRead and BytesRead count what was streamed and hashed;
	// CacheHits the objects whose hash came from the cache;
	// ChecksumsTrusted those compared on a stored checksum.
	ObjectsRead, BytesRead, CacheHits, ChecksumsTrusted int64
	Elapsed                                             time.Duration

	bucketStart []int
	start       time.Time
	complete    bool
}

// Hash is the manifest hash: SHA-256("manifest/v1" || parity.Root(leaves)). It is
// the content manifest hash when every entry's basis is content or a stored
// SHA-256 (Exact); in checksum mode with CRC64NVME entries, or in ETag mode,
// it is comparable only with manifests built in the same run.
func (m *BlobManifest) Hash() parity.Digest {
	r := parity.Root(m.Leaves)
	return sha256.Sum256(append([]byte(tagManifest), r[:]...))
}

// Exact reports whether Hash is the content manifest hash.
func (m *BlobManifest) Exact() bool {
	for i := range m.Entries {
		if b := m.Entries[i].Basis; b != BasisContent && b != BasisChecksumSHA256 {
			return false
		}
	}
	return true
}

// ManifestOptions control building a manifest.
type ManifestOptions struct {
	Mode BlobMode
	// Workers bounds the objects read (or stat'ed) at once and the parallel
	// listing requests (default 16).
	Workers int
	// Cache, when non-nil, supplies and records content hashes.
	Cache *BlobCache
	// NoCacheRead reads every object even when the cache has its hash (the
	// cache is still updated).
	NoCacheRead bool
	// Progress, when set, is called about twice a second with the objects
	// listed and the bytes read so far.
	Progress func(objects, bytes int64)
}

func (o *ManifestOptions) norm() error {
	if o.Mode == "" {
		o.Mode = ModeContent
	}
	if _, err := ParseBlobMode(string(o.Mode)); err != nil {
		return err
	}
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.Workers > 1024 {
		return fmt.Errorf("workers: %d is more than 1024", o.Workers)
	}
	return nil
}

// BuildManifest lists and hashes one store: ListManifest, then (checksum
// mode) PlanBlobChecksums over this manifest alone, HashPending and Finish.
func BuildManifest(ctx context.Context, r adapters.BlobReader, o ManifestOptions) (*BlobManifest, error) {
	m, err := ListManifest(ctx, r, o)
	if err != nil {
		return nil, err
	}
	if m.Mode == ModeChecksum {
		PlanBlobChecksums([]*BlobManifest{m})
	}
	if err := m.HashPending(ctx, r, o); err != nil {
		return nil, err
	}
	return m, m.Finish()
}

type blobJob struct {
	idx  int
	key  string
	size int64
	etag string
	lm   time.Time
}

type blobResult struct {
	idx  int
	sha  parity.Digest
	info parity.ObjectInfo
}

// ListManifest lists the store. In content mode it hashes every object
// while listing (hits from the cache are not read); in checksum mode it
// reads every object's stored checksums (when the store can report them);
// in ETag mode it reads nothing. Call PlanBlobChecksums (checksum mode),
// HashPending and Finish next.
func ListManifest(ctx context.Context, r adapters.BlobReader, o ManifestOptions) (*BlobManifest, error) {
	if err := o.norm(); err != nil {
		return nil, err
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
			return send(blobJob{idx: idx, key: e.Key, size: e.Size, etag: e.ETag, lm: e.LastModified})
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
	sha, ok := o.Cache.Get(e.Key, e.Size, e.ETag, e.LastModified)
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
			o.Cache.Put(j.key, j.size, j.etag, j.lm, res.sha)
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

// runBlobPool runs do on every job feed sends, on at most workers
// goroutines. The first error (from feed or do) stops everything.
func runBlobPool(ctx context.Context, workers int, feed func(send func(blobJob) error) error, do func(context.Context, blobJob) (blobResult, error)) ([]blobResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if do == nil {
		if err := feed(func(blobJob) error { return nil }); err != nil {
			return nil, err
		}
		return nil, nil
	}
	jobs := make(chan blobJob, workers*4)
	var (
		mu      sync.Mutex
		results []blobResult
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				res, err := do(ctx, j)
				if err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			}
		}()
	}
	send := func(j blobJob) error {
		select {
		case jobs <- j:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	ferr := feed(send)
	close(jobs)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		return nil, cause
	}
	if ferr != nil {
		return nil, ferr
	}
	return results, nil
}

// PlanBlobChecksums decides, key by key across the manifests of one
// checksum-mode run, what to trust: when every manifest holding the key has
// a stored full-object SHA-256, that is the content hash; else when every
// one has a CRC64NVME, the CRCs are compared; else the key is read
// (BasisPending) in every manifest. Deciding jointly keeps the regions'
// manifest hashes comparable.
func PlanBlobChecksums(ms []*BlobManifest) {
	type slot struct{ m, i int }
	byKey := map[string][]slot{}
	for mi, m := range ms {
		for i := range m.Entries {
			byKey[m.Entries[i].Key] = append(byKey[m.Entries[i].Key], slot{mi, i})
		}
	}
	for _, slots := range byKey {
		allSHA, allCRC := true, true
		for _, s := range slots {
			e := &ms[s.m].Entries[s.i]
			if _, ok := decodeSHA256(e.ChecksumSHA256); !ok {
				allSHA = false
			}
			if !validCRC64(e.ChecksumCRC64NVME) {
				allCRC = false
			}
		}
		for _, s := range slots {
			m, e := ms[s.m], &ms[s.m].Entries[s.i]
			switch {
			case allSHA:
				e.SHA256, _ = decodeSHA256(e.ChecksumSHA256)
				e.Basis = BasisChecksumSHA256
				m.ChecksumsTrusted++
			case allCRC:
				e.Basis = BasisChecksumCRC
				m.ChecksumsTrusted++
			default:
				e.Basis = BasisPending
			}
		}
	}
}

func decodeSHA256(b64 string) (parity.Digest, bool) {
	var d parity.Digest
	if b64 == "" {
		return d, false
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) != len(d) {
		return d, false
	}
	copy(d[:], b)
	return d, true
}

func validCRC64(b64 string) bool {
	if b64 == "" {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	return err == nil && len(b) == 8
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
			if err := send(blobJob{idx: i, key: e.Key, size: e.Size, etag: e.ETag, lm: e.LastModified}); err != nil {
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

// BlobChange is a key present in both regions whose object differs (or,
// in Inconclusive, could not be compared).
type BlobChange struct {
	Key string `json:"key"`
	// Reason: "size", "content", "checksum" (a stored checksum decided),
	// "etag" (ETag mode), or for inconclusive keys "etag-inconclusive".
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// Blob diff verdicts.
const (
	VerdictEqual        = "equal"
	VerdictDifferent    = "different"
	VerdictInconclusive = "inconclusive"
)

// BlobDiff lists the keys that differ between two manifests.
type BlobDiff struct {
	From         string       `json:"from"`
	To           string       `json:"to"`
	Equal        bool         `json:"equal"`
	Mode         BlobMode     `json:"mode"`
	Verdict      string       `json:"verdict"`
	OnlyInFrom   []string     `json:"only_in_from"`
	OnlyInTo     []string     `json:"only_in_to"`
	Changed      []BlobChange `json:"changed"`
	Inconclusive []BlobChange `json:"inconclusive"`
	Note         string       `json:"note,omitempty"`
	// BucketsDiffering of ManifestBuckets; EntriesExamined counts the
	// entries of differing buckets (both sides), the only ones compared.
	BucketsDiffering int   `json:"buckets_differing"`
	EntriesExamined  int64 `json:"entries_examined"`
}

// ETagNote explains why ETag mode never says "equal".
const ETagNote = "ETag mode is a pre-filter: ETags are not content hashes, so it never reports equal; run --mode content to decide"

// DiffManifests compares two finished manifests leaf by leaf and, for
// differing buckets only, entry by entry.
func DiffManifests(from, to string, a, b *BlobManifest) *BlobDiff {
	d := &BlobDiff{From: from, To: to, Mode: a.Mode, OnlyInFrom: []string{}, OnlyInTo: []string{},
		Changed: []BlobChange{}, Inconclusive: []BlobChange{}}
	for bk := 0; bk < ManifestBuckets; bk++ {
		if a.Leaves[bk] == b.Leaves[bk] {
			continue
		}
		d.BucketsDiffering++
		ea, eb := a.bucket(bk), b.bucket(bk)
		d.EntriesExamined += int64(len(ea) + len(eb))
		i, j := 0, 0
		for i < len(ea) || j < len(eb) {
			switch {
			case j == len(eb) || (i < len(ea) && ea[i].Key < eb[j].Key):
				d.OnlyInFrom = append(d.OnlyInFrom, ea[i].Key)
				i++
			case i == len(ea) || eb[j].Key < ea[i].Key:
				d.OnlyInTo = append(d.OnlyInTo, eb[j].Key)
				j++
			default:
				compareEntries(d, &ea[i], &eb[j])
				i++
				j++
			}
		}
	}
	sort.Strings(d.OnlyInFrom)
	sort.Strings(d.OnlyInTo)
	sort.Slice(d.Changed, func(i, j int) bool { return d.Changed[i].Key < d.Changed[j].Key })
	sort.Slice(d.Inconclusive, func(i, j int) bool { return d.Inconclusive[i].Key < d.Inconclusive[j].Key })
	differs := len(d.OnlyInFrom)+len(d.OnlyInTo)+len(d.Changed) > 0
	switch {
	case differs:
		d.Verdict = VerdictDifferent
	case a.Mode == ModeETag || b.Mode == ModeETag:
		d.Verdict = VerdictInconclusive
		d.Note = "no difference found by the ETag pre-filter"
		if n := len(d.Inconclusive); n > 0 {
			d.Note += fmt.Sprintf(" (%d keys could not be compared by ETag)", n)
		}
		d.Note += "; " + ETagNote
	case d.BucketsDiffering == 0:
		d.Verdict = VerdictEqual
	default:
		d.Verdict = VerdictInconclusive
	}
	d.Equal = d.Verdict == VerdictEqual
	return d
}

func compareEntries(d *BlobDiff, a, b *BlobEntry) {
	if a.digest == b.digest && a.Basis == b.Basis {
		return
	}
	if a.Size != b.Size {
		d.Changed = append(d.Changed, BlobChange{Key: a.Key, Reason: "size", Detail: fmt.Sprintf("%d -> %d bytes", a.Size, b.Size)})
		return
	}
	sha := func(e *BlobEntry) bool { return e.Basis == BasisContent || e.Basis == BasisChecksumSHA256 }
	switch {
	case sha(a) && sha(b):
		if a.SHA256 != b.SHA256 {
			reason := "content"
			if a.Basis == BasisChecksumSHA256 && b.Basis == BasisChecksumSHA256 {
				reason = "checksum"
			}
			d.Changed = append(d.Changed, BlobChange{Key: a.Key, Reason: reason,
				Detail: fmt.Sprintf("sha256 %s -> %s", a.SHA256.Hex()[:16], b.SHA256.Hex()[:16])})
		}
	case a.Basis == BasisChecksumCRC && b.Basis == BasisChecksumCRC:
		if a.ChecksumCRC64NVME != b.ChecksumCRC64NVME {
			d.Changed = append(d.Changed, BlobChange{Key: a.Key, Reason: "checksum",
				Detail: fmt.Sprintf("crc64nvme %s -> %s", a.ChecksumCRC64NVME, b.ChecksumCRC64NVME)})
		}
	case a.Basis == BasisETag && b.Basis == BasisETag:
		changed, why := CompareETags(a.ETag, b.ETag)
		switch {
		case changed:
			d.Changed = append(d.Changed, BlobChange{Key: a.Key, Reason: "etag", Detail: fmt.Sprintf("%s -> %s", a.ETag, b.ETag)})
		case why != "":
			d.Inconclusive = append(d.Inconclusive, BlobChange{Key: a.Key, Reason: "etag-inconclusive", Detail: why})
		}
	default:
		d.Inconclusive = append(d.Inconclusive, BlobChange{Key: a.Key, Reason: "basis",
			Detail: fmt.Sprintf("compared on different bases (%s vs %s)", a.Basis, b.Basis)})
	}
}

// CompareETags is ETag mode's rule for two objects of the same size.
// Different single-part ETags (MD5 of the content on plain S3) mean
// different content. Multipart ETags ("-N") are never compared across
// objects whose part sizes may differ: a different N, a single-part ETag
// against a multipart one, or the same N with unknown part sizes is
// inconclusive (why says which). Equal ETags are no difference found.
func CompareETags(a, b string) (changed bool, why string) {
	if a == "" || b == "" {
		return false, "no ETag on one side"
	}
	if a == b {
		return false, ""
	}
	na, nb := etagParts(a), etagParts(b)
	switch {
	case na == 0 && nb == 0:
		return true, ""
	case na == 0 || nb == 0:
		return false, "single-part ETag against a multipart one: not comparable"
	case na != nb:
		return false, fmt.Sprintf("multipart ETags with different part counts (-%d vs -%d): uploaded with different part sizes", na, nb)
	}
	return false, fmt.Sprintf("multipart ETags (-%d) differ but the part sizes are unknown", na)
}

// etagParts returns N of a multipart ETag "<hex>-N", 0 for a single-part
// one.
func etagParts(e string) int {
	i := strings.LastIndexByte(e, '-')
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range e[i+1:] {
		if c < '0' || c > '9' || n > 1e6 {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}
