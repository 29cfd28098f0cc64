package gate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/embed"
	"github.com/ragparity/ragparity/goldset"
	"github.com/ragparity/ragparity/parity"
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

// ProbeRegion runs the gold set against one region alone (baseline
// create records it).
func ProbeRegion(ctx context.Context, cfg *config.Config, r *config.Region, gold *goldset.Set, emb embed.Embedder, pc probe.Config) (*probe.Report, error) {
	prs, closeAll, err := ProbeRegions(ctx, cfg, []*config.Region{r}, true)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	return probe.RunWith(ctx, prs, gold, emb, pc, probe.Options{})
}

// missedFloors formats the release floors a set of floors misses.
func missedFloors(fs []probe.Floor) []string {
	var out []string
	for _, f := range probe.MissedFloors(fs) {
		out = append(out, fmt.Sprintf("%s %.4g, needs %s %g", f.Name, f.Figure, f.Op, f.Threshold))
	}
	return out
}

// probeRuns is the probe report of every region that could be opened, or
// why there is none.
type probeRuns struct {
	global string
	gold   *goldset.Set
	cfg    probe.Config
	rep    *probe.Report
	errs   map[string]string
	// ref is what each region was compared with, for messages.
	ref     string
	elapsed time.Duration
}

// runProbes probes the regions once the index check has named the
// faithful ones: they are the reference group without a baseline (with a
// baseline, its recorded runs are). Parity searches are exact, so
// identical content gives drift 0; a region that cannot be opened or
// searched is inconclusive alone. gold is the set Run loaded once (nil:
// none given).
func runProbes(ctx context.Context, cfg *config.Config, o Options, gold *goldset.Set, ix *indexResult) *probeRuns {
	pr := &probeRuns{cfg: cfg.GateProbe(), errs: map[string]string{}}
	if gold == nil {
		pr.global = "no gold set (pass --goldset, or gate.skip: [probes])"
		return pr
	}
	if cfg.Embedder == "" {
		pr.global = fmt.Sprintf("%s: probes need an embedder (embedder: glove)", cfg.File)
		return pr
	}
	pr.gold = gold
	var opts probe.Options
	switch b := o.Baseline; {
	case b != nil && b.Probes == nil:
		pr.global = "the baseline records no probes (re-create it with --goldset)"
		return pr
	case b != nil:
		if b.Probes.Gold.Digest != gold.Digest() {
			pr.global = fmt.Sprintf("the baseline's probes were recorded on another gold set (digest %s, this one %s): re-create the baseline with this gold set", parity.ShortHex(b.Probes.Gold.Digest), parity.ShortHex(gold.Digest()))
			return pr
		}
		opts.Baseline = b.Probes
		pr.ref = "baseline"
	default:
		if ix == nil || len(ix.faithful) == 0 {
			pr.global = "no reference: no region's INDEX_HASH equals the reference, so no region's answers can stand for the release (create a baseline with --goldset)"
			return pr
		}
		opts.Reference = ix.faithful
		pr.ref = "regions " + strings.Join(ix.faithful, ", ")
	}
	inner, err := OpenEmbedder(cfg.Embedder)
	if err != nil {
		pr.global = err.Error()
		return pr
	}
	cached, err := EmbeddingCache(cfg, inner)
	if err != nil {
		pr.global = err.Error()
		return pr
	}
	defer cached.Close()
	var prs []probe.Region
	for i := range cfg.Regions {
		r := &cfg.Regions[i]
		one, closeOne, err := ProbeRegions(ctx, cfg, []*config.Region{r}, true)
		if err != nil {
			pr.errs[r.Name] = err.Error()
			continue
		}
		defer closeOne()
		prs = append(prs, one...)
	}
	if len(prs) == 0 {
		return pr
	}
	if opts.Reference != nil {
		var ref []string
		for _, name := range opts.Reference {
			if pr.errs[name] == "" {
				ref = append(ref, name)
			}
		}
		if len(ref) == 0 {
			pr.global = "no reference: every region whose INDEX_HASH equals the reference could not be opened for probes"
			return pr
		}
		opts.Reference = ref
	}
	rep, err := probe.RunWith(ctx, prs, gold, cached, pr.cfg, opts)
	if err != nil {
		pr.global = err.Error()
		return pr
	}
	pr.rep = rep
	return pr
}

