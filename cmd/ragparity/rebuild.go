package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
)

func runRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	var cf commonFlags
	cf.add(fs)
	source := fs.String("source", "", "folder of text files, a BEIR corpus.jsonl (or a folder holding one), or a blob store URL of text files (s3://bucket/prefix?..., file:///path) (required)")
	var regions listFlag
	fs.Var(&regions, "regions", "target regions (comma-separated; default: every region with a vectors URL)")
	resume := fs.Bool("resume", false, "continue an interrupted run (reuses its fence claims)")
	promote := fs.Bool("promote", false, "swap the rebuilt indexes in when every region's INDEX_HASH agrees")
	runID := fs.String("run-id", "", "name of this rebuild (default: a digest of the source manifest (ids and revisions), analyzers, model tag and settings, so a replay of the same content writes nothing twice and changed content is a new run; pass a new one to rebuild again after a promote)")
	batch := fs.Int("batch", 64, "documents claimed, embedded and written together")
	wait := fs.Bool("wait", false, "when another run is rebuilding a target region, wait for it instead of exiting 2")
	mkBaseline := fs.Bool("baseline", false, "with --promote: then take the release baseline from the first rebuilt region (as `baseline create`: its health contract must claim the new INDEX_HASH; needs gate.signing_key)")
	baseGold := fs.String("goldset", "", "with --baseline: the gold set whose probe runs the baseline records")
	baseAccept := fs.String("accept-below-floor", "", "with --baseline: the reason a release below the quality floors gets a baseline anyway")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ragparity rebuild --config FILE --source SRC [--regions R1,R2] [--resume] [--promote] [--json]\n\nChunks every document with the configured analyzer, embeds each chunk once,\nwrites every target region's staged index behind the idempotency fence,\ncompares the regions' INDEX_HASHes and, with --promote, swaps the stages in.\nExit 0 on success, 1 when the rebuilt regions disagree, 2 on error (the live\nindexes are then untouched).\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	if *mkBaseline && !*promote {
		return fail(stderr, errors.New("rebuild --baseline needs --promote (a baseline records what the live index holds)"))
	}
	// main trades memory for less GC work (GOGC 400), which suits short
	// scans; a rebuild streams for minutes through transient batches, waits
	// mostly on the stores, and keeps its memory bounded instead (under
	// 200 MB RSS for a 100 MB source file, make bench), unless the user set
	// GOGC. Measured on that file: GOGC 400 peaks at 243 MB, 100 at 204,
	// 50 at 185 with no loss of speed.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if *source == "" {
		return fail(stderr, errors.New("rebuild needs --source"))
	}
	cfg, err := cf.load()
	if err != nil {
		return fail(stderr, err)
	}
	if cf.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cf.timeout)
		defer cancel()
	}
	prog := scanProgress(stderr, cf.json)
	pf := prog.Points("documents")
	res, err := gate.Rebuild(ctx, cfg, gate.RebuildOptions{Source: *source, Regions: regions, RunID: *runID, Resume: *resume,
		Wait: *wait, Promote: *promote, BatchDocs: *batch, Progress: func(n int) {
			if pf != nil {
				pf(int64(n))
			}
		}})
	prog.Done()
	if res == nil {
		return fail(stderr, err)
	}
	for _, s := range res.StaleStages {
		fmt.Fprintf(stderr, "warning: region %s has a stale stage of run %s (%d points): list with `ragparity stages list`, remove with `ragparity stages drop --region %s --run-id %s`\n", s.Region, s.RunID, s.Points, s.Region, s.RunID)
	}
	code := ExitEqual
	if !res.Agree {
		code = ExitDiffer
	}
	if cf.json {
		printJSON(stdout, res)
	} else {
		res.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		if code == ExitEqual {
			// A run that met an error never exits 0 (a region whose
			// promoted index is gone, say).
			code = ExitUnknown
		}
	}
	if *mkBaseline && err == nil && res.Promoted && code == ExitEqual {
		b, berr := server.TakeBaseline(ctx, cfg, gate.CreateOptions{From: res.Regions[0], Goldset: *baseGold, AcceptBelowFloor: *baseAccept})
		if berr != nil {
			fmt.Fprintf(stderr, "Error: the rebuild was promoted, but no baseline was made: %v (take it with `ragparity baseline create` once the region answers its new contract)\n", berr)
			return ExitUnknown
		}
		if !cf.json {
			fmt.Fprintf(stdout, "baseline %s of release %s taken from %s\n", b.ID, b.Release, b.From)
		}
	}
	return code
}
