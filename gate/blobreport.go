package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/internal/termui"
	"github.com/ragparity/ragparity/replicate"
	"github.com/ragparity/ragparity/verifier/blob"
)

// RegionManifestJSON is one region in `manifest --json` output.
type RegionManifestJSON struct {
	Name         string `json:"name"`
	Location     string `json:"location,omitempty"`
	ManifestHash string `json:"manifest_hash,omitempty"`
	// Exact is false when some entries were compared on a stored CRC64NVME
	// or an ETag: the hash is then comparable only within this run.
	Exact            bool   `json:"exact"`
	Objects          int64  `json:"objects"`
	Bytes            int64  `json:"bytes"`
	ObjectsRead      int64  `json:"objects_read"`
	BytesRead        int64  `json:"bytes_read"`
	CacheHits        int64  `json:"cache_hits"`
	ChecksumsTrusted int64  `json:"checksums_trusted"`
	ElapsedMS        int64  `json:"elapsed_ms"`
	Warning          string `json:"warning,omitempty"`
	Error            string `json:"error,omitempty"`
}

// ManifestJSON is the `manifest --json` document: every region's blob
// manifest and whether they agree.
type ManifestJSON struct {
	Release string               `json:"release"`
	Mode    blob.BlobMode        `json:"mode"`
	Equal   bool                 `json:"equal"`
	Verdict string               `json:"verdict"`
	Regions []RegionManifestJSON `json:"regions"`
	// Differences summarises each region that differs from the first.
	Differences []string `json:"differences,omitempty"`
	Note        string   `json:"note,omitempty"`
	Error       string   `json:"error,omitempty"`
}

// CompareManifests decides whether the regions' manifests agree: equal,
// different (some region differs from the first), or inconclusive (an
// error, an entry that cannot be compared, or ETag mode without a
// difference: ETags never prove equality).
func CompareManifests(ctx context.Context, cfg *config.Config, mode blob.BlobMode, res []RegionManifest) ManifestJSON {
	out := ManifestJSON{Release: cfg.Release, Mode: mode}
	var errs []error
	for _, r := range res {
		rj := RegionManifestJSON{Name: r.Region.Name, Warning: r.Warning}
		if r.Err != nil {
			errs = append(errs, r.Err)
			rj.Error = r.Err.Error()
			out.Regions = append(out.Regions, rj)
			continue
		}
		m := r.M
		rj.Location, rj.ManifestHash, rj.Exact = m.Location, m.Hash().Hex(), m.Exact()
		rj.Objects, rj.Bytes, rj.ObjectsRead, rj.BytesRead = m.Objects, m.Bytes, m.ObjectsRead, m.BytesRead
		rj.CacheHits, rj.ChecksumsTrusted, rj.ElapsedMS = m.CacheHits, m.ChecksumsTrusted, m.Elapsed.Milliseconds()
		out.Regions = append(out.Regions, rj)
	}
	if len(errs) > 0 {
		out.Error = errors.Join(errs...).Error()
		out.Verdict = blob.VerdictInconclusive
		return out
	}
	out.Verdict = blob.VerdictEqual
	for _, r := range res[1:] {
		d, err := diffManifests(ctx, cfg, res[0].Region.Name, r.Region.Name, res[0].M, r.M)
		if err != nil {
			out.Verdict = blob.VerdictInconclusive
			if out.Error != "" {
				out.Error += "; "
			}
			out.Error += err.Error()
			continue
		}
		switch d.Verdict {
		case blob.VerdictDifferent:
			out.Verdict = blob.VerdictDifferent
		case blob.VerdictInconclusive:
			if out.Verdict == blob.VerdictEqual {
				out.Verdict = blob.VerdictInconclusive
			}
		}
		if d.Verdict != blob.VerdictEqual {
			out.Differences = append(out.Differences, SummarizeBlobDiff(d))
		}
	}
	if mode == blob.ModeETag && out.Verdict != blob.VerdictDifferent {
		out.Verdict = blob.VerdictInconclusive
		out.Note = "no difference found by the ETag pre-filter; " + blob.ETagNote
	}
	out.Equal = out.Verdict == blob.VerdictEqual
	return out
}

// SummarizeBlobDiff is a blob diff in one line.
func SummarizeBlobDiff(d *blob.BlobDiff) string {
	if d.Verdict == blob.VerdictInconclusive && len(d.Inconclusive) == 0 {
		return fmt.Sprintf("%s vs %s: no difference found, could not tell", d.From, d.To)
	}
	return fmt.Sprintf("%s vs %s: %d only in %s, %d only in %s, %d changed, %d inconclusive",
		d.From, d.To, len(d.OnlyInFrom), d.From, len(d.OnlyInTo), d.To, len(d.Changed), len(d.Inconclusive))
}

