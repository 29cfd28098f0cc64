package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/verifier"
)

func runDiff(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("diff", flag.ContinueOnError)
	var cf commonFlags
	cf.add(fs)
	from := fs.String("from", "", "region to compare from (required)")
	to := fs.String("to", "", "region to compare to (required)")
	blobs := fs.Bool("blobs", false, "compare the regions' blob stores (regions[].blobs) instead of vectors; see 'ragparity manifest -h'")
	bf := blobFlagsFor(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ragparity diff --config FILE --from R1 --to R2 [--json] [--timeout D]\n\nLists ids only in one region, ids whose vector, payload or text differ, and\nevery setting that differs. Only the points of differing Merkle buckets are\ncompared. Exit 0 when equal, 1 when different, 2 when it could not tell.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	if *from == "" || *to == "" {
		return fail(stderr, errors.New("diff needs --from and --to"))
	}
	if *from == *to {
		return fail(stderr, fmt.Errorf("--from and --to name the same region %q", *from))
	}
	if *blobs {
		return runBlobDiff(ctx, &cf, bf, *from, *to, stdout, stderr)
	}
	cfg, err := cf.load()
	if err != nil {
		return fail(stderr, err)
	}
	prog := scanProgress(stderr, cf.json)
	d, err := gate.DiffRegions(ctx, cfg, *from, *to, scanOptions(prog, verifier.Shard{}, true))
	prog.Done()
	if err != nil {
		if cf.json {
			json.NewEncoder(stdout).Encode(map[string]any{"from": *from, "to": *to, "equal": false, "error": err.Error()})
		}
		return fail(stderr, err)
	}
	code := ExitDiffer
	if d.Equal {
		code = ExitEqual
	}
	if cf.json {
		if err := printJSON(stdout, d); err != nil {
			return fail(stderr, err)
		}
		return code
	}
	d.WriteText(stdout, gate.HashTolerance(cfg))
	return code
}
