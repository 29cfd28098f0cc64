package gate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/parity"
)

// results collects one check's per-region results.
type results struct {
	cfg    *config.Config
	status map[string]Status
	reason map[string]string
}

func newResults(cfg *config.Config) *results {
	return &results{cfg: cfg, status: map[string]Status{}, reason: map[string]string{}}
}

func (r *results) set(region string, s Status, reason string) {
	// A region keeps its worst result: fail, then inconclusive, then pass.
	if old, ok := r.status[region]; ok && rank(old) >= rank(s) {
		return
	}
	r.status[region], r.reason[region] = s, reason
}

func (r *results) pass(region string) { r.set(region, Pass, "") }
func (r *results) fail(region, why string) {
	r.set(region, Fail, why)
}
func (r *results) inconclusive(region, why string) { r.set(region, Inconclusive, why) }

// all sets every configured region not yet decided.
func (r *results) all(s Status, why string) {
	for _, reg := range r.cfg.Regions {
		if _, ok := r.status[reg.Name]; !ok {
			r.set(reg.Name, s, why)
		}
	}
}

func rank(s Status) int {
	switch s {
	case Fail:
		return 3
	case Inconclusive:
		return 2
	case Pass, Skipped:
		return 1
	}
	return 0
}

// apply writes the per-region results into the check, in config order,
// and derives the check's status: fail when any region failed,
// inconclusive when none failed but some could not be decided, else pass.
func (r *results) apply(c *Check) {
	c.Regions = nil
	c.FailedRegions = nil
	var incon []string
	worst := Pass
	for _, reg := range r.cfg.Regions {
		s, ok := r.status[reg.Name]
		if !ok {
			s, r.reason[reg.Name] = Inconclusive, "not checked"
		}
		c.Regions = append(c.Regions, CheckRegion{Name: reg.Name, Status: s, Reason: r.reason[reg.Name]})
		switch s {
		case Fail:
			c.FailedRegions = append(c.FailedRegions, reg.Name)
		case Inconclusive:
			incon = append(incon, reg.Name+": "+r.reason[reg.Name])
		}
		if rank(s) > rank(worst) {
			worst = s
		}
	}
	c.Status = worst
	if len(incon) > 0 && c.Error == "" {
		c.Error = strings.Join(incon, "; ")
	}
}

// majority picks the reference value without a baseline: the largest
// group of reachable regions sharing a value, when it is a strict majority
// of the configured regions, else gate.primary's value when it is
// reachable. ok=false means no region can be decided; why says so.
func majority(cfg *config.Config, vals map[string]string, what string) (ref string, ok bool, why string) {
	count := map[string]int{}
	for _, v := range vals {
		count[v]++
	}
	best, bestN := "", 0
	for _, r := range cfg.Regions {
		if v, ok := vals[r.Name]; ok && count[v] > bestN {
			best, bestN = v, count[v]
		}
	}
	n := len(cfg.Regions)
	if bestN*2 > n {
		return best, true, ""
	}
	if p := cfg.Gate.Primary; p != "" {
		if v, ok := vals[p]; ok {
			return v, true, ""
		}
	}
	var groups []string
	for v, k := range count {
		groups = append(groups, fmt.Sprintf("%d on %s", k, parity.ShortHex(v)))
	}
	sort.Strings(groups)
	detail := "no region answered"
	if len(groups) > 0 {
		detail = strings.Join(groups, ", ")
	}
	return "", false, fmt.Sprintf("no reference for %s: %d of %d configured regions agree (%s); a strict majority, gate.primary, or a release baseline is needed (ragparity baseline create --config %s --from REGION)",
		what, bestN, n, detail, cfg.File)
}
