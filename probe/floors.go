package probe

import (
	"fmt"
	"strings"
)

// Floor is one release quality floor (metrics.md "Release quality floors"):
// its figure, the threshold it is compared with by Op, and whether it is
// met. The floors decide whether a release gets a baseline; in a
// verification they are reported and never fail a region.
type Floor struct {
	Name      string  `json:"name"`
	Figure    float64 `json:"figure"`
	Op        string  `json:"op"`
	Threshold float64 `json:"threshold"`
	Met       bool    `json:"met"`
	Detail    string  `json:"detail"`
	// Evidence lists the questions (question@seed for per-seed floors)
	// that miss it.
	Evidence []string `json:"evidence"`
}

// CheckReleaseFloors checks the release quality floors on recorded runs
// (a Baseline, or RecordBaseline of one region's results) with cfg's
// thresholds: ΔS <= delta_s_max on every question and seed, coverage >=
// coverage_min on each seed, λ convergent share >= convergent_share_min on
// each seed, and at most chaotic_runs_max chaotic runs on each seed. It
// returns every floor, in that order, Met or not; MissedFloors keeps the
// missed ones.
func CheckReleaseFloors(b *Baseline, cfg Config) []Floor {
	nq := len(b.Questions)
	var dsEv []string
	maxDS := 0.0
	cov := map[uint64]int{}
	conv := map[uint64]int{}
	chaos := map[uint64]int{}
	var covEv, convEv, chaosEv []string
	for _, q := range b.Questions {
		for _, r := range q.Runs {
			maxDS = max(maxDS, r.DeltaS)
			if r.DeltaS > cfg.DeltaSMax {
				dsEv = append(dsEv, fmt.Sprintf("%s@%d", q.ID, r.Seed))
			}
			if r.Covered {
				cov[r.Seed]++
			} else {
				covEv = append(covEv, fmt.Sprintf("%s@%d", q.ID, r.Seed))
			}
			switch r.Lambda {
			case Convergent:
				conv[r.Seed]++
			case Chaotic:
				chaos[r.Seed]++
				chaosEv = append(chaosEv, fmt.Sprintf("%s@%d", q.ID, r.Seed))
			}
			if r.Lambda != Convergent {
				convEv = append(convEv, fmt.Sprintf("%s@%d", q.ID, r.Seed))
			}
		}
	}
	share := func(n int) float64 {
		if nq == 0 {
			return 0
		}
		return float64(n) / float64(nq)
	}
	minCov, minConv, maxChaos := 1.0, 1.0, 0
	var covParts, convParts, chaosParts []string
	for _, s := range b.Seeds {
		minCov = min(minCov, share(cov[s]))
		minConv = min(minConv, share(conv[s]))
		maxChaos = max(maxChaos, chaos[s])
		covParts = append(covParts, fmt.Sprintf("seed %d: %.2f", s, share(cov[s])))
		convParts = append(convParts, fmt.Sprintf("seed %d: %.2f", s, share(conv[s])))
		chaosParts = append(chaosParts, fmt.Sprintf("seed %d: %d", s, chaos[s]))
	}
	fl := func(name string, fig float64, op string, thr float64, met bool, detail string, ev []string) Floor {
		if met || ev == nil {
			ev = []string{}
		}
		return Floor{Name: name, Figure: fig, Op: op, Threshold: thr, Met: met, Detail: detail, Evidence: ev}
	}
	return []Floor{
		fl(CheckDeltaSFloor, maxDS, "<=", cfg.DeltaSMax, maxDS <= cfg.DeltaSMax,
			fmt.Sprintf("largest ΔS over %d questions x %d seeds (%d runs above %.2f)", nq, len(b.Seeds), len(dsEv), cfg.DeltaSMax), dsEv),
		fl(CheckCoverageFloor, minCov, ">=", cfg.CoverageMin, minCov >= cfg.CoverageMin,
			fmt.Sprintf("share of questions with a gold id in the top %d, lowest seed (%s)", b.K, strings.Join(covParts, "; ")), covEv),
		fl(CheckLambdaConvergent, minConv, ">=", cfg.ConvergentShareMin, minConv >= cfg.ConvergentShareMin,
			fmt.Sprintf("share of questions whose λ is convergent, lowest seed (%s)", strings.Join(convParts, "; ")), convEv),
		fl(CheckLambdaChaotic, float64(maxChaos), "<=", float64(cfg.ChaoticRunsMax), maxChaos <= cfg.ChaoticRunsMax,
			fmt.Sprintf("chaotic runs (a step of ΔS above +%.3g), most on one seed (%s)", cfg.LambdaChaosStep, strings.Join(chaosParts, "; ")), chaosEv),
	}
}

// MissedFloors returns the floors that are not met.
func MissedFloors(fs []Floor) []Floor {
	var out []Floor
	for _, f := range fs {
		if !f.Met {
			out = append(out, f)
		}
	}
	return out
}
