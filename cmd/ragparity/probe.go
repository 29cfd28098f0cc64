package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/probe"
)

// probeFlags binds the probe settings a flag can override to c.
func probeFlags(fs *flag.FlagSet, c *probe.Config) {
	fs.IntVar(&c.K, "k", c.K, "hits retrieved per probe (probe.k)")
	fs.IntVar(&c.Seeds, "seeds", c.Seeds, "probe seeds; each re-runs every search (probe.seeds)")
	fs.IntVar(&c.MinQuestions, "min-questions", c.MinQuestions, "smallest gold set the drift gate accepts (probe.min_questions)")
	fs.Float64Var(&c.DriftMax, "drift-max", c.DriftMax, "largest ΔS drift allowed on any question (probe.drift_max)")
	fs.Float64Var(&c.DeltaSMax, "delta-s-max", c.DeltaSMax, "quality floor: largest ΔS per question and region (probe.delta_s_max)")
	fs.Float64Var(&c.CoverageMin, "coverage-min", c.CoverageMin, "quality floor: share of questions with a gold id in the top k (probe.coverage_min)")
	fs.Float64Var(&c.ConvergentShareMin, "convergent-share-min", c.ConvergentShareMin, "share of questions whose λ must be convergent, per region and seed (probe.convergent_share_min)")
	fs.Float64Var(&c.LambdaAgreementMin, "lambda-agreement-min", c.LambdaAgreementMin, "share of questions whose λ state must agree across seeds and regions (probe.lambda_agreement_min)")
	fs.Float64Var(&c.JaccardWarn, "jaccard-warn", c.JaccardWarn, "warn when the top-k ids' Jaccard between two regions is below (probe.jaccard_warn)")
	fs.Float64Var(&c.KendallWarn, "kendall-warn", c.KendallWarn, "warn when the top-10 order's Kendall tau between two regions is below (probe.kendall_warn)")
	fs.IntVar(&c.EfSearch, "ef-search", c.EfSearch, "pin HNSW ef_search / Qdrant hnsw_ef for every serving search, 0 = store default (probe.ef_search)")
	fs.IntVar(&c.Probes, "probes", c.Probes, "pin pgvector ivfflat.probes for every serving search, 0 = store default (probe.probes)")
	fs.StringVar(&c.Search, "search", c.Search, "parity searches: exact (brute force, no index) or ann (the serving index) (probe.search)")
	fs.Float64Var(&c.ANNRecallMin, "ann-recall-min", c.ANNRecallMin, "ANN health floor: mean recall@10 of each region's serving search against its exact search (probe.ann_recall_min)")
}

// resolveProbeFlags returns base (the config's probe section) with the
// probe flags given on fs's command line applied over it.
func resolveProbeFlags(fs *flag.FlagSet, base probe.Config) (probe.Config, error) {
	over := flag.NewFlagSet("", flag.ContinueOnError)
	probeFlags(over, &base)
	var err error
	fs.Visit(func(f *flag.Flag) {
		if over.Lookup(f.Name) != nil && err == nil {
			err = over.Set(f.Name, f.Value.String())
		}
	})
	return base, err
}

func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	var cf commonFlags
	cf.add(fs)
	goldPath := fs.String("goldset", "", "gold set: a .yaml/.jsonl file or a BEIR folder (required)")
	var regions listFlag
	fs.Var(&regions, "regions", "only these regions (comma-separated; default: every region with a vectors URL)")
	defaults := probe.Defaults()
	probeFlags(fs, &defaults)
	fs.Usage = func() {
		fmt.Fprint(stderr, help("probe"))
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	if *goldPath == "" {
		return fail(stderr, errors.New("probe needs --goldset PATH (a .yaml/.jsonl gold set or a BEIR folder)"))
	}
	cfg, err := cf.load()
	if err != nil {
		return fail(stderr, err)
	}
	pc, err := resolveProbeFlags(fs, cfg.Probe)
	if err != nil {
		return fail(stderr, err)
	}
	rep, err := gate.Probe(ctx, cfg, gate.ProbeOptions{Goldset: *goldPath, Regions: regions, Config: pc, Timeout: cf.timeout})
	if err != nil {
		return fail(stderr, err)
	}
	code := ExitEqual
	if !rep.Pass {
		code = ExitDiffer
	}
	if cf.json {
		if err := printJSON(stdout, rep); err != nil {
			return fail(stderr, err)
		}
		return code
	}
	probe.WriteText(stdout, rep)
	return code
}
