package probe

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Inconclusive is a region's status when it could not be decided: its
// searches failed, no reference run was available, or too few questions
// could be compared.
const Inconclusive Status = "inconclusive"

// CheckRegions is the check that fails when no region could be probed.
const CheckRegions = "regions"

// RegionResult decides one region on its own against the reference
// (metrics.md "Failover gate" item 4, "ANN health"): nothing in it depends
// on another region's result except the reference runs it is compared
// with. Status is pass (every figure within its threshold), fail (Reasons
// say which) or inconclusive (Error, or Reasons).
type RegionResult struct {
	Region  string   `json:"region"`
	Status  Status   `json:"status"`
	Reasons []string `json:"reasons"`
	// Error is why the region could not be probed (unreachable, a search
	// failure); the region is inconclusive.
	Error string `json:"error,omitempty"`
	// Reference says what the region was compared with: "baseline (region
	// R)" or "group A, B".
	Reference string `json:"reference"`
	// Compared counts the questions with at least one run compared with a
	// reference run of the same question variant.
	Compared int          `json:"compared_questions"`
	Drift    RegionDrift  `json:"drift"`
	Lambda   RegionLambda `json:"lambda"`
	ANN      ANNHealth    `json:"ann_health"`
	// Floors are the release quality floors on this region's own runs:
	// reported, never a reason for Status to be fail.
	Floors []Floor `json:"release_floors"`

	err error
}

// RegionDrift is drift(q, s) = |ΔS(q, s, region) − ΔS_ref(q, s)| over the
// compared runs.
type RegionDrift struct {
	Max       float64 `json:"max"`
	Worst     string  `json:"worst"`
	WorstSeed uint64  `json:"worst_seed"`
	Threshold float64 `json:"threshold"`
	// Over lists the runs above the threshold, worst first.
	Over []RunDrift `json:"over"`
}

// RunDrift is one run's drift.
type RunDrift struct {
	Question  string  `json:"question"`
	Seed      uint64  `json:"seed"`
	Drift     float64 `json:"drift"`
	DeltaS    float64 `json:"delta_s"`
	RefDeltaS float64 `json:"ref_delta_s"`
}

// RegionLambda compares λ states with the reference's, run by run.
type RegionLambda struct {
	// Agreement is the share of compared runs whose λ state equals the
	// reference's (threshold lambda_agreement_min).
	Agreement float64     `json:"agreement"`
	Runs      int         `json:"runs"`
	Disagree  []RunLambda `json:"disagree"`
	// NewChaotic counts chaotic runs where the reference's run was not
	// chaotic (threshold new_chaotic_max).
	NewChaotic     int         `json:"new_chaotic"`
	NewChaoticRuns []RunLambda `json:"new_chaotic_runs"`
}

// RunLambda is one run's λ state beside the reference's.
type RunLambda struct {
	Question string `json:"question"`
	Seed     uint64 `json:"seed"`
	State    Lambda `json:"state"`
	RefState Lambda `json:"ref_state"`
}

// ANNHealth is recall@10 of the region's serving search (its own index,
// ef_search / probes as configured) against its own exact search, over
// every question and seed.
type ANNHealth struct {
	Mean     float64 `json:"mean"`
	Min      float64 `json:"min"`
	Floor    float64 `json:"floor"`
	EfSearch int     `json:"ef_search"`
	Probes   int     `json:"probes"`
	Status   Status  `json:"status"`
	// Worst are the lowest-recall runs (up to 5), worst first.
	Worst []QuestionRecall `json:"worst"`
}

// QuestionRecall is one run's ANN recall@10.
type QuestionRecall struct {
	Question string  `json:"question"`
	Seed     uint64  `json:"seed"`
	Recall   float64 `json:"recall"`
}

// Region returns the per-region result of name, or nil.
func (r *Report) Region(name string) *RegionResult {
	for i := range r.PerRegion {
		if r.PerRegion[i].Region == name {
			return &r.PerRegion[i]
		}
	}
	return nil
}

// checkOptions refuses options that cannot be honoured, before any probe.
func checkOptions(o Options, regions []Region, tag string, cfg Config) error {
	if o.Baseline != nil && len(o.Reference) > 0 {
		return errors.New("probe: a reference group and a baseline were both given: compare with one of them")
	}
	for _, n := range o.Reference {
		if !slices.ContainsFunc(regions, func(r Region) bool { return r.Name == n }) {
			return fmt.Errorf("probe: reference region %s is not one of the regions probed", n)
		}
	}
	b := o.Baseline
	if b == nil {
		return nil
	}
	if err := b.validate(); err != nil {
		return err
	}
	var seeds []uint64
	for s := 1; s <= cfg.Seeds; s++ {
		seeds = append(seeds, uint64(s))
	}
	search := cfg.Search
	if search == "" {
		search = SearchExact
	}
	switch {
	case b.ModelTag != tag:
		return fmt.Errorf("probe: the baseline was recorded with model tag %q, the regions declare %q: %w", b.ModelTag, tag, ErrModelMismatch)
	case b.K != cfg.K:
		return fmt.Errorf("probe: the baseline was recorded with k=%d, the probe runs with k=%d", b.K, cfg.K)
	case !slices.Equal(b.Seeds, seeds):
		return fmt.Errorf("probe: the baseline was recorded on seeds %v, the probe runs seeds %v", b.Seeds, seeds)
	case b.Search != search:
		return fmt.Errorf("probe: the baseline was recorded with search %s, the probe runs search %s", b.Search, search)
	}
	return nil
}

