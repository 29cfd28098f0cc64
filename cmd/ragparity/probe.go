package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/embed"
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
	cached, err := embed.Cached(inner, filepath.Join(cfg.CacheRoot(), "embeddings"))
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
	printProbe(rep, stdout)
	return code
}

func lambdaList(runs []probe.SeedRun) string {
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = string(r.Lambda)
	}
	return strings.Join(parts, "/")
}

// deltaSList prints a region's ΔS for a question, per seed when the seeds
// differ (they ask different variants).
func deltaSList(runs []probe.SeedRun) string {
	s := fmt.Sprintf("%.4f", runs[0].DeltaS)
	for _, r := range runs[1:] {
		if r.DeltaS != runs[0].DeltaS {
			parts := make([]string, len(runs))
			for i, r := range runs {
				parts[i] = fmt.Sprintf("%.4f", r.DeltaS)
			}
			return strings.Join(parts, "/")
		}
	}
	return s
}

// evidence prints at most 20 question ids.
func evidence(ids []string) string {
	if len(ids) <= 20 {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:20], ", ") + fmt.Sprintf(" and %d more", len(ids)-20)
}

func printProbe(rep *probe.Report, w io.Writer) {
	c := rep.Config
	seeds := make([]string, len(rep.Seeds))
	for i, s := range rep.Seeds {
		seeds[i] = fmt.Sprint(s)
	}
	fmt.Fprintf(w, "probe: %d regions (%s) x %d questions x %d seeds (%s), k=%d, model %s\n",
		len(rep.Regions), strings.Join(rep.Regions, ", "), rep.Gold.Questions, len(rep.Seeds), strings.Join(seeds, ", "), c.K, rep.ModelTag)
	fmt.Fprintf(w, "gold set: %s (%s, %d questions, sha256 %s)\n", rep.Gold.Source, rep.Gold.Format, rep.Gold.Questions, rep.Gold.Digest[:16])
	fmt.Fprintf(w, "thresholds: drift_max=%g min_questions=%d delta_s_max=%g coverage_min=%g convergent_share_min=%g lambda_agreement_min=%g jaccard_warn=%g kendall_warn=%g search=%s ef_search=%d probes=%d ann_recall_min=%g chaotic_runs_max=%d new_chaotic_max=%d\n",
		c.DriftMax, c.MinQuestions, c.DeltaSMax, c.CoverageMin, c.ConvergentShareMin, c.LambdaAgreementMin, c.JaccardWarn, c.KendallWarn, c.Search, c.EfSearch, c.Probes, c.ANNRecallMin, c.ChaoticRunsMax, c.NewChaoticMax)
	fmt.Fprintf(w, "rules: zones stable < %g <= transitional < %g <= risk < %g <= danger; λ chaotic step > %g, convergent net <= -%g with E_res rises <= %g, recursive |net| < %g and E_res range < %g (window %d)\n",
		probe.ZoneTransitional, probe.ZoneRisk, probe.ZoneDanger, c.LambdaChaosStep, c.LambdaNetMove, c.LambdaEresRise, c.LambdaNetMove, c.LambdaEresFlat, c.LambdaWindow)

	for ri, name := range rep.Regions {
		fmt.Fprintf(w, "\nregion %s (ΔS, recall@%d, nDCG@10 and MRR of seed %d; λ per seed)\n", name, c.K, rep.Seeds[0])
		fmt.Fprintf(w, "  %-12s %-15s %-13s %-9s %-7s %-6s %-23s %s\n", "question", "ΔS", "zone", "recall", "nDCG", "MRR", "λ", "top-k ids")
		for _, q := range rep.Questions {
			runs := q.Regions[ri].Runs
			r := runs[0]
			fmt.Fprintf(w, "  %-12s %-15s %-13s %-9.3f %-7.3f %-6.3f %-23s %s\n", q.ID, deltaSList(runs), r.Zone, r.Recall, r.NDCG10, r.MRR, lambdaList(runs), strings.Join(r.TopK, " "))
		}
		rs := rep.Summary[ri]
		for _, ss := range rs.Seeds {
			fmt.Fprintf(w, "  seed %d: mean ΔS %.4f (max %.4f), coverage %.3f, recall@%d %.3f, nDCG@10 %.3f, MRR %.3f; zones %d/%d/%d/%d (stable/transitional/risk/danger); λ %d/%d/%d/%d (convergent/recursive/divergent/chaotic), convergent share %.3f\n",
				ss.Seed, ss.MeanDeltaS, ss.MaxDeltaS, ss.Coverage, c.K, ss.Recall, ss.NDCG10, ss.MRR,
				ss.Zones["stable"], ss.Zones["transitional"], ss.Zones["risk"], ss.Zones["danger"],
				ss.Lambda[probe.Convergent], ss.Lambda[probe.Recursive], ss.Lambda[probe.Divergent], ss.Lambda[probe.Chaotic], ss.ConvergentShare)
		}
	}

	fmt.Fprintf(w, "\nacross regions, worst drift first (ΔS per region: %s)\n", strings.Join(rep.Regions, " / "))
	fmt.Fprintf(w, "  %-12s %-8s %-7s %-8s %-8s %s\n", "question", "drift", "seed", "jaccard", "kendall", "ΔS")
	order := make([]int, len(rep.Questions))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rep.Questions[order[a]].Drift > rep.Questions[order[b]].Drift })
	for _, i := range order {
		q := rep.Questions[i]
		si := 0
		for j, s := range rep.Seeds {
			if s == q.DriftSeed {
				si = j
			}
		}
		ds := make([]string, len(q.Regions))
		for ri, rr := range q.Regions {
			ds[ri] = fmt.Sprintf("%.4f", rr.Runs[si].DeltaS)
		}
		fmt.Fprintf(w, "  %-12s %-8.4f %-7d %-8.3f %-8.3f %s\n", q.ID, q.Drift, q.DriftSeed, q.Jaccard, q.Kendall, strings.Join(ds, " / "))
	}
	d := rep.Drift
	fmt.Fprintf(w, "drift: max %.4f (question %s), median %.4f, p90 %.4f over %d questions", d.Max, d.Worst, d.Median, d.P90, d.Questions)
	if d.CI != nil {
		fmt.Fprintf(w, "; %.0f%% bootstrap CI of the max [%.4f, %.4f] (%d resamples, seed %d; fewer than 30 questions)", d.CI.Level*100, d.CI.Low, d.CI.High, d.CI.Resamples, d.CI.Seed)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "\nchecks\n")
	for _, ch := range rep.Checks {
		fmt.Fprintf(w, "  %-4s %-18s %.4f %s %g  %s\n", strings.ToUpper(string(ch.Status)), ch.Name, ch.Figure, ch.Op, ch.Threshold, ch.Detail)
		if len(ch.Evidence) > 0 && ch.Status != probe.Pass {
			fmt.Fprintf(w, "       questions: %s\n", evidence(ch.Evidence))
		}
	}
	printPerRegion(rep, w)
	e := rep.Embedding
	fmt.Fprintf(w, "\nembedding: %d question texts (naive %d = regions x questions x seeds), %d retrieved texts (naive %d), %d anchors, %d calls; search %dms, total %dms\n",
		e.QuestionTexts, e.QuestionNaive, e.ChunkTexts, e.ChunkNaive, e.AnchorTexts, e.Calls, rep.SearchMS, rep.ElapsedMS)
	if rep.Pass {
		fmt.Fprintln(w, "PASS: every probe check passed")
		return
	}
	var parts []string
	for _, ch := range rep.Failed() {
		parts = append(parts, fmt.Sprintf("%s (questions: %s)", ch.Name, evidence(ch.Evidence)))
	}
	for _, rr := range rep.PerRegion {
		if rr.Status != probe.Pass {
			parts = append(parts, fmt.Sprintf("region %s %s", rr.Region, rr.Status))
		}
	}
	fmt.Fprintf(w, "FAIL: %s\n", strings.Join(parts, "; "))
}

