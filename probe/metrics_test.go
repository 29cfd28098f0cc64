package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/embed"
	_ "github.com/ragparity/ragparity/embed/hashembed"
	"github.com/ragparity/ragparity/goldset"
	"github.com/ragparity/ragparity/parity"
)

func TestZone(t *testing.T) {
	for _, c := range []struct {
		ds   float64
		want string
	}{{0, "stable"}, {0.3999, "stable"}, {0.40, "transitional"}, {0.5999, "transitional"}, {0.60, "risk"}, {0.8499, "risk"}, {0.85, "danger"}, {1, "danger"}} {
		if got := Zone(c.ds); got != c.want {
			t.Errorf("Zone(%v) = %s, want %s", c.ds, got, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name string
		traj []float64
		want Lambda
	}{
		{"Empty", nil, Divergent},
		{"OneStep", []float64{0.3}, Recursive},
		{"FallingSteadily", []float64{0.50, 0.48, 0.46, 0.44, 0.42}, Convergent},
		{"FallsEnoughExactly", []float64{0.50, 0.48}, Convergent},
		{"Flat", []float64{0.30, 0.305, 0.30, 0.302, 0.301}, Recursive},
		{"RisingSlowly", []float64{0.30, 0.32, 0.34, 0.36}, Divergent},
		{"OneJumpIsChaotic", []float64{0.30, 0.35, 0.20, 0.10}, Chaotic},
		{"JumpOfExactly004IsNotChaotic", []float64{0.25, 0.29, 0.20, 0.10}, Divergent},
		{"FallsButEresRises", []float64{0.50, 0.53, 0.40, 0.39}, Divergent},
		{"FallsTooLittle", []float64{0.50, 0.49, 0.485}, Recursive},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Classify(c.traj); got != c.want {
				t.Errorf("Classify(%v) = %s, want %s", c.traj, got, c.want)
			}
		})
	}
}

func TestTrajectory(t *testing.T) {
	e1 := []float32{1, 0, 0}
	e2 := []float32{0, 1, 0}
	got := Trajectory(e1, [][]float32{e1, e2, nil})
	want := []float64{0, 1 - 1/math.Sqrt2, 1 - 1/math.Sqrt2}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("Trajectory = %v, want %v", got, want)
		}
	}
	if got := Trajectory(e1, [][]float32{{-1, 0, 0}}); got[0] != 1 {
		t.Errorf("opposite vector: δ = %v, want 1 (clamped)", got[0])
	}
	if got := Trajectory(e1, [][]float32{nil}); got[0] != 1 {
		t.Errorf("no vector (empty text): δ = %v, want 1", got[0])
	}
}

func TestJaccardAndKendall(t *testing.T) {
	a := []string{"a", "b", "c", "d"}
	for _, c := range []struct {
		b             []string
		jaccard, tauN float64
	}{
		{[]string{"a", "b", "c", "d"}, 1, 1},
		{[]string{"d", "c", "b", "a"}, 1, -1},
		{[]string{"a", "b", "x", "y"}, 2.0 / 6, 1},
		{[]string{"b", "a", "x", "y"}, 2.0 / 6, -1},
		{[]string{"x", "y"}, 0, 0},
		{[]string{"a"}, 0.25, 0},
	} {
		if got := Jaccard(a, c.b); math.Abs(got-c.jaccard) > 1e-12 {
			t.Errorf("Jaccard(%v, %v) = %v, want %v", a, c.b, got, c.jaccard)
		}
		if got := KendallTop(a, c.b, 10); got != c.tauN {
			t.Errorf("KendallTop(%v, %v) = %v, want %v", a, c.b, got, c.tauN)
		}
	}
	if Jaccard(nil, nil) != 1 || KendallTop(nil, nil, 10) != 1 || KendallTop([]string{"a"}, []string{"a"}, 10) != 1 {
		t.Error("empty or single identical lists should agree fully")
	}
	// Only the first n entries count.
	if got := KendallTop([]string{"a", "b", "c"}, []string{"a", "b", "x", "c"}, 2); got != 1 {
		t.Errorf("top-2 tau = %v, want 1", got)
	}
}