// perRegion decides every region against the reference.
func (rep *Report) perRegion(regions []Region, all []regionHits, o Options) {
	cfg := rep.Config
	live := map[string]int{} // region → index in rep.Questions[].Regions
	for i, n := range rep.Regions {
		live[n] = i
	}
	// Reference runs, [question][seed].
	ref := make([][]*BaselineRun, len(rep.Questions))
	refName := ""
	if b := o.Baseline; b != nil {
		refName = "baseline (region " + b.Region + ")"
		idx := map[string]int{}
		for i, q := range b.Questions {
			idx[q.ID] = i
		}
		for qi, q := range rep.Questions {
			ref[qi] = make([]*BaselineRun, len(rep.Seeds))
			bi, ok := idx[q.ID]
			if !ok {
				continue
			}
			for si := range rep.Seeds {
				r := b.Questions[bi].Runs[si]
				ref[qi][si] = &r
			}
		}
	} else {
		group := o.Reference
		if len(group) == 0 {
			for _, r := range regions {
				group = append(group, r.Name)
			}
		}
		refName = "group " + strings.Join(group, ", ")
		var members []int
		for _, n := range group {
			if i, ok := live[n]; ok {
				members = append(members, i)
			}
		}
		for qi, q := range rep.Questions {
			ref[qi] = make([]*BaselineRun, len(rep.Seeds))
			if len(members) == 0 {
				continue
			}
			for si := range rep.Seeds {
				runs := make([]SeedRun, 0, len(members))
				for _, m := range members {
					runs = append(runs, q.Regions[m].Runs[si])
				}
				sort.SliceStable(runs, func(a, b int) bool { return runs[a].DeltaS < runs[b].DeltaS })
				med := runs[(len(runs)-1)/2]
				ref[qi][si] = &BaselineRun{Seed: med.Seed, Variant: med.Variant, TopK: med.TopK, DeltaS: med.DeltaS, Lambda: med.Lambda, Covered: med.Covered}
			}
		}
	}
	for ri, r := range regions {
		rr := RegionResult{Region: r.Name, Reference: refName, Reasons: []string{}, Floors: []Floor{},
			Drift:  RegionDrift{Threshold: cfg.DriftLimit(), Over: []RunDrift{}},
			Lambda: RegionLambda{Disagree: []RunLambda{}, NewChaoticRuns: []RunLambda{}},
			ANN:    ANNHealth{Floor: cfg.ANNRecallMin, EfSearch: cfg.EfSearch, Probes: cfg.Probes, Worst: []QuestionRecall{}}}
		if err := all[ri].err; err != nil {
			rr.err = err
			rr.Error = err.Error()
			rr.Status = Inconclusive
			rr.ANN.Status = Inconclusive
			rr.Reasons = append(rr.Reasons, "could not be probed: "+err.Error())
			rep.PerRegion = append(rep.PerRegion, rr)
			continue
		}
		li := live[r.Name]
		rep.judgeRegion(&rr, li, ref, all[ri].recall)
		rep.PerRegion = append(rep.PerRegion, rr)
	}
}

