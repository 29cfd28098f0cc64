package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/gate"
)

var fenceUsage = help("fence")

func runFence(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	verb, code, ok := pickVerb("fence", args, []string{"claim", "done", "release", "status"}, fenceUsage, stdout, stderr)
	if !ok {
		return code
	}
	fs := flag.NewFlagSet("fence "+verb, flag.ContinueOnError)
	var cf commonFlags
	cf.add(fs)
	region := fs.String("region", "", "the region whose dedupe_kv to use (required)")
	host, _ := os.Hostname()
	owner := fs.String("owner", host, "this writer's identity in pending claims")
	var sourceID, revision, indexHash, partition, key *string
	var lease *time.Duration
	switch verb {
	case "claim":
		sourceID = fs.String("source-id", "", "the written document's source id (required)")
		revision = fs.String("revision", "", "its revision (required)")
		indexHash = fs.String("index-hash", "", "the index written to (required)")
		partition = fs.String("partition", "", "the partition written to (what the write lands in; part of the key)")
		lease = fs.Duration("lease", 0, "how long the claim blocks other writers if this one dies (default: the config's fence.lease)")
	case "done", "release":
		key = fs.String("key", "", "the key claim printed (required)")
	}
	fs.Usage = func() { fmt.Fprint(stderr, fenceUsage); fs.PrintDefaults() }
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return flagExit(err)
	}
	need := map[string]*string{"region": region}
	switch verb {
	case "claim":
		need["source-id"], need["revision"], need["index-hash"] = sourceID, revision, indexHash
	case "done", "release":
		need["key"] = key
	}
	for _, n := range []string{"region", "source-id", "revision", "index-hash", "key"} {
		if p, ok := need[n]; ok && *p == "" {
			return fail(stderr, fmt.Errorf("fence %s needs --%s", verb, n))
		}
	}
	if key != nil && !fence.ValidKey(*key) {
		return fail(stderr, errors.New("--key: want the 64 hex digits `fence claim` printed"))
	}
	cfg, err := cf.load()
	if err != nil {
		return fail(stderr, err)
	}
	r, err := gate.SelectRegions(cfg, []string{*region})
	if err != nil {
		return fail(stderr, err)
	}
	f, err := gate.OpenFence(cfg, r[0])
	if err != nil {
		return fail(stderr, err)
	}
	defer f.Close()
	w, err := fence.NewWriter(f, fence.WriterOptions{Region: *region, Owner: *owner, Lease: cfg.Fence.Lease,
		TTL: cfg.Fence.FailoverWindow + 24*time.Hour, Window: cfg.Fence.FailoverWindow})
	if err != nil {
		return fail(stderr, err)
	}
	switch verb {
	case "claim":
		k := fence.Key(*sourceID, *revision, *indexHash, *partition)
		st, err := w.ClaimAs(ctx, k, *owner, *lease)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintln(stdout, st.String(), k)
		if st != fence.Acquired {
			return ExitDiffer
		}
	case "done":
		dup, err := w.Done(ctx, *key)
		if err != nil {
			return fail(stderr, err)
		}
		if dup {
			fmt.Fprintln(stdout, "duplicate", *key)
		} else {
			fmt.Fprintln(stdout, "done", *key)
		}
	case "release":
		if err := w.ReleaseAs(ctx, *key, *owner); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintln(stdout, "released", *key)
	case "status":
		st, err := w.Stats(ctx)
		if err != nil {
			return fail(stderr, err)
		}
		warm, err := f.Warm(ctx)
		if err != nil {
			return fail(stderr, err)
		}
		if cf.json {
			printJSON(stdout, map[string]any{"window": st, "warm": warm.Warm, "warm_at": warm.At})
			return ExitEqual
		}
		fmt.Fprintf(stdout, "region %s, window since %s (%s): %d hits, %d misses, %d duplicates; dedupe rate %.4f over %d replayed writes; warm %v\n",
			st.Region, st.Start.Format(time.RFC3339), st.Length, st.Hits, st.Misses, st.Duplicates, st.Rate, st.Replayed, warm.Warm)
	}
	return ExitEqual
}
