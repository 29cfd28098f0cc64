package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/verifier"
)

func runHash(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash", flag.ContinueOnError)
	var cf commonFlags
	cf.add(fs)
	var regions listFlag
	fs.Var(&regions, "region", "only these regions (repeatable or comma-separated)")
	shardFlag := fs.String("shard", "", "hash only shard i of N (i/N); combine the outputs with 'ragparity merge'")
	tolerant := fs.Bool("tolerant", false, "also compute content_root_tolerant (a second SHA-256 over every vector; config hash.tolerant)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ragparity hash --config FILE [--json] [--region R] [--shard i/N] [--tolerant] [--timeout D]\n\nPrints each region's INDEX_HASH and whether all regions agree.\nExit 0 when equal, 1 when they differ, 2 when it could not tell.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	shard, err := verifier.ParseShard(*shardFlag)
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
	prog := scanProgress(stderr, cf.json)
	so := scanOptions(prog, shard, false)
	so.Tolerant = *tolerant
	res := gate.ScanRegions(ctx, cfg, sel, so)
	prog.Done()
	if shard.N > 0 {
		out, err := gate.ShardReport(cfg, shard, res)
		return printShard(out, err, cf.json, stdout, stderr)
	}
	out := gate.HashReport(cfg, res)
	return printHash(out, cf.json, stdout, stderr)
}

// printHash prints the hash result and returns the exit code.
func printHash(out gate.HashJSON, asJSON bool, stdout, stderr io.Writer) int {
	code := ExitDiffer
	if out.Equal {
		code = ExitEqual
	}
	if out.Error != "" {
		code = ExitUnknown
	}
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

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return ExitUnknown
}
