package gate

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"

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

// probeCheck is the gate's gold-set probe check: ΔS drift, λ on two seeds
// and the quality floor, with the thresholds of the config's probe: block
// (gate.thresholds overriding). A region is blamed for a failing question
// when its ΔS is the furthest from the other regions' median.
func probeCheck(ctx context.Context, cfg *config.Config, goldPath string, det *Detail) Check {
	pc := cfg.GateProbe()
	c := Check{Threshold: fmt.Sprintf("drift <= %g on >= %d questions; λ convergent share >= %g on %d seeds, no chaotic run, agreement >= %g; ΔS <= %g, coverage >= %g",
		pc.DriftMax, pc.MinQuestions, pc.ConvergentShareMin, pc.Seeds, pc.LambdaAgreementMin, pc.DeltaSMax, pc.CoverageMin)}
	fail := func(err error) Check { c.Status, c.Error = Inconclusive, err.Error(); return c }
	if cfg.Embedder == "" {
		return fail(fmt.Errorf("%s: probes need an embedder (embedder: glove)", cfg.File))
	}
	gold, err := goldset.Load(goldPath)
	if err != nil {
		return fail(err)
	}
	inner, err := OpenEmbedder(cfg.Embedder)
	if err != nil {
		return fail(err)
	}
	sel, _ := SelectRegions(cfg, nil)
	prs, closeAll, err := ProbeRegions(ctx, cfg, sel, true)
	if err != nil {
		return fail(err)
	}
	defer closeAll()
	cached, err := embed.Cached(inner, filepath.Join(cfg.CacheRoot(), "embeddings"))
	if err != nil {
		return fail(err)
	}
	defer cached.Close()
	rep, err := probe.Run(ctx, prs, gold, cached, pc)
	if err != nil {
		return fail(err)
	}
	det.setProbes(NewProbeDetail(rep))
	c.Figure = fmt.Sprintf("max drift %.4f over %d questions (worst %s)", rep.Drift.Max, rep.Drift.Questions, rep.Drift.Worst)
	c.Measures = probeMeasures(rep)
	blame := map[string]bool{}
	c.Status = Pass
	for _, pc := range rep.Checks {
		c.Measures = append(c.Measures, Measure{Name: "probe_" + pc.Name, Value: pc.Figure})
		if pc.Status != probe.Fail {
			continue
		}
		c.Status = Fail
		ev := pc.Evidence
		if len(ev) > 10 {
			ev = append(ev[:10:10], fmt.Sprintf("... %d more", len(pc.Evidence)-10))
		}
		c.Evidence = append(c.Evidence, fmt.Sprintf("%s: %.4g %s %g failed; questions %s", pc.Name, pc.Figure, opNot(pc.Op), pc.Threshold, strings.Join(ev, ", ")))
		for _, q := range pc.Evidence {
			for _, r := range outliers(rep, q) {
				blame[r] = true
			}
		}
	}
	for _, r := range rep.Regions {
		if blame[r] {
			c.FailedRegions = append(c.FailedRegions, r)
		}
	}
	return c
}

// probeMeasures are the figures the gate exports as metrics: each
// region's largest ΔS over the gold set and its probe runs per λ state
// (summed over seeds), and the largest cross-region drift.
func probeMeasures(rep *probe.Report) []Measure {
	ms := []Measure{{Name: MeasureDeltaSDrift, Value: rep.Drift.Max}}
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

func opNot(op string) string {
	switch op {
	case "<=":
		return ">"
	case ">=":
		return "<"
	}
	return "vs"
}

// outliers returns the region(s) whose ΔS for question id is furthest from
// the median of the regions (only when it is a real outlier: drift).
func outliers(rep *probe.Report, id string) []string {
	for _, q := range rep.Questions {
		if q.ID != id || len(q.Regions) < 3 {
			continue
		}
		ds := map[string]float64{}
		var vals []float64
		for _, rr := range q.Regions {
			for _, run := range rr.Runs {
				if run.Seed == q.DriftSeed {
					ds[rr.Region] = run.DeltaS
					vals = append(vals, run.DeltaS)
				}
			}
		}
		sort.Float64s(vals)
		med := vals[len(vals)/2]
		best, bestD := "", 0.0
		for r, v := range ds {
			if d := math.Abs(v - med); d > bestD {
				best, bestD = r, d
			}
		}
		if best != "" && bestD > 0 {
			return []string{best}
		}
	}
	return nil
}

// NewProbeDetail turns a probe report into the report's chart detail.
func NewProbeDetail(rep *probe.Report) *ProbeDetail {
	pd := &ProbeDetail{DriftThreshold: rep.Config.DriftMax, DeltaSMax: rep.Config.DeltaSMax, Seeds: rep.Seeds}
	for _, q := range rep.Questions {
		qd := QuestionDetail{ID: q.ID, Drift: q.Drift, DeltaS: map[string]float64{}, Lambda: map[string][]string{}}
		for _, rr := range q.Regions {
			for _, run := range rr.Runs {
				if run.Seed == q.DriftSeed {
					qd.DeltaS[rr.Region] = run.DeltaS
				}
				qd.Lambda[rr.Region] = append(qd.Lambda[rr.Region], string(run.Lambda))
			}
		}
		pd.Questions = append(pd.Questions, qd)
	}
	return pd
}
