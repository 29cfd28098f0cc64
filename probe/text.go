package probe

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

func lambdaList(runs []SeedRun) string {
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = string(r.Lambda)
	}
	return strings.Join(parts, "/")
}

// deltaSList prints a region's ΔS for a question, per seed when the seeds
// differ (they ask different variants).
func deltaSList(runs []SeedRun) string {
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

// WriteText writes the report as `ragparity probe` prints it.
func WriteText(w io.Writer, rep *Report) {
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
		ZoneTransitional, ZoneRisk, ZoneDanger, c.LambdaChaosStep, c.LambdaNetMove, c.LambdaEresRise, c.LambdaNetMove, c.LambdaEresFlat, c.LambdaWindow)

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
				ss.Lambda[Convergent], ss.Lambda[Recursive], ss.Lambda[Divergent], ss.Lambda[Chaotic], ss.ConvergentShare)
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
		if len(ch.Evidence) > 0 && ch.Status != Pass {
			fmt.Fprintf(w, "       questions: %s\n", evidence(ch.Evidence))
		}
	}
	writePerRegion(rep, w)
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
		if rr.Status != Pass {
			parts = append(parts, fmt.Sprintf("region %s %s", rr.Region, rr.Status))
		}
	}
	fmt.Fprintf(w, "FAIL: %s\n", strings.Join(parts, "; "))
}

// writePerRegion prints each region's own result against the reference.
func writePerRegion(rep *Report, w io.Writer) {
	fmt.Fprintf(w, "\nper region (parity searches %s; ANN health: serving search at ef_search=%d probes=%d against exact, floor %g)\n",
		rep.Config.Search, rep.Config.EfSearch, rep.Config.Probes, rep.Config.ANNRecallMin)
	for _, rr := range rep.PerRegion {
		fmt.Fprintf(w, "  %-4s %s", strings.ToUpper(string(rr.Status)), rr.Region)
		if rr.Error != "" {
			fmt.Fprintf(w, ": %s\n", rr.Error)
			continue
		}
		missed := MissedFloors(rr.Floors)
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
