package probe

import (
	"math"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/stat"
)

// Zone bounds of ΔS (metrics.md; lower bound inclusive).
const (
	ZoneTransitional = 0.40
	ZoneRisk         = 0.60
	ZoneDanger       = 0.85
)

// Zone names ΔS's zone: stable < 0.40 <= transitional < 0.60 <= risk
// < 0.85 <= danger.
func Zone(ds float64) string {
	switch {
	case ds < ZoneTransitional:
		return "stable"
	case ds < ZoneRisk:
		return "transitional"
	case ds < ZoneDanger:
		return "risk"
	}
	return "danger"
}

// deltaS is 1 − cos(a, b) clamped to [0, 1]; a is a unit vector, b any
// vector (a zero b gives 1).
func deltaS(a []float32, b []float64) float64 {
	var dot, nb float64
	for i := range a {
		dot += float64(a[i]) * b[i]
		nb += b[i] * b[i]
	}
	if nb == 0 || math.IsNaN(nb) {
		return 1
	}
	return clamp01(1 - dot/math.Sqrt(nb))
}

func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

// Lambda is a λ_observe state.
type Lambda string

const (
	Convergent Lambda = "convergent" // →
	Recursive  Lambda = "recursive"  // <>
	Divergent  Lambda = "divergent"  // ←
	Chaotic    Lambda = "chaotic"    // ×
)

// The λ rule's default thresholds (metrics.md "λ (lambda_observe) on two
// seeds"); Config's lambda_* keys change them.
const (
	LambdaChaosStep = 0.04  // any step Δ_t above it: chaotic
	LambdaNetMove   = 0.02  // δ_k − δ_1 at or below −it: convergent; |·| below it: recursive
	LambdaEresRise  = 0.005 // convergent: E_res never rises by more than this
	LambdaEresFlat  = 0.02  // recursive: max E_res − min E_res below this
	LambdaWindow    = 5     // E_res: rolling mean over the last min(t, 5) steps
)

// Trajectory returns δ_t, t = 1..len(texts): ΔS between the question
// vector q (unit) and the normalised mean of the first t text vectors.
func Trajectory(q []float32, texts [][]float32) []float64 {
	if len(texts) == 0 {
		return nil
	}
	sum := make([]float64, len(q))
	out := make([]float64, len(texts))
	for t, v := range texts {
		for i := range sum {
			if v != nil {
				sum[i] += float64(v[i])
			}
		}
		out[t] = deltaS(q, sum)
	}
	return out
}

// LambdaRule holds the λ rule's thresholds.
type LambdaRule struct {
	ChaosStep, NetMove, EresRise, EresFlat float64
	Window                                 int
}

// DefaultLambda is the rule with metrics.md's thresholds.
var DefaultLambda = LambdaRule{ChaosStep: LambdaChaosStep, NetMove: LambdaNetMove, EresRise: LambdaEresRise, EresFlat: LambdaEresFlat, Window: LambdaWindow}

// Classify applies metrics.md's rule with the default thresholds (see
// LambdaRule.Classify).
func Classify(traj []float64) Lambda { return DefaultLambda.Classify(traj) }

// Classify applies metrics.md's rule to a trajectory, first match wins:
// chaotic if any step Δ_t > +0.04; convergent if δ_k − δ_1 <= −0.02 and
// E_res never rises by more than 0.005; recursive if |δ_k − δ_1| < 0.02
// and max E_res − min E_res < 0.02; divergent otherwise. An empty
// trajectory (no hits) is divergent. The figures are r's.
func (r LambdaRule) Classify(traj []float64) Lambda {
	window := max(r.Window, 1)
	if len(traj) == 0 {
		return Divergent
	}
	eres := make([]float64, len(traj))
	var sum float64
	for t, d := range traj {
		sum += d
		if t >= window {
			sum -= traj[t-window]
		}
		eres[t] = sum / float64(min(t+1, window))
	}
	neverRises := true
	lo, hi := eres[0], eres[0]
	for t := 1; t < len(traj); t++ {
		if traj[t]-traj[t-1] > r.ChaosStep {
			return Chaotic
		}
		if eres[t]-eres[t-1] > r.EresRise {
			neverRises = false
		}
		lo, hi = math.Min(lo, eres[t]), math.Max(hi, eres[t])
	}
	net := traj[len(traj)-1] - traj[0]
	switch {
	case net <= -r.NetMove && neverRises:
		return Convergent
	case math.Abs(net) < r.NetMove && hi-lo < r.EresFlat:
		return Recursive
	}
	return Divergent
}

