package probe

import (
	"fmt"
	"sort"
	"strings"
)

// Check names, in report order.
const (
	CheckDrift            = "drift"
	CheckDeltaSFloor      = "delta_s_floor"
	CheckCoverageFloor    = "coverage_floor"
	CheckLambdaConvergent = "lambda_convergent"
	CheckLambdaChaotic    = "lambda_chaotic"
	CheckLambdaAgreement  = "lambda_agreement"
	CheckJaccard          = "jaccard"
	CheckKendall          = "kendall"
)

// worstFirst orders question ids by a figure, worst first (ties by the
// gold set's order).
type worstFirst struct {
	ids  []string
	vals []float64
	seen map[string]int
}

func (w *worstFirst) add(id string, v float64) {
	if w.seen == nil {
		w.seen = map[string]int{}
	}
	if i, ok := w.seen[id]; ok {
		w.vals[i] = max(w.vals[i], v)
		return
	}
	w.seen[id] = len(w.ids)
	w.ids = append(w.ids, id)
	w.vals = append(w.vals, v)
}

func (w *worstFirst) list() []string {
	idx := make([]int, len(w.ids))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return w.vals[idx[a]] > w.vals[idx[b]] })
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = w.ids[j]
	}
	return out
}

func status(ok bool) Status {
	if ok {
		return Pass
	}
	return Fail
}

// floorStatus is a release floor's status in a verification: reported as
// a warning, never a failure (metrics.md "Release quality floors").
func floorStatus(ok bool) Status {
	if ok {
		return Pass
	}
	return Warn
}

