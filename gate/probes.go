package gate

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/embed"
	"github.com/ragparity/ragparity/goldset"
	"github.com/ragparity/ragparity/probe"
)

// ProbeRegions opens the probe's view of each region: its store as a
// Searcher and the model tag it declares (the same declared settings hash
// and rebuild use). With strict, a region without a vectors URL is an
// error; otherwise it is left out.
func ProbeRegions(ctx context.Context, cfg *config.Config, sel []*config.Region, strict bool) ([]probe.Region, func(), error) {
	var prs []probe.Region
	var stores []adapters.VectorStore
	closeAll := func() {
		for _, s := range stores {
			s.Close()
		}
	}
	for _, r := range sel {
		if r.Vectors == "" {
			if strict {
				closeAll()
				return nil, nil, fmt.Errorf("region %s has no vectors URL in %s", r.Name, cfg.File)
			}
			continue
		}
		declared, err := DeclaredSettings(cfg, r)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		store, err := adapters.OpenVector(ctx, r.Vectors)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("region %s: %w", r.Name, err)
		}
		stores = append(stores, store)
		pr, err := probe.RegionFromStore(r.Name, store, declared)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		prs = append(prs, pr)
	}
	if len(prs) == 0 {
		closeAll()
		return nil, nil, fmt.Errorf("%s: no region has a vectors URL", cfg.File)
	}
	return prs, closeAll, nil
}

// ProbeBaseline is the probe baseline of a release: per question and
// seed, the question variant, the top-k ids, ΔS and λ state of a faithful
// region, on one gold set (GoldDigest).
type ProbeBaseline struct {
	GoldDigest string     `json:"goldset_digest"`
	K          int        `json:"k"`
	Seeds      []uint64   `json:"seeds"`
	ModelTag   string     `json:"model_tag"`
	Runs       []ProbeRun `json:"runs"`
}

// ProbeRun is one recorded probe run.
type ProbeRun struct {
	Question string   `json:"question"`
	Seed     uint64   `json:"seed"`
	Variant  int      `json:"variant"`
	TopK     []string `json:"top_k"`
	DeltaS   float64  `json:"delta_s"`
	Lambda   string   `json:"lambda"`
}

// NewProbeBaseline records a region's runs from a probe report.
func NewProbeBaseline(rep *probe.Report, region string) *ProbeBaseline {
	pb := &ProbeBaseline{GoldDigest: rep.Gold.Digest, K: rep.Config.K, Seeds: rep.Seeds, ModelTag: rep.ModelTag, Runs: []ProbeRun{}}
	for q, rr := range regionRuns(rep, region) {
		for _, run := range rr {
			pb.Runs = append(pb.Runs, ProbeRun{Question: q, Seed: run.Seed, Variant: run.Variant, TopK: run.TopK, DeltaS: run.DeltaS, Lambda: string(run.Lambda)})
		}
	}
	sort.Slice(pb.Runs, func(i, j int) bool {
		if pb.Runs[i].Question != pb.Runs[j].Question {
			return pb.Runs[i].Question < pb.Runs[j].Question
		}
		return pb.Runs[i].Seed < pb.Runs[j].Seed
	})
	return pb
}

// regionRuns returns a region's runs per question.
func regionRuns(rep *probe.Report, region string) map[string][]probe.SeedRun {
	out := map[string][]probe.SeedRun{}
	for _, q := range rep.Questions {
		for _, rr := range q.Regions {
			if rr.Region == region {
				out[q.ID] = rr.Runs
			}
		}
	}
	return out
}

// ReleaseFloors returns the release quality floors a region's probe report
// misses (metrics.md "Release quality floors"): checked when a baseline
// is made, reported (never a reason to block) in verification.
func ReleaseFloors(rep *probe.Report) []string {
	var missed []string
	for _, c := range rep.Checks {
		switch c.Name {
		case probe.CheckDeltaSFloor, probe.CheckCoverageFloor, probe.CheckLambdaConvergent, probe.CheckLambdaChaotic:
			if c.Status == probe.Fail {
				missed = append(missed, fmt.Sprintf("%s %.4g %s %g", c.Name, c.Figure, opNot(c.Op), c.Threshold))
			}
		}
	}
	return missed
}

// probeRuns is every region's probe report, or why it has none.
type probeRuns struct {
	global  string
	gold    *goldset.Set
	cfg     probe.Config
	reports map[string]*probe.Report
	errs    map[string]string
	elapsed time.Duration
}

// ProbeRegion runs the gold set against one region alone; the gate and
// baseline create call it per region so that one unreachable region never
// stops the others' probes.
func ProbeRegion(ctx context.Context, cfg *config.Config, r *config.Region, gold *goldset.Set, emb embed.Embedder, pc probe.Config) (*probe.Report, error) {
	prs, closeAll, err := ProbeRegions(ctx, cfg, []*config.Region{r}, true)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	return probe.Run(ctx, prs, gold, emb, pc)
}