// probeCheck decides each region's probes from its own result against the
// reference (probe.RegionResult): drift per question and seed <=
// drift_max, λ state equal to the reference's on >= lambda_agreement_min
// of runs, no new chaotic run beyond new_chaotic_max, and ANN health
// (recall@10 of its serving search against its own exact search >=
// ann_recall_min). The release quality floors are reported, never a
// reason to block a region (metrics.md).
func probeCheck(cfg *config.Config, o Options, pr *probeRuns, det *Detail) Check {
	pc := pr.cfg
	c := Check{Name: CheckProbes, Evidence: []string{}, Threshold: fmt.Sprintf("per region against the reference (%s search): drift <= %g on >= %d questions x %d seeds; λ state equal on >= %g of runs; at most %d new chaotic runs; ANN recall@10 >= %g (ef_search %d)",
		pc.Search, pc.DriftLimit(), pc.MinQuestions, pc.Seeds, pc.LambdaAgreementMin, pc.NewChaoticMax, pc.ANNRecallMin, pc.EfSearch)}
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
	rep := pr.rep
	if rep == nil {
		res.apply(&c)
		return c
	}
	maxDrift, minANN := 0.0, 1.0
	var floors []string
	for _, r := range cfg.Regions {
		rr := rep.Region(r.Name)
		if rr == nil {
			continue
		}
		c.Measures = append(c.Measures, Measure{Name: "drift_max", Region: r.Name, Value: rr.Drift.Max})
		if rr.ANN.Status != "" {
			c.Measures = append(c.Measures, Measure{Name: "ann_recall_at_10", Region: r.Name, Value: rr.ANN.Mean})
			minANN = math.Min(minANN, rr.ANN.Mean)
		}
		maxDrift = math.Max(maxDrift, rr.Drift.Max)
		if m := missedFloors(rr.Floors); len(m) > 0 {
			floors = append(floors, r.Name+": "+strings.Join(m, ", "))
		}
		why := strings.Join(rr.Reasons, "; ")
		switch rr.Status {
		case Pass:
			res.pass(r.Name)
		case Fail:
			res.fail(r.Name, why)
			var items []string
			for _, d := range rr.Drift.Over {
				items = append(items, fmt.Sprintf("question %s seed %d: drift %.4f (ΔS %.4f, reference %.4f)", d.Question, d.Seed, d.Drift, d.DeltaS, d.RefDeltaS))
			}
			for _, l := range rr.Lambda.NewChaoticRuns {
				items = append(items, fmt.Sprintf("question %s seed %d: λ %s, reference %s", l.Question, l.Seed, l.State, l.RefState))
			}
			if rr.ANN.Status == Fail {
				for _, w := range rr.ANN.Worst {
					items = append(items, fmt.Sprintf("question %s seed %d: ANN recall@10 %.2f", w.Question, w.Seed, w.Recall))
				}
			}
			c.Evidence = append(c.Evidence, capEvidence(r.Name, items, o.MaxEvidence, "runs (ragparity probe --json)")...)
		default:
			if rr.Error != "" {
				why = rr.Error
			}
			res.inconclusive(r.Name, why)
		}
	}
	det.setProbes(newProbeDetail(rep, o.Baseline, pc))
	c.Measures = append(c.Measures, probeMeasures(rep, maxDrift)...)
	res.apply(&c)
	c.Figure = fmt.Sprintf("max drift %.4f against %s over %d questions", maxDrift, pr.ref, len(pr.gold.Questions))
	if minANN < 1 {
		c.Figure += fmt.Sprintf("; lowest ANN recall@10 %.3f", minANN)
	}
	if len(floors) > 0 {
		c.Figure += "; below the release quality floors (reported, not gated): " + strings.Join(floors, "; ")
	}
	return c
}