func TestQuality(t *testing.T) {
	gold := map[string]bool{"docA": true, "chunk-7": true}
	// Two chunks of gold document A (ranks 2, 3), a chunk id gold at 5.
	ids := []string{"c1", "a1", "a2", "c2", "chunk-7"}
	srcs := []string{"docC", "docA", "docA", "docC", "docZ"}
	recall, ndcg, mrr, covered := quality(ids, srcs, gold, 10)
	// De-duplicated by document: docC, docA, chunk-7 at ranks 1, 2, 3.
	wantNDCG := (1/math.Log2(3) + 1/math.Log2(4)) / (1 + 1/math.Log2(3))
	if recall != 1 || mrr != 0.5 || !covered || math.Abs(ndcg-wantNDCG) > 1e-12 {
		t.Errorf("quality = recall %v, nDCG %v, MRR %v, covered %v; want 1, %v, 0.5, true", recall, ndcg, mrr, covered, wantNDCG)
	}
	recall, _, mrr, covered = quality([]string{"x"}, []string{""}, gold, 10)
	if recall != 0 || mrr != 0 || covered {
		t.Errorf("no gold hit: recall %v, MRR %v, covered %v", recall, mrr, covered)
	}
	// recall@k counts only the first k.
	recall, _, _, covered = quality(ids, srcs, gold, 2)
	if recall != 0.5 || !covered {
		t.Errorf("recall@2 = %v covered %v, want 0.5 true", recall, covered)
	}
}