// printPerRegion prints each region's own result against the reference.
func printPerRegion(rep *probe.Report, w io.Writer) {
	fmt.Fprintf(w, "\nper region (parity searches %s; ANN health: serving search at ef_search=%d probes=%d against exact, floor %g)\n",
		rep.Config.Search, rep.Config.EfSearch, rep.Config.Probes, rep.Config.ANNRecallMin)
	for _, rr := range rep.PerRegion {
		fmt.Fprintf(w, "  %-4s %s", strings.ToUpper(string(rr.Status)), rr.Region)
		if rr.Error != "" {
			fmt.Fprintf(w, ": %s\n", rr.Error)
			continue
		}
		missed := probe.MissedFloors(rr.Floors)
		names := make([]string, len(missed))
		for i, f := range missed {
			names[i] = fmt.Sprintf("%s %.3g", f.Name, f.Figure)
		}
		fmt.Fprintf(w, ": against %s, %d questions: drift max %.4f (%s seed %d); λ agreement %.3f, %d new chaotic; ANN recall@10 mean %.3f min %.2f; release floors missed (reported only): %s\n",
			rr.Reference, rr.Compared, rr.Drift.Max, rr.Drift.Worst, rr.Drift.WorstSeed, rr.Lambda.Agreement, rr.Lambda.NewChaotic, rr.ANN.Mean, rr.ANN.Min, orNone(names))
		for _, r := range rr.Reasons {
			fmt.Fprintf(w, "       %s\n", r)
		}
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
