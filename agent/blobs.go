package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier/blob"
)

// Manifest is the region's content-mode blob manifest: every entry's key,
// size and content SHA-256 (Entries: uint32 BE key length, key, uint64 BE
// size, 32 bytes), which the gate rebuilds and checks against Hash.
type Manifest struct {
	Hash     string `json:"manifest_hash"`
	Location string `json:"location"`
	Objects  int64  `json:"objects"`
	Bytes    int64  `json:"bytes"`
	Entries  []byte `json:"entries"`
}

// buildManifest builds the content-mode manifest of the region's blobs with
// the content-hash cache (only changed objects are read again).
func (s *Server) buildManifest(ctx context.Context) (*Manifest, error) {
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
	out := &Manifest{Hash: m.Hash().Hex(), Location: store.Location(), Objects: m.Objects, Bytes: m.Bytes}
	for i := range m.Entries {
		e := &m.Entries[i]
		out.Entries = parity.AppendLP(out.Entries, e.Key)
		out.Entries = binary.BigEndian.AppendUint64(out.Entries, uint64(e.Size))
		out.Entries = append(out.Entries, e.SHA256[:]...)
	}
	return out, nil
}

// FetchManifest fetches the region's blob manifest from its agent and
// rebuilds it: the entries must hash to the signed manifest hash. The
// manifest's Location names the agent and the store it read.
func (c *Client) FetchManifest(ctx context.Context) (*blob.BlobManifest, error) {
	start := time.Now()
	a, err := c.get(ctx, "/v1/manifest")
	if err != nil {
		return nil, err
	}
	am := a.Manifest
	if am == nil {
		return nil, errors.New("answer has no manifest")
	}
	m := &blob.BlobManifest{Location: fmt.Sprintf("%s (%s)", c.Name(), am.Location), Mode: blob.ModeContent, Objects: am.Objects, Bytes: am.Bytes}
	b := am.Entries
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
		m.Entries = append(m.Entries, e)
	}
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
