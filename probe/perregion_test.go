package probe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/probe"
)

func regionResult(t *testing.T, rep *probe.Report, name string) *probe.RegionResult {
	t.Helper()
	rr := rep.Region(name)
	if rr == nil {
		t.Fatalf("report has no per-region result for %s", name)
	}
	return rr
}

// TestPgvectorRegionsRebuiltSeparately: two pgvector regions rebuilt each
// on its own from the same corpus (two HNSW graphs) pass with the default
// thresholds: exact parity searches give drift exactly 0, the same λ state
// on every run, ANN health above the floor. The release floors the offline
// embedder misses are reported in each region's result and do not fail it.
func TestPgvectorRegionsRebuiltSeparately(t *testing.T) {
	f := loadFixture(t)
	rep, err := probe.RunWith(t.Context(), f.regions(t, "pg", "pg2"), loadGold(t), f.emb, probe.Defaults(), probe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Drift.Max != 0 {
		t.Errorf("cross-region drift max %v (question %s), want exactly 0", rep.Drift.Max, rep.Drift.Worst)
	}
	for _, name := range []string{"pg", "pg2"} {
		rr := regionResult(t, rep, name)
		if got, want := rr.Status, probe.Pass; got != want {
			t.Errorf("%s: status %s (%v), want %s", name, got, rr.Reasons, want)
		}
		if rr.Drift.Max != 0 || len(rr.Drift.Over) != 0 {
			t.Errorf("%s: drift max %v over %v, want exactly 0", name, rr.Drift.Max, rr.Drift.Over)
		}
		if rr.Lambda.Agreement != 1 || rr.Lambda.NewChaotic != 0 || rr.Lambda.Runs != 120 {
			t.Errorf("%s: λ agreement %v over %d runs, %d new chaotic: want 1 over 120, 0", name, rr.Lambda.Agreement, rr.Lambda.Runs, rr.Lambda.NewChaotic)
		}
		if rr.ANN.Mean < 0.90 || rr.ANN.Status != probe.Pass || rr.ANN.EfSearch != probe.DefaultEfSearch {
			t.Errorf("%s: ANN health %+v, want >= 0.90 at ef_search %d", name, rr.ANN, probe.DefaultEfSearch)
		}
		if rr.Compared != 60 {
			t.Errorf("%s: %d questions compared, want 60", name, rr.Compared)
		}
		if len(probe.MissedFloors(rr.Floors)) == 0 {
			t.Errorf("%s: the offline embedder meets every release floor (%+v): the test no longer shows floors are reported only", name, rr.Floors)
		}
		t.Logf("%s: ANN recall@10 mean %.3f min %.2f; release floors missed: %d", name, rr.ANN.Mean, rr.ANN.Min, len(probe.MissedFloors(rr.Floors)))
	}
	if !rep.Pass {
		t.Errorf("report did not pass: %v", rep.Failed())
	}
	// The serving (ANN) searches of the same two regions, for comparison.
	cfg := probe.Defaults()
	cfg.Search = probe.SearchANN
	ann, err := probe.RunWith(t.Context(), f.regions(t, "pg", "pg2"), loadGold(t), f.emb, cfg, probe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the same regions searched through their HNSW indexes (ef_search %d): drift max %.4f", cfg.EfSearch, ann.Drift.Max)
}

// TestDegradedIndexFailsANNHealth: a region holding the same rows whose
// HNSW graph was built with m=2, ef_construction=4 fails ANN health, and
// only that region (its parity figures are perfect: exact search reads
// the same rows); the reason names it and its recall.
func TestDegradedIndexFailsANNHealth(t *testing.T) {
	f := loadFixture(t)
	rep, err := probe.RunWith(t.Context(), f.regions(t, "pg", "pg2", "pgdeg"), loadGold(t), f.emb, probe.Defaults(), probe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deg := regionResult(t, rep, "pgdeg")
	if deg.Status != probe.Fail || deg.ANN.Status != probe.Fail || deg.ANN.Mean >= 0.90 {
		t.Fatalf("pgdeg: status %s, ANN %+v: want fail below 0.90", deg.Status, deg.ANN)
	}
	if deg.Drift.Max != 0 {
		t.Errorf("pgdeg: drift %v, want 0 (same rows, exact search)", deg.Drift.Max)
	}
	want := fmt.Sprintf("region pgdeg's serving search (ef_search 100, probes 0) has mean recall@10 %.3f", deg.ANN.Mean)
	if len(deg.Reasons) != 1 || !strings.Contains(deg.Reasons[0], want) {
		t.Errorf("pgdeg reasons %q, want one naming %q", deg.Reasons, want)
	}
	if len(deg.ANN.Worst) == 0 || deg.ANN.Worst[0].Recall != deg.ANN.Min {
		t.Errorf("pgdeg worst questions %+v, want the lowest recall %v first", deg.ANN.Worst, deg.ANN.Min)
	}
	for _, name := range []string{"pg", "pg2"} {
		if rr := regionResult(t, rep, name); rr.Status != probe.Pass {
			t.Errorf("%s: status %s %v: a degraded index elsewhere must not fail it", name, rr.Status, rr.Reasons)
		}
	}
	t.Logf("pgdeg: %s", deg.Reasons[0])
}

// TestSwappedTextsDrift: a region whose chunk texts were swapped behind
// their vectors (10 %) drifts above 0.03 against the reference group, and
// its result names exactly the questions whose top-1 chunk was swapped;
// the reference regions pass.
func TestSwappedTextsDrift(t *testing.T) {
	f := loadFixture(t)
	rep, err := probe.RunWith(t.Context(), f.regions(t, "pg", "pg2", "swap"), loadGold(t), f.emb, probe.Defaults(),
		probe.Options{Reference: []string{"pg", "pg2"}})
	if err != nil {
		t.Fatal(err)
	}
	sw := regionResult(t, rep, "swap")
	if sw.Status != probe.Fail || sw.Drift.Max <= 0.03 {
		t.Fatalf("swap: status %s drift %v, want fail above 0.03", sw.Status, sw.Drift.Max)
	}
	got := map[string]bool{}
	for _, o := range sw.Drift.Over {
		got[o.Question] = true
	}
	want := map[string]bool{}
	for _, q := range rep.Questions {
		for _, rr := range q.Regions {
			if rr.Region == "swap" {
				for _, run := range rr.Runs {
					if f.swapIDs[run.TopK[0]] {
						want[q.ID] = true
					}
				}
			}
		}
	}
	if len(want) == 0 || fmt.Sprint(sortedKeys(got)) != fmt.Sprint(sortedKeys(want)) {
		t.Errorf("swap: questions over the threshold %v, want those whose top-1 chunk was swapped %v", sortedKeys(got), sortedKeys(want))
	}
	if !strings.Contains(sw.Reasons[0], sw.Drift.Over[0].Question) {
		t.Errorf("swap: reason %q does not name the worst question %s", sw.Reasons[0], sw.Drift.Over[0].Question)
	}
	for _, name := range []string{"pg", "pg2"} {
		if rr := regionResult(t, rep, name); rr.Status != probe.Pass || rr.Drift.Max != 0 {
			t.Errorf("%s: status %s drift %v %v, want pass at 0", name, rr.Status, rr.Drift.Max, rr.Reasons)
		}
	}
	t.Logf("swap: %d of %d chunks swapped; %s", len(f.swapIDs), f.chunks, sw.Reasons[0])
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestBaselineComparesLoneRegion: a baseline recorded from one region
// round-trips through its stable JSON form byte for byte; a lone faithful
// region passes against it and a lone drifted region fails, each probed
// without any other region.
func TestBaselineComparesLoneRegion(t *testing.T) {
	f := loadFixture(t)
	gold := loadGold(t)
	rep, err := probe.RunWith(t.Context(), f.regions(t, "pg"), gold, f.emb, probe.Defaults(), probe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := probe.RecordBaseline(rep, "pg")
	if err != nil {
		t.Fatal(err)
	}
	js, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := probe.ParseBaseline(js)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Marshal()
	if !bytes.Equal(js, again) {
		t.Error("baseline JSON is not stable through a round trip")
	}
	if got, want := len(back.Questions), 60; got != want || back.K != 10 || back.ModelTag != f.emb.ModelTag() || len(back.Questions[0].Runs) != 2 {
		t.Errorf("baseline: %d questions, k %d, model %s, %d runs: want 60, 10, %s, 2", got, back.K, back.ModelTag, len(back.Questions[0].Runs), f.emb.ModelTag())
	}
	if _, err := probe.ParseBaseline(bytes.Replace(js, []byte(`"k": 10`), []byte(`"k": 10, "extra": 1`), 1)); err == nil {
		t.Error("a baseline with an unknown field was accepted")
	}
	ok, err := probe.RunWith(t.Context(), f.regions(t, "pg2"), gold, f.emb, probe.Defaults(), probe.Options{Baseline: back})
	if err != nil {
		t.Fatal(err)
	}
	if rr := regionResult(t, ok, "pg2"); rr.Status != probe.Pass || rr.Drift.Max != 0 || !strings.HasPrefix(rr.Reference, "baseline") {
		t.Errorf("pg2 against the baseline: %s drift %v (%s) %v, want pass at 0", rr.Status, rr.Drift.Max, rr.Reference, rr.Reasons)
	}
	bad, err := probe.RunWith(t.Context(), f.regions(t, "swap"), gold, f.emb, probe.Defaults(), probe.Options{Baseline: back})
	if err != nil {
		t.Fatal(err)
	}
	if rr := regionResult(t, bad, "swap"); rr.Status != probe.Fail || rr.Drift.Max <= 0.03 {
		t.Errorf("swap against the baseline: %s drift %v, want fail above 0.03", rr.Status, rr.Drift.Max)
	}
	cfg := probe.Defaults()
	cfg.K = 5
	if _, err := probe.RunWith(t.Context(), f.regions(t, "pg2"), gold, f.emb, cfg, probe.Options{Baseline: back}); err == nil || !strings.Contains(err.Error(), "k=10") {
		t.Errorf("a baseline recorded with k=10 used at k=5: error %v", err)
	}
}

// failingSearcher is an unreachable region.
type failingSearcher struct{}

func (failingSearcher) Search(context.Context, []float32, int, adapters.SearchParams) ([]adapters.Hit, error) {
	return nil, errors.New("dial tcp 10.0.0.9:5432: connection refused")
}

// TestUnreachableRegionIsItsOwn: a region whose searches fail is
// inconclusive with its error; the others are still probed and decided.
// Run, the all-or-nothing form, still returns the error.
func TestUnreachableRegionIsItsOwn(t *testing.T) {
	f := loadFixture(t)
	regions := f.regions(t, "pg", "pg2")
	regions = append(regions, probe.Region{Name: "down", Searcher: failingSearcher{}, ModelTag: f.emb.ModelTag()})
	rep, err := probe.RunWith(t.Context(), regions, loadGold(t), f.emb, probe.Defaults(), probe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	down := regionResult(t, rep, "down")
	if down.Status != probe.Inconclusive || !strings.Contains(down.Error, "connection refused") {
		t.Errorf("down: %s %q, want inconclusive with its error", down.Status, down.Error)
	}
	for _, name := range []string{"pg", "pg2"} {
		if rr := regionResult(t, rep, name); rr.Status != probe.Pass {
			t.Errorf("%s: %s %v, want pass whatever down did", name, rr.Status, rr.Reasons)
		}
	}
	if fmt.Sprint(rep.Regions) != "[pg pg2]" {
		t.Errorf("probed regions %v, want [pg pg2]", rep.Regions)
	}
	if _, err := probe.Run(t.Context(), regions, loadGold(t), f.emb, probe.Defaults()); err == nil || !strings.Contains(err.Error(), "region down") {
		t.Errorf("Run with an unreachable region: error %v, want one naming it", err)
	}
}

// TestLambdaThresholdsConfigurable: the chaotic-run allowance and the λ
// rule's chaos step change the release floor's outcome on the same runs.
func TestLambdaThresholdsConfigurable(t *testing.T) {
	f := loadFixture(t)
	gold := loadGold(t)
	floor := func(cfg probe.Config) probe.Floor {
		t.Helper()
		rep, err := probe.RunWith(t.Context(), f.regions(t, "pg"), gold, f.emb, cfg, probe.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := probe.RecordBaseline(rep, "pg")
		if err != nil {
			t.Fatal(err)
		}
		for _, fl := range probe.CheckReleaseFloors(b, cfg) {
			if fl.Name == probe.CheckLambdaChaotic {
				return fl
			}
		}
		t.Fatal("no chaotic floor")
		return probe.Floor{}
	}
	def := floor(probe.Defaults())
	if def.Met || def.Figure < 1 || len(def.Evidence) == 0 {
		t.Fatalf("default thresholds: chaotic floor %+v, want missed (the offline embedder gives chaotic runs on SciFact)", def)
	}
	allow := probe.Defaults()
	allow.ChaoticRunsMax = int(def.Figure)
	if got := floor(allow); !got.Met {
		t.Errorf("chaotic_runs_max %d: floor %+v, want met", allow.ChaoticRunsMax, got)
	}
	lax := probe.Defaults()
	lax.LambdaChaosStep = 1 // no step of ΔS can exceed 1
	if got := floor(lax); !got.Met || got.Figure != 0 {
		t.Errorf("lambda_chaos_step 1: floor %+v, want met with no chaotic run", got)
	}
	strict := probe.Defaults()
	strict.LambdaChaosStep = 0
	if got := floor(strict); got.Figure <= def.Figure {
		t.Errorf("lambda_chaos_step 0: %v chaotic runs, want more than the default's %v", got.Figure, def.Figure)
	}
}

// TestSkipANNHealth: without the ANN-health comparison each region is
// searched once per question and seed, and its ANN health is not measured
// (and decides nothing).
func TestSkipANNHealth(t *testing.T) {
	f := loadFixture(t)
	regions := f.regions(t, "pg")
	c := &countingSearcher{Searcher: regions[0].Searcher}
	regions[0].Searcher = c
	rep, err := probe.RunWith(t.Context(), regions, loadGold(t), f.emb, probe.Defaults(), probe.Options{SkipANNHealth: true})
	if err != nil {
		t.Fatal(err)
	}
	rr := regionResult(t, rep, "pg")
	if got, want := c.n.Load(), int64(60*2); got != want || rr.ANN.Status != "" || rr.Status != probe.Pass {
		t.Errorf("%d searches (want %d), ANN status %q (want none), region %s %v", got, want, rr.ANN.Status, rr.Status, rr.Reasons)
	}
}

// TestANNDriftLimit: with search: ann the drift threshold is
// ann_drift_max (headroom for two index builds answering differently);
// with exact search it is drift_max.
func TestANNDriftLimit(t *testing.T) {
	c := probe.Defaults()
	if c.DriftLimit() != 0.03 {
		t.Errorf("exact: limit %v, want drift_max 0.03", c.DriftLimit())
	}
	c.Search = probe.SearchANN
	if c.DriftLimit() != 0.10 {
		t.Errorf("ann: limit %v, want ann_drift_max 0.10", c.DriftLimit())
	}
	c.ANNDriftMax = 1.5
	if err := c.Validate(); err == nil {
		t.Errorf("ann_drift_max 1.5 accepted")
	}
}