// runProbes probes every region on its own.
func runProbes(ctx context.Context, cfg *config.Config, o Options) *probeRuns {
	pr := &probeRuns{cfg: cfg.GateProbe(), reports: map[string]*probe.Report{}, errs: map[string]string{}}
	if o.Goldset == "" {
		pr.global = "no gold set (pass --goldset, or gate.skip: [probes])"
		return pr
	}
	if cfg.Embedder == "" {
		pr.global = fmt.Sprintf("%s: probes need an embedder (embedder: glove)", cfg.File)
		return pr
	}
	gold, err := goldset.Load(o.Goldset)
	if err != nil {
		pr.global = err.Error()
		return pr
	}
	pr.gold = gold
	if n := len(gold.Questions); n < pr.cfg.MinQuestions {
		pr.global = fmt.Sprintf("the gold set %s has %d questions, fewer than the %d the drift gate needs (min_questions)", gold.Source, n, pr.cfg.MinQuestions)
		return pr
	}
	inner, err := OpenEmbedder(cfg.Embedder)
	if err != nil {
		pr.global = err.Error()
		return pr
	}
	cached, err := embed.Cached(inner, filepath.Join(cfg.CacheRoot(), "embeddings"))
	if err != nil {
		pr.global = err.Error()
		return pr
	}
	defer cached.Close()
	for i := range cfg.Regions {
		r := &cfg.Regions[i]
		rep, err := ProbeRegion(ctx, cfg, r, gold, cached, pr.cfg)
		if err != nil {
			pr.errs[r.Name] = err.Error()
			continue
		}
		pr.reports[r.Name] = rep
	}
	return pr
}

