package replicate

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier/blob"
)

// BlobCopyResult summarises a blob replication.
type BlobCopyResult struct {
	From    string   `json:"from"`
	To      string   `json:"to"`
	Copied  []string `json:"copied"`
	Deleted []string `json:"deleted"`
	// Extra are keys the target still holds that the source does not
	// (kept without Delete): the target is then not equal to the source.
	Extra []string `json:"extra"`
	// Verified says every source object is in the target with the same
	// content after copying; Equal that the target also holds nothing more.
	Verified bool  `json:"verified"`
	Equal    bool  `json:"equal"`
	Bytes    int64 `json:"bytes"`
}

// CopyOptions tune CopyBlobs.
type CopyOptions struct {
	// Delete removes keys the target has and the source does not.
	Delete bool
	// AllowEmptySource lets Delete run when the source lists no object
	// (which empties the target); without it that is refused.
	AllowEmptySource bool
}

// ErrOverlap is returned when the source and the target share objects.
var ErrOverlap = errors.New("source and target overlap")

// CopyBlobs makes dst hold src's objects: it copies every key missing from
// dst or whose content (sha256) differs, streaming, and checks each copy's
// sha256 while writing; extra keys in dst are removed only with o.Delete
// (and are otherwise reported in Extra). Afterwards the target is hashed
// again and must hold every source object. It refuses, before writing
// anything, a source and target that overlap (the same container with one
// prefix inside the other: deleting "extra" keys would delete the source's
// own objects), and Delete with an empty source listing unless
// o.AllowEmptySource.
func CopyBlobs(ctx context.Context, from, to string, src, dst adapters.BlobStore, o CopyOptions) (*BlobCopyResult, error) {
	if adapters.BlobsOverlap(src, dst) {
		return nil, fmt.Errorf("%s (%s) and %s (%s): %w (the same bucket or folder with one prefix inside the other); refusing to copy", from, src.Location(), to, dst.Location(), ErrOverlap)
	}
	del := o.Delete
	opts := blob.ManifestOptions{Mode: blob.ModeContent}
	ms, err := blob.BuildManifest(ctx, src, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	if del && len(ms.Entries) == 0 && !o.AllowEmptySource {
		return nil, fmt.Errorf("%s lists no object: --delete would delete every object in %s; refusing (pass --allow-empty-source if that is intended)", from, to)
	}
	md, err := blob.BuildManifest(ctx, dst, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", to, err)
	}
	d := blob.DiffManifests(from, to, ms, md)
	res := &BlobCopyResult{From: from, To: to, Copied: []string{}, Deleted: []string{}, Extra: []string{}}
	want := map[string]blob.BlobEntry{}
	for _, e := range ms.Entries {
		want[e.Key] = e
	}
	keys := append([]string{}, d.OnlyInFrom...)
	for _, c := range d.Changed {
		keys = append(keys, c.Key)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := want[k]
		if err := copyOne(ctx, src, dst, e); err != nil {
			return res, fmt.Errorf("copy %q from %s to %s: %w", k, from, to, err)
		}
		res.Copied = append(res.Copied, k)
		res.Bytes += e.Size
	}
	if del {
		for _, k := range d.OnlyInTo {
			if err := dst.Delete(ctx, k); err != nil {
				return res, fmt.Errorf("delete %q in %s: %w", k, to, err)
			}
			res.Deleted = append(res.Deleted, k)
		}
	}
	// Verify after copying.
	md2, err := blob.BuildManifest(ctx, dst, opts)
	if err != nil {
		return res, fmt.Errorf("%s: verify: %w", to, err)
	}
	d2 := blob.DiffManifests(from, to, ms, md2)
	if len(d2.OnlyInFrom)+len(d2.Changed) > 0 || (del && len(d2.OnlyInTo) > 0) {
		return res, fmt.Errorf("%s: after copying, %d keys still missing and %d still differ (the source changed meanwhile?)", to, len(d2.OnlyInFrom), len(d2.Changed))
	}
	res.Verified = true
	res.Extra = append(res.Extra, d2.OnlyInTo...)
	res.Equal = len(res.Extra) == 0
	return res, nil
}

var errShortCopy = errors.New("object changed while copying (size or sha256 mismatch)")

func copyOne(ctx context.Context, src, dst adapters.BlobStore, e blob.BlobEntry) error {
	rc, err := src.Open(ctx, e.Key)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	tr := io.TeeReader(io.LimitReader(rc, e.Size+1), h)
	cr := &countReader{r: tr}
	if err := dst.Put(ctx, e.Key, cr, e.Size); err != nil {
		return err
	}
	if cr.n != e.Size || parity.Digest(h.Sum(nil)) != e.SHA256 {
		return errShortCopy
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