func TestSourceID(t *testing.T) {
	for in, want := range map[string]string{
		`{"source_id":"d1","chunk":0}`: "d1", `{"source_id":42}`: "42", `{"other":1}`: "", ``: "", `{"source_id":null}`: "", `not json`: "",
	} {
		if got := sourceID([]byte(in)); got != want {
			t.Errorf("sourceID(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestVariantAndOrder(t *testing.T) {
	if VariantIndex(1, "q", 1) != 0 {
		t.Error("one variant: index not 0")
	}
	seen := map[int]bool{}
	for s := uint64(1); s <= 20; s++ {
		v := VariantIndex(s, "q", 3)
		if v != VariantIndex(s, "q", 3) || v < 0 || v > 2 {
			t.Fatalf("VariantIndex(%d) = %d: not deterministic or out of range", s, v)
		}
		seen[v] = true
	}
	if len(seen) != 3 {
		t.Errorf("20 seeds picked only variants %v", seen)
	}
	a, b := Order(1, 50), Order(2, 50)
	if fmt.Sprint(a) != fmt.Sprint(Order(1, 50)) || fmt.Sprint(a) == fmt.Sprint(b) {
		t.Errorf("Order not deterministic per seed, or equal across seeds")
	}
	hit := make([]bool, 50)
	for _, i := range a {
		hit[i] = true
	}
	for i, ok := range hit {
		if !ok {
			t.Fatalf("Order(1, 50) misses %d", i)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mod   func(*Config)
		field string
	}{
		{func(c *Config) { c.K = 0 }, "k"},
		{func(c *Config) { c.Seeds = 0 }, "seeds"},
		{func(c *Config) { c.EfSearch = 5 }, "ef_search"},
		{func(c *Config) { c.DriftMax = -0.1 }, "drift_max"},
		{func(c *Config) { c.CoverageMin = 1.5 }, "coverage_min"},
		{func(c *Config) { c.KendallWarn = -2 }, "kendall_warn"},
		{func(c *Config) { c.MinQuestions = 0 }, "min_questions"},
	} {
		cfg := Defaults()
		c.mod(&cfg)
		var ce *ConfigError
		if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("want a ConfigError on %s, got %v", c.field, err)
		}
	}
}

// fakeSearcher answers every search with the same hits.
type fakeSearcher struct {
	hits []adapters.Hit
	err  error
}

func (f fakeSearcher) Search(ctx context.Context, v []float32, k int, p adapters.SearchParams) ([]adapters.Hit, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.hits[:min(k, len(f.hits))], nil
}

func smallGold(n int) *goldset.Set {
	s := &goldset.Set{Source: "mem", Format: "jsonl"}
	for i := 0; i < n; i++ {
		s.Questions = append(s.Questions, goldset.Question{ID: fmt.Sprint("q", i), Question: fmt.Sprintf("question number %d about cells", i), GoldIDs: []string{"d1"}})
	}
	return s
}

func hashEmbedder(t *testing.T) embed.Embedder {
	e, err := embed.Open("hash")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestRunErrors(t *testing.T) {
	e := hashEmbedder(t)
	hits := []adapters.Hit{{ID: parity.ID{S: "c1"}, Score: 1, Text: "cells divide", HasText: true, Payload: []byte(`{"source_id":"d1"}`)}}
	ok := Region{Name: "a", Searcher: fakeSearcher{hits: hits}, ModelTag: e.ModelTag()}
	for _, c := range []struct {
		name    string
		regions []Region
		want    string
	}{
		{"SearchFails", []Region{ok, {Name: "b", Searcher: fakeSearcher{err: errors.New("connection refused")}, ModelTag: e.ModelTag()}}, "region b: question q"},
		{"NoText", []Region{ok, {Name: "b", Searcher: fakeSearcher{hits: []adapters.Hit{{ID: parity.ID{S: "c1"}, Score: 1}}}, ModelTag: e.ModelTag()}}, "hit c1 has no text"},
		{"DuplicateName", []Region{ok, ok}, "listed twice"},
		{"NoTag", []Region{ok, {Name: "b", Searcher: fakeSearcher{hits: hits}}}, "declares no embedding model tag"},
		{"NoRegions", nil, "no regions"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Run(t.Context(), c.regions, smallGold(10), e, Defaults())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestRunEmptyRegion: a region that returns nothing has ΔS 1 on every
// question: maximal drift, no coverage.
func TestRunEmptyRegion(t *testing.T) {
	e := hashEmbedder(t)
	hits := []adapters.Hit{
		{ID: parity.ID{S: "c1"}, Score: 0.9, Text: "question number about cells", HasText: true, Payload: []byte(`{"source_id":"d1"}`)},
		{ID: parity.ID{S: "c2"}, Score: 0.8, Text: "unrelated words entirely", HasText: true, Payload: []byte(`{"source_id":"d2"}`)},
	}
	rep, err := Run(t.Context(), []Region{
		{Name: "full", Searcher: fakeSearcher{hits: hits}, ModelTag: e.ModelTag()},
		{Name: "empty", Searcher: fakeSearcher{}, ModelTag: e.ModelTag()},
	}, smallGold(12), e, Defaults())
	if err != nil {
		t.Fatal(err)
	}
	q := rep.Questions[0]
	empty := q.Regions[1].Runs[0]
	if empty.DeltaS != 1 || empty.Zone != "danger" || empty.Covered || len(empty.TopK) != 0 {
		t.Errorf("empty region run = %+v", empty)
	}
	if q.Drift != 1-q.Regions[0].Runs[0].DeltaS || q.Jaccard != 0 {
		t.Errorf("drift %v, Jaccard %v; want 1 − ΔS(full) and 0", q.Drift, q.Jaccard)
	}
	if c := rep.Checks[0]; c.Name != CheckDrift || c.Status != Fail || len(c.Evidence) != 12 {
		t.Errorf("drift check %+v", c)
	}
	if rep.Summary[0].Seeds[0].Coverage != 1 || rep.Summary[1].Seeds[0].Coverage != 0 {
		t.Errorf("coverage full %v, empty %v; want 1 and 0", rep.Summary[0].Seeds[0].Coverage, rep.Summary[1].Seeds[0].Coverage)
	}
	if rep.Drift.CI == nil {
		t.Error("12 questions: no bootstrap interval")
	}
}

func TestBootstrapMax(t *testing.T) {
	x := []float64{0, 0.01, 0.02, 0.5}
	a, b := bootstrapMax(x), bootstrapMax(x)
	if *a != *b {
		t.Errorf("not reproducible: %+v vs %+v", a, b)
	}
	if a.Low < 0 || a.High != 0.5 || a.Low > a.High {
		t.Errorf("interval %+v: want within [0, 0.5] reaching 0.5", a)
	}
	// P(a resample of 4 misses 0.5) = (3/4)^4 ≈ 0.32 > 2.5 %: the low end is below the max.
	if a.Low >= 0.5 {
		t.Errorf("low end %v: resamples without the outlier are common", a.Low)
	}
}
