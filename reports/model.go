// Package reports renders one gate verdict (gate.Verdict) as JSON, as a
// Markdown pull-request comment, as a self-contained HTML page with charts
// and as JUnit XML.
//
// A Model is the verdict plus optional detail the verdict does not carry
// (per-question probe results, Merkle bucket maps, blob diffs). Every
// renderer draws what is present and says "not measured in this verdict"
// for what is not.
package reports

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"

	"github.com/ragparity/ragparity/gate"
)

// Model is what every renderer reads. Verdict is required; the rest is
// optional detail.
type Model struct {
	Verdict *gate.Verdict
	// Probes is the per-question detail behind the probes check.
	Probes *ProbeDetail
	// BucketMaps are the Merkle buckets that differ, one per pair of
	// regions compared (reference region first).
	BucketMaps []BucketMap
	// BlobDiffs are the blob manifest differences, one per pair.
	BlobDiffs []BlobDiff
	// Measures gives a check's figure as a number for the checks chart,
	// keyed by check name. Checks not listed are derived where the figure
	// reads "N of M ..." (and, for probes, from Probes); others are shown
	// without a bar.
	Measures map[string]Measure
	// DetailNotKept says the verification measured detail that this model
	// does not have (a verdict file read without its store): renderers say
	// it was not kept rather than not measured.
	DetailNotKept bool
}

// HasDetail reports whether the model carries any detail.
func (m *Model) HasDetail() bool {
	return (m.Probes != nil && len(m.Probes.Questions) > 0) || len(m.BucketMaps) > 0 || len(m.BlobDiffs) > 0
}

// DetailMeasured reports whether the verification behind v measured
// per-question probe detail (its probes check ran and has measures).
func DetailMeasured(v *gate.Verdict) bool {
	for _, c := range v.Checks {
		if c.Name == gate.CheckProbes && c.Status != gate.Skipped && len(c.Measures) > 0 {
			return true
		}
	}
	return false
}

// probeNote is what renderers say when the model has no per-question
// probe detail.
func (m *Model) probeNote() string {
	if m.DetailNotKept {
		return "Per-question ΔS, drift and λ were measured, but their detail was not kept with this verdict file (ragparity report --config FILE reads it from the verdict store)."
	}
	return "Per-question ΔS, drift and λ were not measured in this verdict."
}

// The detail types are the gate's (gate.Detail); reports draws them.
type (
	ProbeDetail    = gate.ProbeDetail
	QuestionDetail = gate.QuestionDetail
	BucketMap      = gate.BucketMap
	BlobDiff       = gate.BlobDiff
	BlobChange     = gate.BlobChange
)

// NewModel is the model of a verdict and the detail of the verification
// that made it (d may be nil).
func NewModel(v *gate.Verdict, d *gate.Detail) *Model {
	m := &Model{Verdict: v}
	if d != nil {
		m.Probes, m.BucketMaps, m.BlobDiffs = d.Probes, d.BucketMaps, d.BlobDiffs
	}
	return m
}

// Measure is a check's figure as a number.
type Measure struct {
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Max: Threshold is an upper bound (Value <= Threshold passes);
	// otherwise a lower bound (Value >= Threshold passes).
	Max bool `json:"max,omitempty"`
	// Unit follows the numbers in labels ("regions", "ΔS drift").
	Unit string `json:"unit,omitempty"`
}

// Lambda states, as metrics.md names them.
const (
	LambdaConvergent = "convergent"
	LambdaRecursive  = "recursive"
	LambdaDivergent  = "divergent"
	LambdaChaotic    = "chaotic"
)

// lambdaState maps a state or its WFGY symbol to the state's name; unknown
// strings come back as given.
func lambdaState(s string) string {
	switch s {
	case "→", "->", LambdaConvergent:
		return LambdaConvergent
	case "<>", LambdaRecursive:
		return LambdaRecursive
	case "←", "<-", LambdaDivergent:
		return LambdaDivergent
	case "×", "x", LambdaChaotic:
		return LambdaChaotic
	}
	return s
}

// validate says what makes m unrenderable.
func (m *Model) validate() error {
	if m == nil || m.Verdict == nil {
		return fmt.Errorf("reports: no verdict")
	}
	return nil
}

// regionOrder lists the regions of the verdict in verdict order, then any
// other region named by the probe detail, sorted.
func (m *Model) regionOrder() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range m.Verdict.Regions {
		if !seen[r.Name] {
			seen[r.Name] = true
			out = append(out, r.Name)
		}
	}
	if m.Probes != nil {
		var extra []string
		for _, q := range m.Probes.Questions {
			for r := range q.DeltaS {
				if !seen[r] {
					seen[r] = true
					extra = append(extra, r)
				}
			}
			for r := range q.Lambda {
				if !seen[r] {
					seen[r] = true
					extra = append(extra, r)
				}
			}
		}
		sort.Strings(extra)
		out = append(out, extra...)
	}
	return out
}

// probeRegions lists the regions that have ΔS in the probe detail, in
// region order.
func (m *Model) probeRegions() []string {
	var out []string
	for _, r := range m.regionOrder() {
		for _, q := range m.Probes.Questions {
			if _, ok := q.DeltaS[r]; ok {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// seedLabels labels each seed of the λ detail.
func seedLabels(p *ProbeDetail) []string {
	n := len(p.Seeds)
	for _, q := range p.Questions {
		for _, st := range q.Lambda {
			n = max(n, len(st))
		}
	}
	out := make([]string, n)
	for i := range out {
		if i < len(p.Seeds) {
			out[i] = "seed " + strconv.FormatUint(p.Seeds[i], 10)
		} else {
			out[i] = "seed " + strconv.Itoa(i+1)
		}
	}
	return out
}

// hasLambda reports whether any question carries λ states.
func hasLambda(p *ProbeDetail) bool {
	for _, q := range p.Questions {
		if len(q.Lambda) > 0 {
			return true
		}
	}
	return false
}

// maxDrift returns the largest drift and the questions over the threshold.
func maxDrift(p *ProbeDetail) (float64, []string) {
	mx := 0.0
	var over []string
	for _, q := range p.Questions {
		mx = math.Max(mx, q.Drift)
		if q.Drift > p.DriftThreshold {
			over = append(over, q.ID)
		}
	}
	return mx, over
}

var nOfM = regexp.MustCompile(`^(\d+) of (\d+)\b\s*(\S*)`)

// measure returns check c's figure as a number, if it has one.
func (m *Model) measure(c gate.Check) (Measure, bool) {
	if x, ok := m.Measures[c.Name]; ok {
		return x, true
	}
	if c.Name == gate.CheckProbes && m.Probes != nil && len(m.Probes.Questions) > 0 {
		d, _ := maxDrift(m.Probes)
		return Measure{Value: d, Threshold: m.Probes.DriftThreshold, Max: true, Unit: "ΔS drift"}, true
	}
	if sm := nOfM.FindStringSubmatch(c.Figure); sm != nil {
		n, _ := strconv.Atoi(sm[1])
		of, _ := strconv.Atoi(sm[2])
		return Measure{Value: float64(n), Threshold: float64(of), Unit: sm[3]}, true
	}
	return Measure{}, false
}

// shortHash is the first 12 characters of a hash.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// fmtNum prints a figure with up to 4 decimals and no trailing zeros.
func fmtNum(x float64) string {
	return strconv.FormatFloat(math.Round(x*1e4)/1e4, 'f', -1, 64)
}
