package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/verifier/blob"
	"golang.org/x/term"
)

func init() {
	register("manifest", "print each region's blob manifest hash and object count", runManifest)
}

const manifestHelp = `Usage: ragparity manifest --config FILE [--region R] [--mode content|checksum|etag]
                          [--workers N] [--no-cache] [--cache-dir DIR] [--json] [--timeout D]

Prints each region's blob manifest hash (regions[].blobs: s3://bucket/prefix?endpoint=...
or file:///path) and object count, and whether all regions agree.

Modes:
  content   (default; what the gate uses) stream every object and hash it with
            SHA-256. Hashes are cached by (location, key, size, ETag,
            last-modified), so a re-run reads only changed objects; --no-cache
            reads everything (and refreshes the cache).
  checksum  trust a stored full-object checksum (x-amz-checksum-sha256, else
            CRC64NVME) where every region holding the key has one; read the
            content otherwise.
  etag      size + ETag only: a quick pre-filter. It can find differences
            (exit 1) but never proves equality: when it finds none it exits 2
            ("could not tell"). Multipart ETags (-N) of objects that may have
            been uploaded with different part sizes are reported inconclusive.

Exit 0 when equal, 1 when different, 2 when it could not tell (error,
timeout, bad input, or ETag mode without a difference).

`

// blobFlags are the flags of manifest and diff --blobs.
type blobFlags struct {
	mode     string
	workers  int
	noCache  bool
	cacheDir string
}

func blobFlagsFor(fs *flag.FlagSet) *blobFlags {
	b := &blobFlags{}
	fs.StringVar(&b.mode, "mode", "content", "blob comparison: content, checksum or etag (see 'ragparity manifest -h')")
	fs.IntVar(&b.workers, "workers", 16, "blobs: objects read and listing requests in flight per region")
	fs.BoolVar(&b.noCache, "no-cache", false, "blobs: read every object even when the content-hash cache has it")
	fs.StringVar(&b.cacheDir, "cache-dir", "", "blobs: content-hash cache folder (default $XDG_CACHE_HOME/ragparity/blobs)")
	return b
}

func (b *blobFlags) check() (blob.BlobMode, error) {
	mode, err := blob.ParseBlobMode(b.mode)
	if err != nil {
		return "", err
	}
	if b.workers < 1 || b.workers > 1024 {
		return "", fmt.Errorf("--workers %d: want 1 to 1024", b.workers)
	}
	return mode, nil
}

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

// ManifestJSON is the `manifest --json` document.
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

func runManifest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("manifest", flag.ContinueOnError)
	var cf commonFlags
	cf.add(fs)
	bf := blobFlagsFor(fs)
	var regions listFlag
	fs.Var(&regions, "region", "only these regions (repeatable or comma-separated)")
	fs.Usage = func() {
		fmt.Fprint(stderr, manifestHelp)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	mode, err := bf.check()
	if err != nil {
		return fail(stderr, err)
	}
	cfg, err := cf.load()
	if err != nil {
		return fail(stderr, err)
	}
	sel, err := gate.SelectRegions(cfg, regions)
	if err != nil {
		return fail(stderr, err)
	}
	if err := checkBlobURLs(cfg, sel); err != nil {
		return fail(stderr, err)
	}
	res := bf.build(ctx, cfg, sel, mode, stderr, cf.json)
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
	} else {
		out.Verdict = blob.VerdictEqual
		for _, r := range res[1:] {
			d := blob.DiffManifests(res[0].Region.Name, r.Region.Name, res[0].M, r.M)
			switch d.Verdict {
			case blob.VerdictDifferent:
				out.Verdict = blob.VerdictDifferent
			case blob.VerdictInconclusive:
				if out.Verdict == blob.VerdictEqual {
					out.Verdict = blob.VerdictInconclusive
				}
			}
			if d.Verdict != blob.VerdictEqual {
				out.Differences = append(out.Differences, summarizeBlobDiff(d))
			}
		}
		if mode == blob.ModeETag && out.Verdict != blob.VerdictDifferent {
			out.Verdict = blob.VerdictInconclusive
			out.Note = "no difference found by the ETag pre-filter; " + blob.ETagNote
		}
	}
	out.Equal = out.Verdict == blob.VerdictEqual
	return printManifest(out, cf.json, stdout, stderr)
}

func summarizeBlobDiff(d *blob.BlobDiff) string {
	if d.Verdict == blob.VerdictInconclusive && len(d.Inconclusive) == 0 {
		return fmt.Sprintf("%s vs %s: no difference found, could not tell", d.From, d.To)
	}
	return fmt.Sprintf("%s vs %s: %d only in %s, %d only in %s, %d changed, %d inconclusive",
		d.From, d.To, len(d.OnlyInFrom), d.From, len(d.OnlyInTo), d.To, len(d.Changed), len(d.Inconclusive))
}

func verdictExit(v string) int {
	switch v {
	case blob.VerdictEqual:
		return ExitEqual
	case blob.VerdictDifferent:
		return ExitDiffer
	}
	return ExitUnknown
}

