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

func init() {
	register("hash", "print each region's INDEX_HASH, settings digest, content root and point count", runHash)
}

// RegionHashJSON is one region in `hash --json` output.
type RegionHashJSON struct {
	Name                string         `json:"name"`
	IndexHash           string         `json:"index_hash,omitempty"`
	SettingsDigest      string         `json:"settings_digest,omitempty"`
	EngineDigest        string         `json:"engine_digest,omitempty"`
	ContentRoot         string         `json:"content_root,omitempty"`
	ContentRootTolerant string         `json:"content_root_tolerant,omitempty"`
	Points              int64          `json:"points"`
	Settings            map[string]any `json:"settings,omitempty"`
	SettingsEngine      map[string]any `json:"settings_engine,omitempty"`
	SettingsInfo        map[string]any `json:"settings_info,omitempty"`
	ElapsedMS           int64          `json:"elapsed_ms"`
	// Duplicates are ids the store holds more than once, with their count.
	Duplicates map[string]int `json:"duplicates,omitempty"`
	Error      string         `json:"error,omitempty"`
}

// HashJSON is the `hash --json` document.
type HashJSON struct {
	Release   string           `json:"release"`
	Equal     bool             `json:"equal"`
	Buckets   int              `json:"buckets"`
	Tolerance float64          `json:"tolerance"`
	Regions   []RegionHashJSON `json:"regions"`
	Error     string           `json:"error,omitempty"`
}

func regionHashJSON(name string, s *verifier.Scan) RegionHashJSON {
	return RegionHashJSON{
		Name: name, IndexHash: s.IndexHash().Hex(), SettingsDigest: s.SettingsDigest.Hex(), EngineDigest: s.EngineDigest.Hex(),
		ContentRoot: s.ContentRoot().Hex(), ContentRootTolerant: verifier.TolerantRootHex(s),
		Points: s.Points, Settings: s.Settings.Hashed, SettingsEngine: s.Settings.Engine, SettingsInfo: s.Settings.Info, ElapsedMS: s.Elapsed.Milliseconds(),
		Duplicates: s.Duplicates,
	}
}

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
	prog := newProgress(stderr, cf.json)
	so := prog.scanOptions(shard, false)
	so.Tolerant = *tolerant
	res := gate.ScanRegions(ctx, cfg, sel, so)
	prog.done()
	if shard.N > 0 {
		return printShard(cfg.Release, verifierTol(cfg.Hash.Tolerance), shard, res, cf.json, stdout, stderr)
	}
	out := HashJSON{Release: cfg.Release, Buckets: verifierBuckets(cfg.Hash.Buckets), Tolerance: verifierTol(cfg.Hash.Tolerance)}
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, r.Err)
			out.Regions = append(out.Regions, RegionHashJSON{Name: r.Region.Name, Error: r.Err.Error()})
			continue
		}
		out.Regions = append(out.Regions, regionHashJSON(r.Region.Name, r.Scan))
	}
	out.Equal = len(errs) == 0 && allEqual(out.Regions)
	if len(errs) > 0 {
		out.Error = errors.Join(errs...).Error()
	}
	return printHash(out, cf.json, stdout, stderr)
}

func verifierBuckets(b int) int {
	if b == 0 {
		return verifier.DefaultBuckets
	}
	return b
}

func verifierTol(t float64) float64 {
	if t == 0 {
		return verifier.DefaultTolerance
	}
	return t
}

func allEqual(rs []RegionHashJSON) bool {
	for _, r := range rs {
		if len(r.Duplicates) > 0 {
			return false // a region holding an id twice is no faithful copy
		}
	}
	for _, r := range rs[1:] {
		if r.IndexHash != rs[0].IndexHash {
			return false
		}
	}
	return true
}

