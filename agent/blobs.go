package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier/blob"
)

// Manifest is the region's content-mode blob manifest, served by parts
// (GET /v1/manifest?view=...): "summary" is the hash and totals (what
// verifying the region needs); "leaves" adds its ManifestBuckets leaves;
// b=LIST the entries of those buckets (EntryBuckets); no view, every
// entry (a baseline records them all). Entries are uint32 BE key length,
// key, uint64 BE size, 32 bytes of content SHA-256 each; the gate checks
// leaves against Hash and entries against their bucket's leaf.
type Manifest struct {
	Hash         string  `json:"manifest_hash"`
	Location     string  `json:"location"`
	Objects      int64   `json:"objects"`
	Bytes        int64   `json:"bytes"`
	Leaves       *Leaves `json:"leaves,omitempty"`
	EntryBuckets []int   `json:"entry_buckets,omitempty"`
	Entries      []byte  `json:"entries,omitempty"`
}

// buildManifest builds the content-mode manifest of the region's blobs with
// the content-hash cache (only changed objects are read again).
func (s *Server) buildManifest(ctx context.Context) (*blob.BlobManifest, error) {
	store, err := adapters.OpenBlob(ctx, s.o.Blobs)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	o := blob.ManifestOptions{Mode: blob.ModeContent, Workers: 16, RehashEvery: s.o.RehashEvery}
	var cache *blob.BlobCache
	if s.o.BlobCacheDir != "" {
		if cache, err = blob.OpenBlobCache(s.o.BlobCacheDir, store.Location()); err != nil {
			s.o.Logf("agent: blob cache: %v; running without it", err)
			cache = nil
		}
		o.Cache = cache
	}
	m, err := blob.BuildManifest(ctx, store, o)
	if cache != nil {
		if serr := cache.Save(err == nil); serr != nil {
			s.o.Logf("agent: could not save the blob cache: %v", serr)
		}
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// manifestAnswer is what /v1/manifest serves of m for query q.
func manifestAnswer(m *blob.BlobManifest, q url.Values) (*Manifest, error) {
	out := &Manifest{Hash: m.Hash().Hex(), Location: m.Location, Objects: m.Objects, Bytes: m.Bytes}
	view, list := q.Get("view"), q.Get("b")
	switch {
	case list != "":
		if view != "" {
			return nil, errors.New("b: not with view")
		}
		_, buckets, err := parseBuckets(list, blob.ManifestBuckets)
		if err != nil {
			return nil, err
		}
		sort.Ints(buckets)
		out.EntryBuckets = buckets
		for _, b := range buckets {
			out.Entries = appendEntries(out.Entries, m.Bucket(b))
		}
	case view == "summary":
	case view == "leaves":
		out.Leaves = encodeLeaves(m.Leaves, 0)
	case view == "":
		out.Entries = appendEntries(out.Entries, m.Entries)
	default:
		return nil, fmt.Errorf("view %q: want summary or leaves (or none, for every entry)", view)
	}
	return out, nil
}

func appendEntries(b []byte, es []blob.BlobEntry) []byte {
	for i := range es {
		e := &es[i]
		b = parity.AppendLP(b, e.Key)
		b = binary.BigEndian.AppendUint64(b, uint64(e.Size))
		b = append(b, e.SHA256[:]...)
	}
	return b
}

// decodeEntries reads appendEntries' encoding.
func decodeEntries(b []byte) ([]blob.BlobEntry, error) {
	var out []blob.BlobEntry
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errors.New("manifest entries are truncated")
		}
		n := int(binary.BigEndian.Uint32(b))
		b = b[4:]
		if n < 0 || len(b) < n+8+32 {
			return nil, errors.New("manifest entries are truncated")
		}
		e := blob.BlobEntry{Key: string(b[:n]), Size: int64(binary.BigEndian.Uint64(b[n:])), Basis: blob.BasisContent}
		copy(e.SHA256[:], b[n+8:])
		b = b[n+8+32:]
		out = append(out, e)
	}
	return out, nil
}

