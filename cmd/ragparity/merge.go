package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/verifier"
)

// printShard prints a shard's scans (JSON for 'ragparity merge'); err
// is the regions' that could not be scanned.
func printShard(out verifier.ShardJSON, err error, asJSON bool, stdout, stderr io.Writer) int {
	code := ExitEqual
	if err != nil {
		code = ExitUnknown
	}
	for _, r := range out.Regions {
		if r.Error != "" {
			fmt.Fprintf(stderr, "Error: %s\n", r.Error)
		}
	}
	if !asJSON {
		for _, r := range out.Regions {
			if r.Error == "" && r.Split == verifier.SplitRows {
				fmt.Fprintf(stdout, "%s shard %s: rows part %s of the table, every bucket points=%d settings_digest=%s\n", r.Name, r.Shard, r.Shard, r.Points, r.SettingsDigest)
			} else if r.Error == "" {
				fmt.Fprintf(stdout, "%s shard %s: buckets [%d, %d) points=%d settings_digest=%s\n", r.Name, r.Shard, r.Range[0], r.Range[1], r.Points, r.SettingsDigest)
			}
		}
		fmt.Fprintln(stdout, "(use --json and 'ragparity merge' to combine shards)")
		return code
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		return fail(stderr, err)
	}
	return code
}

func runMerge(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the merged result as JSON (the 'hash --json' document)")
	allowSkew := fs.Bool("allow-skew", false, "merge shards taken from different snapshots or stores anyway (reported on stderr)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ragparity merge [--json] [--allow-skew] SHARD.json...\n\nCombines the outputs of 'ragparity hash --shard i/N --json' (every i of N, for\nevery region) into exactly the INDEX_HASH a whole run gives. Each shard records\nthe store's identity and a snapshot marker (pgvector: the WAL position at its\nstart; Qdrant: the collection's counts and status); shards that differ are\nrefused unless --allow-skew, which merges them and reports every difference.\nExit 0 when all regions agree, 1 when they differ, 2 on bad or missing shards.\n\n")
		fs.PrintDefaults()
	}
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return ExitUnknown
	}
	out, warnings, err := gate.MergeShardFiles(fs.Args(), *allowSkew)
	if err != nil {
		return fail(stderr, err)
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return printHash(out, *asJSON, stdout, stderr)
}
