// Package blob builds and compares blob manifests (metrics.md "Blob manifest
// parity"): one (key, size, sha256 of content) entry per object, bucketed
// into a Merkle root like content_root, with a content-hash cache, a
// checksum plan across regions and a leaf-by-leaf diff.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
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
	ck     CacheKey // the listing's identity, for the content-hash cache
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

	// A remote manifest (NewRemoteManifest): its hash, where its leaves
	// and entries come from, and which buckets' entries are loaded.
	hash   parity.Digest
	src    BucketSource
	loaded map[int]bool
}

// Hash is the manifest hash: SHA-256("manifest/v1" || parity.Root(leaves)). It is
// the content manifest hash when every entry's basis is content or a stored
// SHA-256 (Exact); in checksum mode with CRC64NVME entries, or in ETag mode,
// it is comparable only with manifests built in the same run.
func (m *BlobManifest) Hash() parity.Digest {
	if m.src != nil {
		return m.hash
	}
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
	// RehashEvery re-reads every cached object at least once per period
	// (BlobCache.RehashEvery); 0 leaves the cache's setting.
	RehashEvery time.Duration
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
