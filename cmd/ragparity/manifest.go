package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/internal/termui"
	"github.com/ragparity/ragparity/verifier/blob"
)

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
	prog := termui.NewLine(stderr, "blobs: ", "; ", cf.json)
	res := gate.BuildManifests(ctx, cfg, sel, bf.options(cfg, mode, prog))
	prog.Done()
	out := gate.CompareManifests(ctx, cfg, mode, res)
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
	prog := termui.NewLine(stderr, "blobs: ", "; ", cf.json)
	d, warnings, err := gate.DiffBlobs(ctx, cfg, from, to, bf.options(cfg, mode, prog))
	prog.Done()
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if err != nil {
		return failJSON(err)
	}
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

// options are gate.BlobOptions from these flags, with a progress line.
func (bf *blobFlags) options(cfg *config.Config, mode blob.BlobMode, prog *termui.Line) gate.BlobOptions {
	o := gate.BlobOptions{Mode: mode, Workers: bf.workers, NoCache: bf.noCache, CacheDir: bf.cacheDir, RehashEvery: cfg.Blobs.RehashEvery}
	if prog.On() {
		o.Progress = prog.Objects
	}
	return o
}
