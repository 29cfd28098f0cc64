package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/internal/termui"
	"github.com/ragparity/ragparity/verifier/blob"
)

func init() {
	register("manifest", "print each region's blob manifest hash and object count", runManifest)
}

var manifestHelp = help("manifest")

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
	if err := gate.CheckBlobURLs(cfg, sel); err != nil {
		return fail(stderr, err)
	}
	res := bf.build(ctx, cfg, sel, mode, stderr, cf.json)
	out := gate.CompareManifests(cfg.Release, mode, res)
	return printManifest(out, cf.json, stdout, stderr)
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

func printManifest(out gate.ManifestJSON, asJSON bool, stdout, stderr io.Writer) int {
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
	out.WriteText(stdout, stderr)
	return code
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
	if err := gate.CheckBlobURLs(cfg, sel); err != nil {
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

// build builds the regions' manifests with these flags and a progress line.
func (bf *blobFlags) build(ctx context.Context, cfg *config.Config, sel []*config.Region, mode blob.BlobMode, stderr io.Writer, quiet bool) []gate.RegionManifest {
	prog := termui.NewLine(stderr, "blobs: ", "; ", quiet)
	defer prog.Done()
	o := gate.BlobOptions{Mode: mode, Workers: bf.workers, NoCache: bf.noCache, CacheDir: bf.cacheDir, RehashEvery: cfg.Blobs.RehashEvery}
	if prog.On() {
		o.Progress = prog.Objects
	}
	return gate.BuildManifests(ctx, cfg, sel, o)
}
