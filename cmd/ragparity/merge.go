package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/verifier"
)

func init() {
	register("merge", "combine 'hash --shard i/N --json' outputs into the whole run's INDEX_HASH", runMerge)
}

func printShard(release string, tol float64, shard verifier.Shard, res []gate.RegionScan, asJSON bool, stdout, stderr io.Writer) int {
	out := verifier.ShardJSON{Format: verifier.ShardFormat, Release: release, Shard: shard.String(), Tolerance: tol}
	code := ExitEqual
	for _, r := range res {
		if r.Err != nil {
			code = ExitUnknown
			fmt.Fprintf(stderr, "Error: %v\n", r.Err)
			out.Regions = append(out.Regions, verifier.ShardRegion{Name: r.Region.Name, Shard: shard.String(), Error: r.Err.Error()})
			continue
		}
		out.Buckets = r.Scan.Buckets
		out.Regions = append(out.Regions, verifier.ShardOf(r.Region.Name, r.Scan))
	}
	if !asJSON {
		for _, r := range out.Regions {
			if r.Error == "" {
				fmt.Fprintf(stdout, "%s shard %s: buckets [%d, %d) points=%d settings_digest=%s\n", r.Name, r.Shard, r.Range[0], r.Range[1], r.Points, r.SettingsDigest)
			}
		}
		fmt.Fprintln(stdout, "(use --json and 'ragparity merge' to combine shards)")
		return code
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(out); err != nil {
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
	var release string
	buckets, tol := 0, 0.0
	byRegion := map[string][]verifier.ShardRegion{}
	var order []string
	for _, path := range fs.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			return fail(stderr, err)
		}
		var sj verifier.ShardJSON
		dec := json.NewDecoder(bytesReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&sj); err != nil {
			return fail(stderr, fmt.Errorf("%s: not a shard output: %w", path, err))
		}
		if sj.Format != verifier.ShardFormat {
			return fail(stderr, fmt.Errorf("%s: format %q, want %q", path, sj.Format, verifier.ShardFormat))
		}
		if release == "" {
			release = sj.Release
		} else if sj.Release != release {
			return fail(stderr, fmt.Errorf("%s: release %q, other shards %q", path, sj.Release, release))
		}
		if buckets == 0 {
			buckets = sj.Buckets
		} else if sj.Buckets != buckets && sj.Buckets != 0 {
			return fail(stderr, fmt.Errorf("%s: %d buckets, other shards %d", path, sj.Buckets, buckets))
		}
		if tol == 0 {
			tol = sj.Tolerance
		} else if sj.Tolerance != tol {
			return fail(stderr, fmt.Errorf("%s: tolerance %g, other shards %g", path, sj.Tolerance, tol))
		}
		for _, r := range sj.Regions {
			if _, ok := byRegion[r.Name]; !ok {
				order = append(order, r.Name)
			}
			byRegion[r.Name] = append(byRegion[r.Name], r)
		}
	}
	if buckets == 0 {
		return fail(stderr, errors.New("merge: no shard carries a bucket count (did every shard fail?)"))
	}
	out := HashJSON{Release: release, Buckets: buckets, Tolerance: tol}
	for _, name := range order {
		s, skew, err := verifier.MergeShards(buckets, byRegion[name], *allowSkew)
		if err != nil {
			return fail(stderr, err)
		}
		for _, k := range skew {
			fmt.Fprintf(stderr, "warning: --allow-skew: %s\n", k)
		}
		out.Regions = append(out.Regions, regionHashJSON(name, s))
	}
	out.Equal = allEqual(out.Regions)
	return printHash(out, *asJSON, stdout, stderr)
}