// judge computes every check from the results. The release quality floors
// (ΔS, coverage, convergent share, chaotic runs) warn and never fail: they
// decide a release (CheckReleaseFloors), not a region.
func (rep *Report) judge() {
	cfg := rep.Config
	nq := len(rep.Questions)
	multi := len(rep.Regions) > 1

	// Drift: the worst question over the whole gold set.
	var drift worstFirst
	for _, q := range rep.Questions {
		if q.Drift > cfg.DriftMax {
			drift.add(q.ID, q.Drift)
		}
	}
	d := rep.Drift
	detail := fmt.Sprintf("max drift %.4f (question %s) over %d questions (min_questions %d); median %.4f, p90 %.4f",
		d.Max, d.Worst, nq, cfg.MinQuestions, d.Median, d.P90)
	if d.CI != nil {
		detail += fmt.Sprintf("; %.0f%% bootstrap CI of the max [%.4f, %.4f] (%d questions < 30)", d.CI.Level*100, d.CI.Low, d.CI.High, nq)
	}
	if !multi {
		detail = "one region: drift is 0 by definition; " + detail
	}
	rep.Checks = append(rep.Checks, Check{Name: CheckDrift, Status: status(d.Max <= cfg.DriftMax), Figure: d.Max, Op: "<=",
		Threshold: cfg.DriftMax, Detail: detail, Evidence: nonNil(drift.list())})

	// Quality floor: ΔS per question and coverage, per region and seed.
	var dsBad worstFirst
	maxDS := 0.0
	var dsParts []string
	minCov := 1.0
	var covBad worstFirst
	var covParts []string
	for ri, rs := range rep.Summary {
		for si, ss := range rs.Seeds {
			over := 0
			for _, q := range rep.Questions {
				run := q.Regions[ri].Runs[si]
				maxDS = max(maxDS, run.DeltaS)
				if run.DeltaS > cfg.DeltaSMax {
					over++
					dsBad.add(q.ID, run.DeltaS)
				}
			}
			if over > 0 {
				dsParts = append(dsParts, fmt.Sprintf("%s seed %d: %d of %d questions above %.2f", rs.Region, ss.Seed, over, nq, cfg.DeltaSMax))
			}
			minCov = min(minCov, ss.Coverage)
			covParts = append(covParts, fmt.Sprintf("%s seed %d: %.2f", rs.Region, ss.Seed, ss.Coverage))
			if ss.Coverage < cfg.CoverageMin {
				for _, q := range rep.Questions {
					if !q.Regions[ri].Runs[si].Covered {
						covBad.add(q.ID, 1)
					}
				}
			}
		}
	}
	dsDetail := fmt.Sprintf("release floor (warns, never fails a verification): largest ΔS %.4f; every question's ΔS should be <= %.2f in every region", maxDS, cfg.DeltaSMax)
	if len(dsParts) > 0 {
		dsDetail += " (" + strings.Join(dsParts, "; ") + ")"
	}
	rep.Checks = append(rep.Checks, Check{Name: CheckDeltaSFloor, Status: floorStatus(maxDS <= cfg.DeltaSMax), Figure: maxDS, Op: "<=",
		Threshold: cfg.DeltaSMax, Detail: dsDetail, Evidence: nonNil(dsBad.list())})
	rep.Checks = append(rep.Checks, Check{Name: CheckCoverageFloor, Status: floorStatus(minCov >= cfg.CoverageMin), Figure: minCov, Op: ">=",
		Threshold: cfg.CoverageMin, Detail: fmt.Sprintf("release floor (warns, never fails a verification): share of questions with a gold id in the top %d, lowest region and seed (%s); evidence: questions without one where the floor fails",
			cfg.K, strings.Join(covParts, "; ")), Evidence: nonNil(covBad.list())})

	// λ: convergent share per region and seed, no chaotic run, agreement.
	minConv := 1.0
	var convParts []string
	var convBad, chaos, disagree worstFirst
	chaotic, maxChaotic := 0, 0
	for ri, rs := range rep.Summary {
		for si, ss := range rs.Seeds {
			maxChaotic = max(maxChaotic, ss.Lambda[Chaotic])
			minConv = min(minConv, ss.ConvergentShare)
			convParts = append(convParts, fmt.Sprintf("%s seed %d: %.2f", rs.Region, ss.Seed, ss.ConvergentShare))
			for _, q := range rep.Questions {
				l := q.Regions[ri].Runs[si].Lambda
				if ss.ConvergentShare < cfg.ConvergentShareMin && l != Convergent {
					convBad.add(q.ID, 1)
				}
				if l == Chaotic {
					chaotic++
					chaos.add(q.ID, 1)
				}
			}
		}
	}
	agree := 0
	for _, q := range rep.Questions {
		if q.LambdaAgree {
			agree++
		} else {
			disagree.add(q.ID, 1)
		}
	}
	agreeShare := float64(agree) / float64(nq)
	rep.Checks = append(rep.Checks,
		Check{Name: CheckLambdaConvergent, Status: floorStatus(minConv >= cfg.ConvergentShareMin), Figure: minConv, Op: ">=", Threshold: cfg.ConvergentShareMin,
			Detail: fmt.Sprintf("release floor (warns, never fails a verification): share of questions whose λ is convergent, lowest region and seed (%s)", strings.Join(convParts, "; ")), Evidence: nonNil(convBad.list())},
		Check{Name: CheckLambdaChaotic, Status: floorStatus(maxChaotic <= cfg.ChaoticRunsMax), Figure: float64(maxChaotic), Op: "<=", Threshold: float64(cfg.ChaoticRunsMax),
			Detail: fmt.Sprintf("release floor (warns, never fails a verification): most chaotic runs (a step of ΔS above +%.3g) on one region and seed; %d in all over %d regions x %d seeds x %d questions", cfg.LambdaChaosStep, chaotic, len(rep.Regions), len(rep.Seeds), nq), Evidence: nonNil(chaos.list())},
		Check{Name: CheckLambdaAgreement, Status: status(agreeShare >= cfg.LambdaAgreementMin), Figure: agreeShare, Op: ">=", Threshold: cfg.LambdaAgreementMin,
			Detail: fmt.Sprintf("%d of %d questions have the same λ state on every seed and region", agree, nq), Evidence: nonNil(disagree.list())},
	)

	// Jaccard and Kendall: warnings.
	var jBad, kBad worstFirst
	minJ, minK := 1.0, 1.0
	for _, q := range rep.Questions {
		minJ, minK = min(minJ, q.Jaccard), min(minK, q.Kendall)
		if q.Jaccard < cfg.JaccardWarn {
			jBad.add(q.ID, 1-q.Jaccard)
		}
		if q.Kendall < cfg.KendallWarn {
			kBad.add(q.ID, 1-q.Kendall)
		}
	}
	warn := func(ok bool) Status {
		if ok {
			return Pass
		}
		return Warn
	}
	rep.Checks = append(rep.Checks,
		Check{Name: CheckJaccard, Status: warn(minJ >= cfg.JaccardWarn), Figure: minJ, Op: ">=", Threshold: cfg.JaccardWarn,
			Detail: fmt.Sprintf("smallest Jaccard of the top-%d ids between two regions, over questions and seeds (%d questions below; warns, never fails)", cfg.K, len(jBad.ids)), Evidence: nonNil(jBad.list())},
		Check{Name: CheckKendall, Status: warn(minK >= cfg.KendallWarn), Figure: minK, Op: ">=", Threshold: cfg.KendallWarn,
			Detail: fmt.Sprintf("smallest Kendall tau of the top-10 order between two regions (%d questions below; warns, never fails)", len(kBad.ids)), Evidence: nonNil(kBad.list())},
	)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