// judgeRegion fills one reachable region's result.
func (rep *Report) judgeRegion(rr *RegionResult, li int, ref [][]*BaselineRun, recall [][]float64) {
	cfg := rep.Config
	var fails []string
	// Drift and λ against the reference.
	agree := 0
	for qi, q := range rep.Questions {
		compared := false
		for si, run := range q.Regions[li].Runs {
			rf := ref[qi][si]
			if rf == nil || rf.Variant != run.Variant {
				continue
			}
			compared = true
			d := run.DeltaS - rf.DeltaS
			if d < 0 {
				d = -d
			}
			if d > rr.Drift.Max || (rr.Drift.Worst == "") {
				rr.Drift.Max, rr.Drift.Worst, rr.Drift.WorstSeed = d, q.ID, run.Seed
			}
			if d > cfg.DriftLimit() {
				rr.Drift.Over = append(rr.Drift.Over, RunDrift{Question: q.ID, Seed: run.Seed, Drift: d, DeltaS: run.DeltaS, RefDeltaS: rf.DeltaS})
			}
			rr.Lambda.Runs++
			rl := RunLambda{Question: q.ID, Seed: run.Seed, State: run.Lambda, RefState: rf.Lambda}
			if run.Lambda == rf.Lambda {
				agree++
			} else {
				rr.Lambda.Disagree = append(rr.Lambda.Disagree, rl)
			}
			if run.Lambda == Chaotic && rf.Lambda != Chaotic {
				rr.Lambda.NewChaotic++
				rr.Lambda.NewChaoticRuns = append(rr.Lambda.NewChaoticRuns, rl)
			}
		}
		if compared {
			rr.Compared++
		}
	}
	sort.SliceStable(rr.Drift.Over, func(a, b int) bool { return rr.Drift.Over[a].Drift > rr.Drift.Over[b].Drift })
	if rr.Lambda.Runs > 0 {
		rr.Lambda.Agreement = float64(agree) / float64(rr.Lambda.Runs)
	}
	if len(rr.Drift.Over) > 0 {
		var qs []string
		for _, o := range rr.Drift.Over {
			qs = append(qs, fmt.Sprintf("%s@%d (%.4f)", o.Question, o.Seed, o.Drift))
		}
		fails = append(fails, fmt.Sprintf("ΔS drift %.4f > %g against the %s on %d runs: %s", rr.Drift.Max, cfg.DriftLimit(), rr.Reference, len(rr.Drift.Over), strings.Join(capList(qs, 10), ", ")))
	}
	if rr.Lambda.Runs > 0 && rr.Lambda.Agreement < cfg.LambdaAgreementMin {
		fails = append(fails, fmt.Sprintf("λ state equal to the reference's on %.2f of %d runs < %g", rr.Lambda.Agreement, rr.Lambda.Runs, cfg.LambdaAgreementMin))
	}
	if rr.Lambda.NewChaotic > cfg.NewChaoticMax {
		var runs []string
		for _, l := range rr.Lambda.NewChaoticRuns {
			runs = append(runs, fmt.Sprintf("%s@%d", l.Question, l.Seed))
		}
		fails = append(fails, fmt.Sprintf("%d chaotic runs where the reference had none > %d: %s", rr.Lambda.NewChaotic, cfg.NewChaoticMax, strings.Join(capList(runs, 10), ", ")))
	}
	// ANN health: its own serving search against its own exact search.
	if recall == nil { // not measured (Options.SkipANNHealth)
		rr.ANN.Min = 0
		rr.judgeStatus(fails, rep)
		return
	}
	var recs []QuestionRecall
	sum := 0.0
	rr.ANN.Min = 1
	for si, seed := range rep.Seeds {
		for qi, q := range rep.Questions {
			v := recall[si][qi]
			sum += v
			rr.ANN.Min = min(rr.ANN.Min, v)
			recs = append(recs, QuestionRecall{Question: q.ID, Seed: seed, Recall: v})
		}
	}
	if len(recs) > 0 {
		rr.ANN.Mean = sum / float64(len(recs))
	}
	sort.SliceStable(recs, func(a, b int) bool { return recs[a].Recall < recs[b].Recall })
	for _, x := range recs[:min(5, len(recs))] {
		if x.Recall < 1 {
			rr.ANN.Worst = append(rr.ANN.Worst, x)
		}
	}
	rr.ANN.Status = status(rr.ANN.Mean >= cfg.ANNRecallMin)
	if rr.ANN.Status == Fail {
		fails = append(fails, fmt.Sprintf("ANN health: region %s's serving search (ef_search %d, probes %d) has mean recall@%d %.3f < %g against its own exact search (min %.2f)",
			rr.Region, cfg.EfSearch, cfg.Probes, ANNK, rr.ANN.Mean, cfg.ANNRecallMin, rr.ANN.Min))
	}
	rr.judgeStatus(fails, rep)
}

// judgeStatus records the release floors (reported only) and decides the
// region's status from its failures and how much could be compared.
func (rr *RegionResult) judgeStatus(fails []string, rep *Report) {
	cfg := rep.Config
	if b, err := RecordBaseline(rep, rr.Region); err == nil {
		rr.Floors = CheckReleaseFloors(b, cfg)
	}
	switch {
	case len(fails) > 0:
		rr.Status, rr.Reasons = Fail, fails
	case rr.Compared == 0:
		rr.Status = Inconclusive
		rr.Reasons = append(rr.Reasons, fmt.Sprintf("no reference run to compare with (%s)", rr.Reference))
	case rr.Compared < cfg.MinQuestions:
		rr.Status = Inconclusive
		rr.Reasons = append(rr.Reasons, fmt.Sprintf("only %d questions compared with the %s, fewer than min_questions %d", rr.Compared, rr.Reference, cfg.MinQuestions))
	default:
		rr.Status = Pass
	}
}

func capList(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("... %d more", len(s)-n))
}