// Jaccard is |a ∩ b| / |a ∪ b| of two id lists (1 when both are empty).
func Jaccard(a, b []string) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	in := map[string]bool{}
	for _, x := range a {
		in[x] = true
	}
	union := len(in)
	inter := 0
	seen := map[string]bool{}
	for _, x := range b {
		if seen[x] {
			continue
		}
		seen[x] = true
		if in[x] {
			inter++
		} else {
			union++
		}
	}
	return float64(inter) / float64(union)
}

// KendallTop is Kendall's tau (gonum stat.Kendall, tau-a) between the
// orders two rankings give to the ids they share, over their first n
// entries. With fewer than two shared ids the order cannot be compared: it
// is 1 when the two lists are identical (both empty or the same single
// id), else 0.
func KendallTop(a, b []string, n int) float64 {
	a, b = a[:min(n, len(a))], b[:min(n, len(b))]
	pos := map[string]int{}
	for i, x := range a {
		if _, dup := pos[x]; !dup {
			pos[x] = i
		}
	}
	var x, y []float64
	seen := map[string]bool{}
	for j, id := range b {
		if i, ok := pos[id]; ok && !seen[id] {
			seen[id] = true
			x = append(x, float64(i))
			y = append(y, float64(j))
		}
	}
	if len(x) < 2 {
		if len(a) == len(b) && len(x) == len(a) {
			return 1
		}
		return 0
	}
	return stat.Kendall(x, y, nil)
}

// quality scores one ranking against gold ids. A hit matches a gold id by
// its point id or its payload's source_id; the ranking is de-duplicated
// by document (a document's best chunk counts, at its first rank), so two
// chunks of one gold document count once.
func quality(hitIDs, sourceIDs []string, gold map[string]bool, k int) (recall, ndcg10, mrr float64, covered bool) {
	var keys []string
	seen := map[string]bool{}
	for i, id := range hitIDs {
		key := ""
		switch {
		case gold[id]:
			key = id
		case sourceIDs[i] != "" && gold[sourceIDs[i]]:
			key = sourceIDs[i]
		case sourceIDs[i] != "":
			key = "\x00doc\x00" + sourceIDs[i]
		default:
			key = "\x00id\x00" + id
		}
		if gold[key] {
			covered = true
		}
		if !seen[key] {
			seen[key] = true
			keys = append(keys, key)
		}
	}
	rel := make(map[string]int, len(gold))
	for g := range gold {
		rel[g] = 1
	}
	ndcg10, _, _ = Score(keys, rel, 10)
	_, recall, mrr = Score(keys, rel, k)
	return recall, ndcg10, mrr, covered
}

// Interval is a bootstrap confidence interval.
type Interval struct {
	Level     float64 `json:"level"`
	Low       float64 `json:"low"`
	High      float64 `json:"high"`
	Resamples int     `json:"resamples"`
	Seed      uint64  `json:"seed"`
}

// Bootstrap parameters: fixed, so reports are reproducible.
const (
	BootstrapResamples = 2000
	BootstrapSeed      = 20260501
	BootstrapLevel     = 0.95
)

// bootstrapMax is the percentile bootstrap interval of max(x).
func bootstrapMax(x []float64) *Interval {
	r := rand.New(rand.NewPCG(BootstrapSeed, 0x70726f6265))
	maxes := make([]float64, BootstrapResamples)
	for b := range maxes {
		m := math.Inf(-1)
		for range x {
			m = math.Max(m, x[r.IntN(len(x))])
		}
		maxes[b] = m
	}
	sort.Float64s(maxes)
	a := (1 - BootstrapLevel) / 2
	return &Interval{
		Level:     BootstrapLevel,
		Low:       stat.Quantile(a, stat.Empirical, maxes, nil),
		High:      stat.Quantile(1-a, stat.Empirical, maxes, nil),
		Resamples: BootstrapResamples,
		Seed:      BootstrapSeed,
	}
}

// quantile is the linearly interpolated p-quantile of x (not modified).
func quantile(p float64, x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	return stat.Quantile(p, stat.LinInterp, s, nil)
}