func printManifest(out ManifestJSON, asJSON bool, stdout, stderr io.Writer) int {
	code := verdictExit(out.Verdict)
	if asJSON {
		if err := printJSON(stdout, out); err != nil {
			return fail(stderr, err)
		}
		if out.Error != "" {
			fmt.Fprintf(stderr, "Error: %s\n", out.Error)
		}
		return code
	}
	for _, r := range out.Regions {
		if r.Warning != "" {
			fmt.Fprintf(stderr, "warning: %s\n", r.Warning)
		}
		if r.Error != "" {
			fmt.Fprintf(stdout, "%s  ERROR: %s\n\n", r.Name, r.Error)
			continue
		}
		fmt.Fprintf(stdout, "%s  objects=%d  bytes=%d  read=%d (%s)  cache_hits=%d  checksums_trusted=%d  elapsed=%dms\n",
			r.Name, r.Objects, r.Bytes, r.ObjectsRead, humanBytes(r.BytesRead), r.CacheHits, r.ChecksumsTrusted, r.ElapsedMS)
		fmt.Fprintf(stdout, "  manifest_hash  %s", r.ManifestHash)
		if !r.Exact {
			fmt.Fprint(stdout, "  (partly on stored CRC64NVME/ETags: comparable within this run only)")
		}
		fmt.Fprintf(stdout, "\n  location       %s\n\n", r.Location)
	}
	switch code {
	case ExitEqual:
		fmt.Fprintf(stdout, "release %s: all %d regions' blob manifests agree (mode %s)\n", out.Release, len(out.Regions), out.Mode)
	case ExitDiffer:
		fmt.Fprintf(stdout, "release %s: blob manifests DIFFER (mode %s); see 'ragparity diff --blobs --from A --to B'\n", out.Release, out.Mode)
		for _, d := range out.Differences {
			fmt.Fprintf(stdout, "  %s\n", d)
		}
	default:
		if out.Error != "" {
			fmt.Fprintf(stderr, "Error: %s\n", out.Error)
			fmt.Fprintf(stdout, "release %s: could not tell (see errors above)\n", out.Release)
		} else {
			for _, d := range out.Differences {
				fmt.Fprintf(stdout, "  %s\n", d)
			}
			fmt.Fprintf(stdout, "release %s: could not tell (mode %s): %s\n", out.Release, out.Mode, out.Note)
		}
	}
	return code
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for x := n / unit; x >= unit; x /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// runBlobDiff is `diff --blobs`.
func runBlobDiff(ctx context.Context, cf *commonFlags, bf *blobFlags, from, to string, stdout, stderr io.Writer) int {
	failJSON := func(err error) int {
		if cf.json {
			json.NewEncoder(stdout).Encode(map[string]any{"from": from, "to": to, "equal": false, "error": err.Error()})
		}
		return fail(stderr, err)
	}
	mode, err := bf.check()
	if err != nil {
		return failJSON(err)
	}
	cfg, err := cf.load()
	if err != nil {
		return failJSON(err)
	}
	sel, err := gate.SelectRegions(cfg, []string{from, to})
	if err != nil {
		return failJSON(err)
	}
	if err := checkBlobURLs(cfg, sel); err != nil {
		return failJSON(err)
	}
	res := bf.build(ctx, cfg, sel, mode, stderr, cf.json)
	var errs []error
	for _, r := range res {
		if r.Warning != "" {
			fmt.Fprintf(stderr, "warning: %s\n", r.Warning)
		}
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	if len(errs) > 0 {
		return failJSON(errors.Join(errs...))
	}
	d := blob.DiffManifests(from, to, res[0].M, res[1].M)
	code := verdictExit(d.Verdict)
	if cf.json {
		if err := printJSON(stdout, d); err != nil {
			return fail(stderr, err)
		}
		return code
	}
	d.WriteText(stdout)
	return code
}

// checkBlobURLs requires a blobs URL in every selected region.
func checkBlobURLs(cfg *config.Config, regions []*config.Region) error {
	for _, r := range regions {
		if strings.TrimSpace(r.Blobs) == "" && r.Agent == nil {
			return fmt.Errorf("%s: region %s: regions[].blobs is not set (want s3://bucket/prefix?endpoint=... or file:///path)", cfg.File, r.Name)
		}
	}
	return nil
}

// build builds the regions' manifests with these flags and a progress line.
func (bf *blobFlags) build(ctx context.Context, cfg *config.Config, sel []*config.Region, mode blob.BlobMode, stderr io.Writer, quiet bool) []gate.RegionManifest {
	prog := newBlobProgress(stderr, quiet)
	defer prog.done()
	o := gate.BlobOptions{Mode: mode, Workers: bf.workers, NoCache: bf.noCache, CacheDir: bf.cacheDir, RehashEvery: cfg.Blobs.RehashEvery}
	if prog.on {
		o.Progress = prog.fn
	}
	return gate.BuildManifests(ctx, cfg, sel, o)
}

// blobProgress prints one status line on stderr when it is a terminal.
type blobProgress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	state map[string][2]int64
	order []string
	last  time.Time
}

func newBlobProgress(stderr io.Writer, quiet bool) *blobProgress {
	p := &blobProgress{w: stderr, state: map[string][2]int64{}}
	if f, ok := stderr.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		p.on = true
	}
	return p
}

func (p *blobProgress) fn(region string) func(objects, bytes int64) {
	if !p.on {
		return nil
	}
	p.mu.Lock()
	p.order = append(p.order, region)
	p.mu.Unlock()
	return func(objects, bytes int64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.state[region] = [2]int64{objects, bytes}
		var parts []string
		for _, r := range p.order {
			s := p.state[r]
			parts = append(parts, fmt.Sprintf("%s %d objects, %s read", r, s[0], humanBytes(s[1])))
		}
		fmt.Fprintf(p.w, "\r\033[Kblobs: %s", strings.Join(parts, "; "))
	}
}

func (p *blobProgress) done() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