// FetchManifest fetches the region's blob manifest from its agent. With
// entries it is every entry, rebuilt and checked against the signed
// manifest hash (a baseline records them all). Without, it is the signed
// hash and totals only, a remote manifest whose leaves and differing
// buckets blob.Diff fetches when the hash differs from another region's.
// The manifest's Location names the agent and the store it read.
func (c *Client) FetchManifest(ctx context.Context, entries bool) (*blob.BlobManifest, error) {
	start := time.Now()
	q := "/v1/manifest?view=summary"
	if entries {
		q = "/v1/manifest"
	}
	a, err := c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	am := a.Manifest
	if am == nil {
		return nil, errors.New("answer has no manifest")
	}
	hash, err := parity.ParseDigest(am.Hash)
	if err != nil {
		return nil, fmt.Errorf("manifest_hash: %w", err)
	}
	location := fmt.Sprintf("%s (%s)", c.Name(), am.Location)
	if !entries {
		if am.Objects < 0 || am.Bytes < 0 {
			return nil, fmt.Errorf("the manifest summary counts %d objects of %d bytes", am.Objects, am.Bytes)
		}
		m := blob.NewRemoteManifest(location, hash, am.Objects, am.Bytes, &manifestSource{c: c, hash: am.Hash})
		m.Elapsed = time.Since(start)
		return m, nil
	}
	es, err := decodeEntries(am.Entries)
	if err != nil {
		return nil, err
	}
	m := &blob.BlobManifest{Location: location, Mode: blob.ModeContent, Objects: am.Objects, Bytes: am.Bytes, Entries: es}
	if err := m.Finish(); err != nil {
		return nil, err
	}
	if got := m.Hash().Hex(); got != am.Hash {
		return nil, fmt.Errorf("the manifest entries hash to %s, not the signed manifest hash %s", parity.ShortHex(got), parity.ShortHex(am.Hash))
	}
	var objects, bytes int64
	for i := range m.Entries {
		objects++
		bytes += m.Entries[i].Size
	}
	if objects != am.Objects || bytes != am.Bytes {
		return nil, fmt.Errorf("the manifest lists %d objects of %d bytes, its summary %d of %d", objects, bytes, am.Objects, am.Bytes)
	}
	m.Elapsed = time.Since(start)
	return m, nil
}

// manifestSource fetches a remote manifest's parts from the agent; every
// answer must be of the manifest whose hash the summary signed.
type manifestSource struct {
	c    *Client
	hash string
}

func (s *manifestSource) get(ctx context.Context, q string) (*Manifest, error) {
	a, err := s.c.get(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.c.Name(), err)
	}
	if a.Manifest == nil {
		return nil, fmt.Errorf("%s: answer has no manifest", s.c.Name())
	}
	if a.Manifest.Hash != s.hash {
		return nil, fmt.Errorf("%s: the agent rebuilt its blob manifest between requests (hash %s, was %s): retry", s.c.Name(),
			parity.ShortHex(a.Manifest.Hash), parity.ShortHex(s.hash))
	}
	return a.Manifest, nil
}

func (s *manifestSource) Leaves(ctx context.Context) ([]parity.Leaf, error) {
	am, err := s.get(ctx, "/v1/manifest?view=leaves")
	if err != nil {
		return nil, err
	}
	if am.Leaves == nil || am.Leaves.From != 0 {
		return nil, fmt.Errorf("%s: answer lacks the manifest leaves", s.c.Name())
	}
	return am.Leaves.decode()
}

func (s *manifestSource) Entries(ctx context.Context, buckets []int) ([]blob.BlobEntry, error) {
	var out []blob.BlobEntry
	for len(buckets) > 0 {
		part := buckets[:min(len(buckets), MaxBucketsPerRequest)]
		buckets = buckets[len(part):]
		strs := make([]string, len(part))
		for i, b := range part {
			strs[i] = strconv.Itoa(b)
		}
		am, err := s.get(ctx, "/v1/manifest?b="+strings.Join(strs, ","))
		if err != nil {
			return nil, err
		}
		got := append([]int(nil), am.EntryBuckets...)
		want := append([]int(nil), part...)
		sort.Ints(got)
		sort.Ints(want)
		if !slices.Equal(got, want) {
			return nil, fmt.Errorf("%s: answer holds the entries of buckets %v, not those asked for", s.c.Name(), am.EntryBuckets)
		}
		es, err := decodeEntries(am.Entries)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}