// probeCheck decides each region's probes against the reference runs (the
// baseline's, else those of the first region whose INDEX_HASH equals the
// reference): per question and seed, drift = |ΔS − ΔS_ref| <= drift_max;
// λ state equal to the reference's on >= lambda_agreement_min of the runs;
// no chaotic run where the reference had none. The quality floors are
// reported, never a reason to block a region (metrics.md).
func probeCheck(cfg *config.Config, o Options, pr *probeRuns, ix *indexResult, det *Detail) Check {
	pc := pr.cfg
	c := Check{Name: CheckProbes, Evidence: []string{}, Threshold: fmt.Sprintf("per region against the reference: drift <= %g on >= %d questions x %d seeds; λ state equal on >= %g of runs; no chaotic run the reference does not have",
		pc.DriftMax, pc.MinQuestions, pc.Seeds, pc.LambdaAgreementMin)}
	res := newResults(cfg)
	if pr.elapsed > 0 {
		c.ElapsedMS = pr.elapsed.Milliseconds()
	}
	if pr.global != "" {
		res.all(Inconclusive, pr.global)
		res.apply(&c)
		return c
	}
	for name, e := range pr.errs {
		res.inconclusive(name, e)
	}
	type key struct {
		q string
		s uint64
	}
	ref := map[key]ProbeRun{}
	refName := ""
	if b := o.Baseline; b != nil && b.Probes != nil {
		if b.Probes.GoldDigest != pr.gold.Digest() {
			res.all(Inconclusive, fmt.Sprintf("the baseline's probes were recorded on another gold set (digest %s, this one %s): re-create the baseline with this gold set", short(b.Probes.GoldDigest), short(pr.gold.Digest())))
			res.apply(&c)
			return c
		}
		for _, r := range b.Probes.Runs {
			ref[key{r.Question, r.Seed}] = r
		}
		refName = "baseline"
	} else {
		if ix != nil {
			for _, name := range ix.faithful {
				if rep := pr.reports[name]; rep != nil {
					refName = name
					for q, runs := range regionRuns(rep, name) {
						for _, run := range runs {
							ref[key{q, run.Seed}] = ProbeRun{Question: q, Seed: run.Seed, Variant: run.Variant, TopK: run.TopK, DeltaS: run.DeltaS, Lambda: string(run.Lambda)}
						}
					}
					break
				}
			}
		}
		if refName == "" {
			why := "no reference region: no region whose INDEX_HASH equals the reference answered the probes"
			if o.Baseline != nil {
				why = "the baseline records no probes (re-create it with --goldset)"
			}
			res.all(Inconclusive, why)
			res.apply(&c)
			return c
		}
	}
	pd := &ProbeDetail{DriftThreshold: pc.DriftMax, DeltaSMax: pc.DeltaSMax, Seeds: pr.reports[firstReport(cfg, pr)].Seeds}
	qdetail := map[string]*QuestionDetail{}
	maxDrift := 0.0
	var floors []string
	for _, r := range cfg.Regions {
		rep := pr.reports[r.Name]
		if rep == nil {
			continue
		}
		if m := ReleaseFloors(rep); len(m) > 0 {
			floors = append(floors, fmt.Sprintf("%s: %s", r.Name, strings.Join(m, ", ")))
		}
		var drifted []string
		worst, agree, total, chaotic, missing := 0.0, 0, 0, 0, 0
		for q, runs := range regionRuns(rep, r.Name) {
			qd := qdetail[q]
			if qd == nil {
				qd = &QuestionDetail{ID: q, DeltaS: map[string]float64{}, Lambda: map[string][]string{}}
				qdetail[q] = qd
			}
			qWorst := 0.0
			for _, run := range runs {
				qd.Lambda[r.Name] = append(qd.Lambda[r.Name], string(run.Lambda))
				if run.Seed == runs[0].Seed {
					qd.DeltaS[r.Name] = run.DeltaS
				}
				rr, ok := ref[key{q, run.Seed}]
				if !ok {
					missing++
					continue
				}
				total++
				d := math.Abs(run.DeltaS - rr.DeltaS)
				qWorst = math.Max(qWorst, d)
				if string(run.Lambda) == rr.Lambda {
					agree++
				}
				if run.Lambda == probe.Chaotic && rr.Lambda != string(probe.Chaotic) {
					chaotic++
				}
			}
			qd.Drift = math.Max(qd.Drift, qWorst)
			if qWorst > pc.DriftMax {
				drifted = append(drifted, fmt.Sprintf("%s (%.4f)", q, qWorst))
			}
			worst = math.Max(worst, qWorst)
		}
		maxDrift = math.Max(maxDrift, worst)
		c.Measures = append(c.Measures, Measure{Name: "drift_max", Region: r.Name, Value: worst})
		switch {
		case total == 0 || missing > 0:
			res.inconclusive(r.Name, fmt.Sprintf("%d of its runs have no reference run in %s", missing, refName))
			continue
		}
		share := float64(agree) / float64(total)
		var fails []string
		if len(drifted) > 0 {
			sort.Strings(drifted)
			fails = append(fails, fmt.Sprintf("drift %.4f > %g against %s", worst, pc.DriftMax, refName))
			c.Evidence = append(c.Evidence, capEvidence(r.Name, prefixAll("question ", drifted), o.MaxEvidence, "questions")...)
		}
		if share < pc.LambdaAgreementMin {
			fails = append(fails, fmt.Sprintf("λ state equal to %s's on %.2f of runs < %g", refName, share, pc.LambdaAgreementMin))
		}
		if chaotic > 0 {
			fails = append(fails, fmt.Sprintf("%d chaotic λ runs where %s had none", chaotic, refName))
		}
		if len(fails) > 0 {
			res.fail(r.Name, strings.Join(fails, "; "))
			continue
		}
		res.pass(r.Name)
	}
	for _, q := range sortedQuestions(qdetail) {
		pd.Questions = append(pd.Questions, *qdetail[q])
	}
	det.setProbes(pd)
	c.Measures = append(c.Measures, probeMeasures(pr.reports, maxDrift)...)
	res.apply(&c)
	c.Figure = fmt.Sprintf("max drift %.4f against %s over %d questions", maxDrift, refName, len(pr.gold.Questions))
	if len(floors) > 0 {
		c.Figure += "; below the release quality floors (reported, not gated): " + strings.Join(floors, "; ")
	}
	return c
}

func firstReport(cfg *config.Config, pr *probeRuns) string {
	for _, r := range cfg.Regions {
		if pr.reports[r.Name] != nil {
			return r.Name
		}
	}
	return ""
}

func sortedQuestions(m map[string]*QuestionDetail) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func prefixAll(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// probeMeasures are the figures the gate exports as metrics: each
// region's largest ΔS over the gold set and its probe runs per λ state
// (summed over seeds), and the largest drift against the reference.
func probeMeasures(reports map[string]*probe.Report, maxDrift float64) []Measure {
	ms := []Measure{{Name: MeasureDeltaSDrift, Value: maxDrift}}
	var names []string
	for n := range reports {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, rs := range reports[n].Summary {
			maxDS := 0.0
			for _, ss := range rs.Seeds {
				maxDS = math.Max(maxDS, ss.MaxDeltaS)
			}
			ms = append(ms, Measure{Name: MeasureDeltaS, Region: rs.Region, Value: maxDS})
			for _, l := range []probe.Lambda{probe.Convergent, probe.Recursive, probe.Divergent, probe.Chaotic} {
				runs := 0
				for _, ss := range rs.Seeds {
					runs += ss.Lambda[l]
				}
				ms = append(ms, Measure{Name: MeasureLambdaPrefix + string(l), Region: rs.Region, Value: float64(runs)})
			}
		}
	}
	return ms
}

func opNot(op string) string {
	switch op {
	case "<=":
		return ">"
	case ">=":
		return "<"
	}
	return "vs"
}
