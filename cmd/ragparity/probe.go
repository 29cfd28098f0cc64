package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/goldset"
	"github.com/ragparity/ragparity/probe"
)

func init() {
	register("probe", "ask every region the gold questions: ΔS drift, retrieval quality, λ on two seeds", runProbe)
}

// probeFlags are the probe settings a flag can override.
type probeFlags struct {
	fs *flag.FlagSet
	c  probe.Config
}

func addProbeFlags(fs *flag.FlagSet) *probeFlags {
	p := &probeFlags{fs: fs}
	d := probe.Defaults()
	fs.IntVar(&p.c.K, "k", d.K, "hits retrieved per probe (probe.k)")
	fs.IntVar(&p.c.Seeds, "seeds", d.Seeds, "probe seeds; each re-runs every search (probe.seeds)")
	fs.IntVar(&p.c.MinQuestions, "min-questions", d.MinQuestions, "smallest gold set the drift gate accepts (probe.min_questions)")
	fs.Float64Var(&p.c.DriftMax, "drift-max", d.DriftMax, "largest ΔS drift allowed on any question (probe.drift_max)")
	fs.Float64Var(&p.c.DeltaSMax, "delta-s-max", d.DeltaSMax, "quality floor: largest ΔS per question and region (probe.delta_s_max)")
	fs.Float64Var(&p.c.CoverageMin, "coverage-min", d.CoverageMin, "quality floor: share of questions with a gold id in the top k (probe.coverage_min)")
	fs.Float64Var(&p.c.ConvergentShareMin, "convergent-share-min", d.ConvergentShareMin, "share of questions whose λ must be convergent, per region and seed (probe.convergent_share_min)")
	fs.Float64Var(&p.c.LambdaAgreementMin, "lambda-agreement-min", d.LambdaAgreementMin, "share of questions whose λ state must agree across seeds and regions (probe.lambda_agreement_min)")
	fs.Float64Var(&p.c.JaccardWarn, "jaccard-warn", d.JaccardWarn, "warn when the top-k ids' Jaccard between two regions is below (probe.jaccard_warn)")
	fs.Float64Var(&p.c.KendallWarn, "kendall-warn", d.KendallWarn, "warn when the top-10 order's Kendall tau between two regions is below (probe.kendall_warn)")
	fs.IntVar(&p.c.EfSearch, "ef-search", d.EfSearch, "pin HNSW ef_search / Qdrant hnsw_ef for every serving search, 0 = store default (probe.ef_search)")
	fs.IntVar(&p.c.Probes, "probes", d.Probes, "pin pgvector ivfflat.probes for every serving search, 0 = store default (probe.probes)")
	fs.StringVar(&p.c.Search, "search", d.Search, "parity searches: exact (brute force, no index) or ann (the serving index) (probe.search)")
	fs.Float64Var(&p.c.ANNRecallMin, "ann-recall-min", d.ANNRecallMin, "ANN health floor: mean recall@10 of each region's serving search against its exact search (probe.ann_recall_min)")
	return p
}

// resolve returns base with the flags given on the command line applied.
func (p *probeFlags) resolve(base probe.Config) probe.Config {
	c := base
	p.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "k":
			c.K = p.c.K
		case "seeds":
			c.Seeds = p.c.Seeds
		case "min-questions":
			c.MinQuestions = p.c.MinQuestions
		case "drift-max":
			c.DriftMax = p.c.DriftMax
		case "delta-s-max":
			c.DeltaSMax = p.c.DeltaSMax
		case "coverage-min":
			c.CoverageMin = p.c.CoverageMin
		case "convergent-share-min":
			c.ConvergentShareMin = p.c.ConvergentShareMin
		case "lambda-agreement-min":
			c.LambdaAgreementMin = p.c.LambdaAgreementMin
		case "jaccard-warn":
			c.JaccardWarn = p.c.JaccardWarn
		case "kendall-warn":
			c.KendallWarn = p.c.KendallWarn
		case "ef-search":
			c.EfSearch = p.c.EfSearch
		case "probes":
			c.Probes = p.c.Probes
		case "search":
			c.Search = p.c.Search
		case "ann-recall-min":
			c.ANNRecallMin = p.c.ANNRecallMin
		}
	})
	return c
}

// probeBase is the config's probe section. Until config.Config has a
// `probe:` key, the defaults (metrics.md).
func probeBase(cfg *config.Config) probe.Config { return cfg.Probe }

func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	var cf commonFlags
	cf.add(fs)
	goldPath := fs.String("goldset", "", "gold set: a .yaml/.jsonl file or a BEIR folder (required)")
	var regions listFlag
	fs.Var(&regions, "regions", "only these regions (comma-separated; default: every region with a vectors URL)")
	pf := addProbeFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ragparity probe --config FILE --goldset PATH [--seeds 2] [--k 10] [--json]

Asks every region each gold question (once per seed; each seed picks the
question or one of its paraphrases and an order, and re-runs every search),
re-embeds the retrieved texts with the config's embedder and prints, per
region and question, ΔS, its zone, the top-k ids, recall@k / nDCG@10 / MRR
against the gold ids and λ per seed; across regions, drift per question
(worst first), Jaccard of the top-k ids and Kendall tau of the top-10 order;
then every check with its figure and threshold, and each region decided on
its own against the reference group (every region): ΔS drift, λ against
the reference, ANN health (recall@10 of its serving search, ef_search
pinned, against its own exact search) and the release floors, reported
only (metrics.md). Parity searches are exact (--search exact): identical
content gives drift 0 exactly.
Regions whose declared embedding model tags differ are refused before any
probe runs. Exit 0 when every check and region passes (warnings do not
fail), 1 when one fails (naming the checks, questions and regions), 2 when
it could not run.

`)
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
	pc := pf.resolve(probeBase(cfg))
	if err := pc.Validate(); err != nil {
		return fail(stderr, err)
	}
	gold, err := goldset.Load(*goldPath)
	if err != nil {
		return fail(stderr, err)
	}
	if cfg.Embedder == "" {
		return fail(stderr, fmt.Errorf("%s: probe needs an embedder (e.g. `embedder: glove`): ΔS re-embeds questions and retrieved texts with the model the indexes declare", cfg.File))
	}
	inner, err := gate.OpenEmbedder(cfg.Embedder)
	if err != nil {
		return fail(stderr, err)
	}
	sel, err := gate.SelectRegions(cfg, regions)
	if err != nil {
		return fail(stderr, err)
	}
	timeout := cfg.CheckTimeout("probes")
	if cf.timeout > 0 {
		timeout = cf.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	prs, closeAll, err := gate.ProbeRegions(ctx, cfg, sel, len(regions) > 0)
	if err != nil {
		return fail(stderr, err)
	}
	defer closeAll()
	cached, err := gate.EmbeddingCache(cfg, inner)
	if err != nil {
		return fail(stderr, err)
	}
	defer cached.Close()
	rep, err := probe.Run(ctx, prs, gold, cached, pc)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (no complete answer within %v; --timeout or gate.timeouts.probes)", err, timeout)
		}
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
