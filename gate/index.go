package gate

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier"
)

// RegionHash is what the index check found for one region; later checks
// (health) compare against it.
type RegionHash struct {
	IndexHash string
	ModelTag  string
}

// indexResult is what the index check leaves for the other checks.
type indexResult struct {
	hashes map[string]RegionHash
	// ref is the reference INDEX_HASH ("" when there is none) and
	// faithful the reachable regions that equal it, in config order.
	ref      string
	faithful []string
}

// indexCheck hashes every region and compares each one's INDEX_HASH with
// the reference: the baseline's, else the agreeing majority's. A region
// that differs is localised: against a reachable region equal to the
// reference when there is one (naming the ids), else against the
// baseline's Merkle leaves (naming the buckets and the ids the region
// holds in them).
func indexCheck(ctx context.Context, cfg *config.Config, o Options, det *Detail) (Check, *indexResult) {
	c := Check{Threshold: "every region's INDEX_HASH equal to the reference's"}
	res := newResults(cfg)
	ix := &indexResult{hashes: map[string]RegionHash{}}
	regions, _ := SelectRegions(cfg, nil)
	out := ScanRegions(ctx, cfg, regions, ScanOptions{Spill: true})
	defer func() {
		for i := range out {
			out[i].Close()
		}
	}()
	vals := map[string]string{}
	byName := map[string]*RegionScan{}
	for i, r := range out {
		name := r.Region.Name
		if r.Err != nil {
			res.inconclusive(name, r.Err.Error())
			continue
		}
		if r.Scan.Points == 0 && !r.Region.AllowEmpty {
			res.fail(name, "holds 0 points (set allow_empty: true on the region if an empty copy is intended)")
		}
		ih := r.Scan.IndexHash().Hex()
		mt, _ := r.Scan.Settings.Hashed["model_tag"].(string)
		ix.hashes[name] = RegionHash{IndexHash: ih, ModelTag: mt}
		vals[name] = ih
		byName[name] = &out[i]
	}
	var refSettings parity.Settings
	var refLeaves []parity.Leaf
	refEngine := ""
	if b := o.Baseline; b != nil {
		ix.ref = b.Index.IndexHash
		refEngine = b.Index.EngineDigest
		refSettings = parity.Settings{Hashed: b.Index.Settings, Engine: b.Index.Engine, Info: map[string]any{}}
		refLeaves, _ = b.Index.leaves() // checked by CheckBaseline
	} else {
		ref, ok, why := majority(cfg, vals, "INDEX_HASH")
		if !ok {
			res.all(Inconclusive, why)
			res.apply(&c)
			c.Figure = fmt.Sprintf("undecided: %s", why)
			return c, ix
		}
		ix.ref = ref
	}
	for _, r := range cfg.Regions {
		if vals[r.Name] == ix.ref && byName[r.Name] != nil {
			ix.faithful = append(ix.faithful, r.Name)
		}
	}
	var refScan *RegionScan
	if len(ix.faithful) > 0 {
		refScan = byName[ix.faithful[0]]
		if o.Baseline == nil {
			refSettings, refLeaves = refScan.Scan.Settings, refScan.Scan.Leaves
			refEngine = refScan.Scan.EngineDigest.Hex()
		}
	}
	strict := cfg.Gate.EngineParity == "strict"
	for _, r := range cfg.Regions {
		rs := byName[r.Name]
		if rs == nil {
			continue
		}
		if d := rs.Scan.Duplicates; len(d) > 0 {
			ids := make([]string, 0, len(d))
			for id := range d {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			items := make([]string, len(ids))
			for i, id := range ids {
				items[i] = fmt.Sprintf("id %s held %d times", id, d[id])
			}
			res.fail(r.Name, fmt.Sprintf("%d ids held more than once (%d extra rows): a store that inserts instead of upserting", len(ids), rs.Scan.DuplicateRows()))
			c.Evidence = append(c.Evidence, capEvidence(r.Name, items, o.MaxEvidence, "duplicate ids (ragparity hash --json lists them)")...)
		}
		if vals[r.Name] == ix.ref {
			if ed := rs.Scan.EngineDigest.Hex(); refEngine != "" && ed != refEngine {
				var diffs []string
				for _, sd := range parity.DiffSettings(refSettings, rs.Scan.Settings) {
					if sd.Engine {
						diffs = append(diffs, fmt.Sprintf("%s: %v -> %v", sd.Key, sd.From, sd.To))
					}
				}
				msg := fmt.Sprintf("%s: same content and semantic settings, other engine settings (engine digest %s, the reference's %s): %s", r.Name, parity.ShortHex(ed), parity.ShortHex(refEngine), strings.Join(diffs, "; "))
				if strict {
					res.fail(r.Name, "engine settings differ from the reference's (gate.engine_parity: strict)")
					c.Evidence = append(c.Evidence, msg)
					continue
				}
				c.Warnings = append(c.Warnings, msg+" (a warning: gate.engine_parity: strict makes it a failure; the probes' ANN health measures whether it changes answers)")
			}
			res.pass(r.Name)
			continue
		}
		var ev []string
		for _, sd := range parity.DiffSettings(refSettings, rs.Scan.Settings) {
			if sd.Hashed {
				ev = append(ev, fmt.Sprintf("%s: setting %s: %v -> %v", r.Name, sd.Key, sd.From, sd.To))
			}
		}
		why := fmt.Sprintf("INDEX_HASH %s, the reference is %s", parity.ShortHex(vals[r.Name]), parity.ShortHex(ix.ref))
		if len(ev) > 0 {
			why += fmt.Sprintf(" (%d hashed settings differ)", len(ev))
		}
		var differing []int
		for k := range refLeaves {
			if k < len(rs.Scan.Leaves) && refLeaves[k] != rs.Scan.Leaves[k] {
				differing = append(differing, k)
			}
		}
		from := "baseline"
		if refScan != nil {
			from = refScan.Region.Name
		}
		det.addBucketMap(BucketMap{From: from, To: r.Name, Buckets: len(refLeaves), Differing: differing})
		switch {
		case refScan != nil:
			d, err := verifier.Diff(refScan.Region.Name, r.Name, refScan.Scan, rs.Scan, refScan.Spill, rs.Spill)
			if err != nil {
				ev = append(ev, fmt.Sprintf("%s: INDEX_HASH %s differs from %s (diff failed: %v)", r.Name, parity.ShortHex(vals[r.Name]), parity.ShortHex(ix.ref), err))
				break
			}
			ev = append(ev, diffItems(r.Name, d, o.MaxEvidence)...)
			why += fmt.Sprintf(": %d missing, %d extra, %d changed ids against %s", len(d.OnlyInFrom), len(d.OnlyInTo), len(d.Changed), refScan.Region.Name)
		case len(refLeaves) > 0:
			items, err := localise(rs, refLeaves, differing)
			if err != nil {
				ev = append(ev, fmt.Sprintf("%s: could not read its differing buckets back: %v", r.Name, err))
				break
			}
			ev = append(ev, capEvidence(r.Name, items, o.MaxEvidence, "buckets (the report draws every differing bucket)")...)
			why += fmt.Sprintf(": %d of %d Merkle buckets differ from the baseline's", len(differing), len(refLeaves))
		}
		res.fail(r.Name, why)
		c.Evidence = append(c.Evidence, ev...)
	}
	res.apply(&c)
	c.Figure = fmt.Sprintf("%d of %d regions equal the reference (INDEX_HASH %s)", len(ix.faithful), len(cfg.Regions), parity.ShortHex(ix.ref))
	var via []string
	for _, r := range out {
		if r.Region.Agent != nil {
			via = append(via, fmt.Sprintf("%s via agent %s", r.Region.Name, r.Region.Agent.URL))
		}
	}
	if len(via) > 0 {
		c.Figure += "; read through regional agents: " + strings.Join(via, ", ") + " (the others directly)"
	}
	return c, ix
}

// localise names, for each Merkle bucket where a region differs from the
// baseline's leaves, the counts on both sides and the ids the region holds
// there (read back from its spill): with no faithful region to diff
// against, these are the ids to look at.
func localise(rs *RegionScan, ref []parity.Leaf, differing []int) ([]string, error) {
	want := map[int]bool{}
	for _, b := range differing {
		want[b] = true
	}
	ids := map[int][]string{}
	if err := rs.Spill.ReadBuckets(want, func(r *verifier.SpillRecord) {
		ids[r.Bucket] = append(ids[r.Bucket], r.ID.S)
	}); err != nil {
		return nil, err
	}
	var items []string
	for _, b := range differing {
		got := rs.Scan.Leaves[b].Count
		sort.Strings(ids[b])
		what := "changed"
		switch {
		case got > ref[b].Count:
			what = fmt.Sprintf("%d extra", got-ref[b].Count)
		case got < ref[b].Count:
			what = fmt.Sprintf("%d missing", ref[b].Count-got)
		}
		s := fmt.Sprintf("bucket %d differs from the baseline (%s; baseline %d points, region %d)", b, what, ref[b].Count, got)
		if len(ids[b]) > 0 {
			s += ": ids " + strings.Join(ids[b], ", ")
		}
		items = append(items, s)
	}
	return items, nil
}

// diffItems is the evidence of a diff against a faithful region.
func diffItems(region string, d *verifier.DiffResult, max int) []string {
	var items []string
	for _, id := range d.OnlyInFrom {
		items = append(items, fmt.Sprintf("id %s missing (present in %s)", id, d.From))
	}
	for _, id := range d.OnlyInTo {
		items = append(items, fmt.Sprintf("id %s extra (absent from %s)", id, d.From))
	}
	for _, c := range d.Changed {
		items = append(items, fmt.Sprintf("id %s differs in %s", c.ID, strings.Join(c.Fields, ", ")))
	}
	return capEvidence(region, items, max, fmt.Sprintf("ids (run ragparity diff --from %s --to %s)", d.From, region))
}