// newProbeDetail is the report's chart detail: per question, each
// region's ΔS (first seed), its λ states, and the largest drift of any
// region against the reference (the baseline's runs, else the median of
// the probed regions).
func newProbeDetail(rep *probe.Report, b *Baseline, pc probe.Config) *ProbeDetail {
	pd := &ProbeDetail{DriftThreshold: pc.DriftLimit(), DeltaSMax: pc.DeltaSMax, Seeds: rep.Seeds}
	refDS := map[string]map[uint64]float64{}
	if b != nil && b.Probes != nil {
		for _, q := range b.Probes.Questions {
			refDS[q.ID] = map[uint64]float64{}
			for _, r := range q.Runs {
				refDS[q.ID][r.Seed] = r.DeltaS
			}
		}
	}
	for _, q := range rep.Questions {
		qd := QuestionDetail{ID: q.ID, DeltaS: map[string]float64{}, Lambda: map[string][]string{}}
		bySeed := map[uint64][]float64{}
		for _, rr := range q.Regions {
			for i, run := range rr.Runs {
				if i == 0 {
					qd.DeltaS[rr.Region] = run.DeltaS
				}
				qd.Lambda[rr.Region] = append(qd.Lambda[rr.Region], string(run.Lambda))
				bySeed[run.Seed] = append(bySeed[run.Seed], run.DeltaS)
			}
		}
		for seed, vals := range bySeed {
			ref, ok := refDS[q.ID][seed]
			if !ok {
				sort.Float64s(vals)
				ref = vals[(len(vals)-1)/2]
			}
			for _, v := range vals {
				qd.Drift = math.Max(qd.Drift, math.Abs(v-ref))
			}
		}
		pd.Questions = append(pd.Questions, qd)
	}
	return pd
}

// probeMeasures are the figures the gate exports as metrics: each
// region's largest ΔS over the gold set and its probe runs per λ state
// (summed over seeds), and the largest drift against the reference.
func probeMeasures(rep *probe.Report, maxDrift float64) []Measure {
	ms := []Measure{{Name: MeasureDeltaSDrift, Value: maxDrift}}
	for _, rs := range rep.Summary {
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
	return ms
}

// ProbeOptions are one `probe` run's choices.
type ProbeOptions struct {
	// Goldset is the gold set's path (goldset.Load).
	Goldset string
	// Regions are the regions to probe (default: every one with vectors;
	// a named region without one is an error).
	Regions []string
	// Config is the probe configuration (the config's probe section with
	// any overrides).
	Config probe.Config
	// Timeout limits the whole run (default gate.timeouts.probes).
	Timeout time.Duration
}

// Probe asks the regions every gold question (probe.Run) with the
// config's embedder behind the embedding cache.
func Probe(ctx context.Context, cfg *config.Config, o ProbeOptions) (*probe.Report, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	gold, err := goldset.Load(o.Goldset)
	if err != nil {
		return nil, err
	}
	if cfg.Embedder == "" {
		return nil, fmt.Errorf("%s: probe needs an embedder (e.g. `embedder: glove`): ΔS re-embeds questions and retrieved texts with the model the indexes declare", cfg.File)
	}
	inner, err := OpenEmbedder(cfg.Embedder)
	if err != nil {
		return nil, err
	}
	sel, err := SelectRegions(cfg, o.Regions)
	if err != nil {
		return nil, err
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = cfg.CheckTimeout("probes")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	prs, closeAll, err := ProbeRegions(ctx, cfg, sel, len(o.Regions) > 0)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	cached, err := EmbeddingCache(cfg, inner)
	if err != nil {
		return nil, err
	}
	defer cached.Close()
	rep, err := probe.Run(ctx, prs, gold, cached, o.Config)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%w (no complete answer within %v; --timeout or gate.timeouts.probes)", err, timeout)
	}
	return rep, err
}