// CheckBlobURLs requires a blobs URL in every region given.
func CheckBlobURLs(cfg *config.Config, regions []*config.Region) error {
	for _, r := range regions {
		if strings.TrimSpace(r.Blobs) == "" && r.Agent == nil {
			return fmt.Errorf("%s: region %s: regions[].blobs is not set (want s3://bucket/prefix?endpoint=... or file:///path)", cfg.File, r.Name)
		}
	}
	return nil
}

// CopyBlobs copies what region to lacks or holds differently from region
// from (replicate.CopyBlobs) under the config's timeout.
func CopyBlobs(ctx context.Context, cfg *config.Config, from, to string, o replicate.CopyOptions) (*replicate.BlobCopyResult, error) {
	sel, err := SelectRegions(cfg, []string{from, to})
	if err != nil {
		return nil, err
	}
	var stores []adapters.BlobStore
	for _, r := range sel {
		if r.Blobs == "" {
			return nil, fmt.Errorf("region %s has no blobs URL in %s", r.Name, cfg.File)
		}
		s, err := adapters.OpenBlob(ctx, r.Blobs)
		if err != nil {
			return nil, fmt.Errorf("region %s: %w", r.Name, err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	return replicate.CopyBlobs(ctx, from, to, stores[0], stores[1], o)
}

// WriteText prints the document for people: each region's manifest, then
// whether they agree. Warnings and errors go to stderr.
func (m *ManifestJSON) WriteText(stdout, stderr io.Writer) {
	for _, r := range m.Regions {
		if r.Warning != "" {
			fmt.Fprintf(stderr, "warning: %s\n", r.Warning)
		}
		if r.Error != "" {
			fmt.Fprintf(stdout, "%s  ERROR: %s\n\n", r.Name, r.Error)
			continue
		}
		fmt.Fprintf(stdout, "%s  objects=%d  bytes=%d  read=%d (%s)  cache_hits=%d  checksums_trusted=%d  elapsed=%dms\n",
			r.Name, r.Objects, r.Bytes, r.ObjectsRead, termui.Bytes(r.BytesRead), r.CacheHits, r.ChecksumsTrusted, r.ElapsedMS)
		fmt.Fprintf(stdout, "  manifest_hash  %s", r.ManifestHash)
		if !r.Exact {
			fmt.Fprint(stdout, "  (partly on stored CRC64NVME/ETags: comparable within this run only)")
		}
		fmt.Fprintf(stdout, "\n  location       %s\n\n", r.Location)
	}
	switch m.Verdict {
	case blob.VerdictEqual:
		fmt.Fprintf(stdout, "release %s: all %d regions' blob manifests agree (mode %s)\n", m.Release, len(m.Regions), m.Mode)
	case blob.VerdictDifferent:
		fmt.Fprintf(stdout, "release %s: blob manifests DIFFER (mode %s); see 'ragparity diff --blobs --from A --to B'\n", m.Release, m.Mode)
		for _, d := range m.Differences {
			fmt.Fprintf(stdout, "  %s\n", d)
		}
	default:
		if m.Error != "" {
			fmt.Fprintf(stderr, "Error: %s\n", m.Error)
			fmt.Fprintf(stdout, "release %s: could not tell (see errors above)\n", m.Release)
		} else {
			for _, d := range m.Differences {
				fmt.Fprintf(stdout, "  %s\n", d)
			}
			fmt.Fprintf(stdout, "release %s: could not tell (mode %s): %s\n", m.Release, m.Mode, m.Note)
		}
	}
}

// DiffBlobs builds two regions' manifests (BuildManifests with o) and
// diffs them; warnings are the build's (a region's cache, say), err the
// regions' that could not be listed or read.
func DiffBlobs(ctx context.Context, cfg *config.Config, from, to string, o BlobOptions) (d *blob.BlobDiff, warnings []string, err error) {
	sel, err := SelectRegions(cfg, []string{from, to})
	if err != nil {
		return nil, nil, err
	}
	if err := CheckBlobURLs(cfg, sel); err != nil {
		return nil, nil, err
	}
	res := BuildManifests(ctx, cfg, sel, o)
	var errs []error
	for _, r := range res {
		if r.Warning != "" {
			warnings = append(warnings, r.Warning)
		}
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	if len(errs) > 0 {
		return nil, warnings, errors.Join(errs...)
	}
	d, err = diffManifests(ctx, cfg, from, to, res[0].M, res[1].M)
	return d, warnings, err
}

// diffManifests is blob.Diff under the config's per-region timeout: a
// remote manifest's leaves and buckets come from its agent, which may not
// answer.
func diffManifests(ctx context.Context, cfg *config.Config, from, to string, a, b *blob.BlobManifest) (*blob.BlobDiff, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	d, err := blob.Diff(ctx, from, to, a, b)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("diff %s -> %s: no complete answer within %v (timeout): %w", from, to, cfg.Timeout, err)
	}
	return d, err
}
