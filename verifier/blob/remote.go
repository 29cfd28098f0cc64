package blob

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/ragparity/ragparity/parity"
)

// BucketSource serves a manifest that was built elsewhere (a regional
// agent's) by parts: its leaves, and the entries of chosen buckets. A
// source answers for one manifest; each answer is checked against the
// manifest hash it was opened with.
type BucketSource interface {
	// Leaves returns the manifest's ManifestBuckets leaves.
	Leaves(ctx context.Context) ([]parity.Leaf, error)
	// Entries returns the entries of the given buckets (content basis:
	// Key, Size, SHA256), in any order.
	Entries(ctx context.Context, buckets []int) ([]BlobEntry, error)
}

// NewRemoteManifest is a content-mode manifest known by its hash and
// totals, whose leaves and entries src fetches when a diff needs them
// (Diff): verifying a region moves only the hash.
func NewRemoteManifest(location string, hash parity.Digest, objects, bytes int64, src BucketSource) *BlobManifest {
	return &BlobManifest{Location: location, Mode: ModeContent, Objects: objects, Bytes: bytes, hash: hash, src: src, complete: true}
}

// Partial reports whether the manifest holds only some of its entries (a
// remote manifest before or after Diff loaded the buckets it needed).
func (m *BlobManifest) Partial() bool { return m.src != nil }

// loadLeaves fetches a remote manifest's leaves and checks them against
// its hash and object count.
func (m *BlobManifest) loadLeaves(ctx context.Context) error {
	if m.src == nil || m.Leaves != nil {
		return nil
	}
	ls, err := m.src.Leaves(ctx)
	if err != nil {
		return err
	}
	if len(ls) != ManifestBuckets {
		return fmt.Errorf("blob manifest %s: %d leaves, want %d", m.Location, len(ls), ManifestBuckets)
	}
	r := parity.Root(ls)
	if got := parity.Digest(sha256.Sum256(append([]byte(tagManifest), r[:]...))); got != m.hash {
		return fmt.Errorf("blob manifest %s: its leaves hash to %s, not the manifest hash %s", m.Location, parity.ShortHex(got.Hex()), parity.ShortHex(m.hash.Hex()))
	}
	var n uint64
	for _, l := range ls {
		n += l.Count
	}
	if m.Objects < 0 || n != uint64(m.Objects) {
		return fmt.Errorf("blob manifest %s: its leaves count %d objects, its summary %d", m.Location, n, m.Objects)
	}
	m.Leaves = ls
	m.bucketStart = make([]int, ManifestBuckets+1)
	m.loaded = map[int]bool{}
	return nil
}

// loadBuckets fetches the entries of the buckets not yet loaded and checks
// each bucket's entries against its leaf: none is kept unless all match.
func (m *BlobManifest) loadBuckets(ctx context.Context, buckets []int) error {
	if m.src == nil {
		return nil
	}
	if err := m.loadLeaves(ctx); err != nil {
		return err
	}
	var want []int
	for _, b := range buckets {
		if !m.loaded[b] {
			want = append(want, b)
		}
	}
	if len(want) == 0 {
		return nil
	}
	es, err := m.src.Entries(ctx, want)
	if err != nil {
		return err
	}
	asked := map[int]bool{}
	for _, b := range want {
		asked[b] = true
	}
	got := make(map[int]parity.Leaf, len(want))
	for i := range es {
		e := &es[i]
		e.Basis = BasisContent
		if err := e.computeDigest(); err != nil {
			return err
		}
		e.bucket = parity.BucketOf(e.Key, ManifestBuckets)
		if !asked[e.bucket] {
			return fmt.Errorf("blob manifest %s: entry %q is in bucket %d, which was not asked for", m.Location, e.Key, e.bucket)
		}
		l := got[e.bucket]
		l.Add(e.digest)
		got[e.bucket] = l
	}
	for _, b := range want {
		if got[b] != m.Leaves[b] {
			return fmt.Errorf("blob manifest %s: the entries of bucket %d do not match its leaf", m.Location, b)
		}
	}
	all := append(slices.Clip(m.Entries), es...)
	sort.Slice(all, func(i, j int) bool {
		a, b := &all[i], &all[j]
		if a.bucket != b.bucket {
			return a.bucket < b.bucket
		}
		return a.Key < b.Key
	})
	start := make([]int, ManifestBuckets+1)
	for i := range all {
		if i > 0 && all[i-1].Key == all[i].Key {
			return fmt.Errorf("blob manifest: key %q listed twice by %s", all[i].Key, m.Location)
		}
		start[all[i].bucket+1] = i + 1
	}
	for b := 1; b <= ManifestBuckets; b++ {
		start[b] = max(start[b], start[b-1])
	}
	m.Entries, m.bucketStart = all, start
	for _, b := range want {
		m.loaded[b] = true
	}
	return nil
}

// Diff is DiffManifests for manifests of which either may be remote: it
// first fetches the leaves of a remote one and the entries of the buckets
// whose leaves differ, checked against the manifest hash and the leaves.
func Diff(ctx context.Context, from, to string, a, b *BlobManifest) (*BlobDiff, error) {
	for _, m := range []*BlobManifest{a, b} {
		if err := m.loadLeaves(ctx); err != nil {
			return nil, err
		}
	}
	if a.Leaves == nil || b.Leaves == nil {
		return nil, errors.New("blob manifest has no leaves")
	}
	var differing []int
	for bk := 0; bk < ManifestBuckets; bk++ {
		if a.Leaves[bk] != b.Leaves[bk] {
			differing = append(differing, bk)
		}
	}
	for _, m := range []*BlobManifest{a, b} {
		if err := m.loadBuckets(ctx, differing); err != nil {
			return nil, err
		}
	}
	return DiffManifests(from, to, a, b), nil
}

// hasBucket reports whether the manifest holds every entry of bucket b.
func (m *BlobManifest) hasBucket(b int) bool { return m.src == nil || m.loaded[b] }

// Bucket returns the entries of bucket b of a finished manifest, sorted by
// key (a remote manifest's only once loaded).
func (m *BlobManifest) Bucket(b int) []BlobEntry {
	if b < 0 || b >= ManifestBuckets || m.bucketStart == nil {
		return nil
	}
	return m.bucket(b)
}