// printHash prints the hash result and returns the exit code.
func printHash(out HashJSON, asJSON bool, stdout, stderr io.Writer) int {
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
	for _, r := range out.Regions {
		if r.Error != "" {
			fmt.Fprintf(stdout, "%s  ERROR: %s\n\n", r.Name, r.Error)
			continue
		}
		fmt.Fprintf(stdout, "%s  points=%d  elapsed=%dms\n", r.Name, r.Points, r.ElapsedMS)
		fmt.Fprintf(stdout, "  index_hash             %s\n", r.IndexHash)
		fmt.Fprintf(stdout, "  settings_digest        %s\n", r.SettingsDigest)
		fmt.Fprintf(stdout, "  engine_digest          %s  (not part of INDEX_HASH)\n", r.EngineDigest)
		fmt.Fprintf(stdout, "  content_root           %s\n", r.ContentRoot)
		if r.ContentRootTolerant != "" {
			fmt.Fprintf(stdout, "  content_root_tolerant  %s\n", r.ContentRootTolerant)
		}
		fmt.Fprintf(stdout, "  settings              ")
		for _, k := range sortedKeys(r.Settings) {
			fmt.Fprintf(stdout, " %s=%v", k, r.Settings[k])
		}
		fmt.Fprintln(stdout)
		fmt.Fprintf(stdout, "  engine settings       ")
		for _, k := range sortedKeys(r.SettingsEngine) {
			fmt.Fprintf(stdout, " %s=%v", k, r.SettingsEngine[k])
		}
		fmt.Fprintln(stdout)
		if w, ok := r.SettingsInfo["index.warning"]; ok {
			fmt.Fprintf(stdout, "  warning: %v\n", w)
		}
		if len(r.Duplicates) > 0 {
			fmt.Fprintf(stdout, "  DUPLICATES: %d ids held more than once (listed in --json)\n", len(r.Duplicates))
		}
		fmt.Fprintln(stdout)
	}
	switch code {
	case ExitEqual:
		fmt.Fprintf(stdout, "release %s: all %d regions agree (INDEX_HASH equal)\n", out.Release, len(out.Regions))
		describeEngines(out.Regions, stdout)
	case ExitDiffer:
		fmt.Fprintf(stdout, "release %s: regions DIFFER; see 'ragparity diff --from A --to B'\n", out.Release)
		describeDifference(out.Regions, stdout)
	default:
		fmt.Fprintf(stderr, "Error: %s\n", out.Error)
		fmt.Fprintf(stdout, "release %s: could not tell (see errors above)\n", out.Release)
	}
	return code
}

// describeDifference says whether settings, content or both differ.
func describeDifference(rs []RegionHashJSON, w io.Writer) {
	base := rs[0]
	for _, r := range rs[1:] {
		if r.IndexHash == base.IndexHash {
			continue
		}
		var what []string
		if r.SettingsDigest != base.SettingsDigest {
			what = append(what, "settings")
		}
		switch {
		case r.ContentRoot == base.ContentRoot:
		case r.ContentRootTolerant != "" && r.ContentRootTolerant == base.ContentRootTolerant:
			what = append(what, "content (numerically equivalent within the tolerance)")
		default:
			what = append(what, "content")
		}
		fmt.Fprintf(w, "  %s vs %s: %s differ\n", base.Name, r.Name, joinAnd(what))
	}
}

// describeEngines reports regions whose engine settings differ from the
// first region's: a separate finding, which leaves INDEX_HASH alone.
func describeEngines(rs []RegionHashJSON, w io.Writer) {
	for _, r := range rs[1:] {
		if r.EngineDigest != rs[0].EngineDigest {
			fmt.Fprintf(w, "  engine: %s and %s differ in engine settings (engine_digest), not in INDEX_HASH; see 'ragparity diff'\n", rs[0].Name, r.Name)
		}
	}
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return "nothing"
	case 1:
		return s[0]
	}
	return fmt.Sprintf("%s and %s", s[0], s[1])
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return ExitUnknown
}
