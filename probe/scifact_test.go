package probe_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/goldset"
	"github.com/ragparity/ragparity/probe"
)

func loadGold(t *testing.T) *goldset.Set {
	t.Helper()
	g, err := goldset.Load(scifactDir)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func check(t *testing.T, rep *probe.Report, name string) probe.Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("report has no check %q", name)
	return probe.Check{}
}

// countingSearcher counts the searches that reach a region.
type countingSearcher struct {
	adapters.Searcher
	n atomic.Int64
}

func (c *countingSearcher) Search(ctx context.Context, v []float32, k int, p adapters.SearchParams) ([]adapters.Hit, error) {
	c.n.Add(1)
	return c.Searcher.Search(ctx, v, k, p)
}

// TestIdenticalRegionsAcrossEngines: the same SciFact index in pgvector,
// Qdrant and the embedded store gives drift 0 on every question and the
// same λ state in every region on both seeds; each seed re-runs every
// search (the exact parity search and the serving search ANN health
// compares it with); each text is embedded once.
func TestIdenticalRegionsAcrossEngines(t *testing.T) {
	f := loadFixture(t)
	gold := loadGold(t)
	regions := f.regions(t, "pg", "qdrant", "embedded")
	counters := make([]*countingSearcher, len(regions))
	for i := range regions {
		counters[i] = &countingSearcher{Searcher: regions[i].Searcher}
		regions[i].Searcher = counters[i]
	}
	rep, err := probe.Run(t.Context(), regions, gold, f.emb, probe.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(rep.Questions), 60; got != want {
		t.Fatalf("questions = %d, want %d", got, want)
	}
	for _, q := range rep.Questions {
		if q.Drift != 0 {
			t.Errorf("question %s: drift %v, want 0 (ΔS %v / %v / %v)", q.ID, q.Drift,
				q.Regions[0].Runs[0].DeltaS, q.Regions[1].Runs[0].DeltaS, q.Regions[2].Runs[0].DeltaS)
		}
		want := q.Regions[0].Runs[0].Lambda
		for _, rr := range q.Regions {
			if got := len(rr.Runs); got != 2 {
				t.Fatalf("question %s region %s: %d runs, want 2 seeds", q.ID, rr.Region, got)
			}
			for _, run := range rr.Runs {
				if run.Lambda != want {
					t.Errorf("question %s: λ %s in %s seed %d, want %s as in %s seed 1", q.ID, run.Lambda, rr.Region, run.Seed, want, q.Regions[0].Region)
				}
				if got, want := strings.Join(run.TopK, " "), strings.Join(q.Regions[0].Runs[0].TopK, " "); got != want {
					t.Errorf("question %s: %s seed %d top-k differs from %s seed 1", q.ID, rr.Region, run.Seed, q.Regions[0].Region)
				}
			}
		}
	}
	for _, c := range []struct {
		name   string
		status probe.Status
		figure float64
	}{{probe.CheckDrift, probe.Pass, 0}, {probe.CheckLambdaAgreement, probe.Pass, 1}, {probe.CheckJaccard, probe.Pass, 1}, {probe.CheckKendall, probe.Pass, 1}} {
		got := check(t, rep, c.name)
		if got.Status != c.status || got.Figure != c.figure || len(got.Evidence) != 0 {
			t.Errorf("check %s = %s %v %v, want %s %v with no evidence", c.name, got.Status, got.Figure, got.Evidence, c.status, c.figure)
		}
	}
	for i, c := range counters {
		if got, want := c.n.Load(), int64(60*2*2); got != want {
			t.Errorf("region %s: %d searches, want %d (60 questions x 2 seeds x exact and serving)", regions[i].Name, got, want)
		}
	}
	// Each question embedded once for 3 regions x 2 seeds; each retrieved
	// text once: identical regions add nothing.
	e := rep.Embedding
	if e.QuestionTexts != 60 || e.QuestionNaive != 360 {
		t.Errorf("question texts embedded %d (naive %d), want 60 (naive 360)", e.QuestionTexts, e.QuestionNaive)
	}
	distinct := map[string]bool{}
	for _, q := range rep.Questions {
		for _, id := range q.Regions[0].Runs[0].TopK {
			distinct[id] = true
		}
	}
	if e.ChunkTexts > len(distinct) || e.ChunkNaive != 3*2*60*10 {
		t.Errorf("retrieved texts embedded %d (naive %d), want at most the %d distinct chunks one region returns (naive 3600)", e.ChunkTexts, e.ChunkNaive, len(distinct))
	}
	// The quality figures agree with what the subset is known to give
	// (testdata/scifact/README.md: brute-force recall@10 ~0.59 on whole
	// documents; chunks retrieve a little better).
	ss := rep.Summary[2].Seeds[0]
	if ss.Recall < 0.55 || ss.NDCG10 < 0.42 || ss.Coverage < 0.55 {
		t.Errorf("embedded region: recall@10 %.3f, nDCG@10 %.3f, coverage %.3f: want >= 0.55, 0.42, 0.55", ss.Recall, ss.NDCG10, ss.Coverage)
	}
	t.Logf("identical regions: recall@10 %.3f nDCG@10 %.3f MRR %.3f coverage %.3f mean ΔS %.3f; checks:", ss.Recall, ss.NDCG10, ss.MRR, ss.Coverage, ss.MeanDeltaS)
	for _, c := range rep.Checks {
		t.Logf("  %s %s %.4f %s %g (%d questions)", c.Status, c.Name, c.Figure, c.Op, c.Threshold, len(c.Evidence))
	}
}

// TestStaleTextFailsDrift: a region where 5 % of chunks hold stale text
// (stored vectors of the old text) retrieves the same ids (its vectors are
// unchanged), but ΔS re-embeds the retrieved text: the drift check fails
// and names exactly the questions whose top-1 chunk is stale.
func TestStaleTextFailsDrift(t *testing.T) {
	f := loadFixture(t)
	rep, err := probe.Run(t.Context(), f.regions(t, "embedded", "stale"), loadGold(t), f.emb, probe.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	c := check(t, rep, probe.CheckDrift)
	if c.Status != probe.Fail {
		t.Fatalf("drift check %s (figure %v), want fail", c.Status, c.Figure)
	}
	var want []string
	for _, q := range rep.Questions {
		if f.staleIDs[q.Regions[0].Runs[0].TopK[0]] {
			want = append(want, q.ID)
		}
		if q.Jaccard != 1 || q.Kendall != 1 {
			t.Errorf("question %s: Jaccard %v, Kendall %v: stale text left the vectors alone, the ids should agree", q.ID, q.Jaccard, q.Kendall)
		}
	}
	got := append([]string(nil), c.Evidence...)
	sort.Strings(got)
	sort.Strings(want)
	if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("drift evidence %v, want the questions whose top-1 chunk is stale %v", got, want)
	}
	for i := 1; i < len(c.Evidence); i++ {
		if driftOf(rep, c.Evidence[i]) > driftOf(rep, c.Evidence[i-1]) {
			t.Errorf("evidence not worst first: %v", c.Evidence)
		}
	}
	if rep.Passed() {
		t.Error("report passed")
	}
	t.Logf("%d stale chunks; drift max %.4f; questions revealing it: %v", len(f.staleIDs), rep.Drift.Max, c.Evidence)
}

func driftOf(rep *probe.Report, id string) float64 {
	for _, q := range rep.Questions {
		if q.ID == id {
			return q.Drift
		}
	}
	return -1
}

// TestDifferentAnalyzerFails: a region chunked with another analyzer fails
// the drift check, and its top-k ids warn.
func TestDifferentAnalyzerFails(t *testing.T) {
	f := loadFixture(t)
	rep, err := probe.Run(t.Context(), f.regions(t, "embedded", "analyzer"), loadGold(t), f.emb, probe.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	c := check(t, rep, probe.CheckDrift)
	if c.Status != probe.Fail || len(c.Evidence) == 0 || c.Figure <= 0.03 {
		t.Errorf("drift check = %s %v, evidence %v: want fail with evidence", c.Status, c.Figure, c.Evidence)
	}
	if j := check(t, rep, probe.CheckJaccard); j.Status != probe.Warn {
		t.Errorf("jaccard check %s %v, want warn (different chunks have different ids)", j.Status, j.Figure)
	}
	t.Logf("analyzer region: drift max %.4f (question %s), %d questions over 0.03", rep.Drift.Max, rep.Drift.Worst, len(c.Evidence))
}

// TestTooFewQuestions: a gold set below min_questions is refused with a
// message saying how to lower the bar; lowered, the run reports a
// bootstrap interval for the max drift.
func TestTooFewQuestions(t *testing.T) {
	f := loadFixture(t)
	small, err := loadGold(t).Sample(9, 7)
	if err != nil {
		t.Fatal(err)
	}
	regions := f.regions(t, "embedded", "stale")
	_, err = probe.Run(t.Context(), regions, small, f.emb, probe.Defaults())
	if !errors.Is(err, probe.ErrTooFewQuestions) || !strings.Contains(err.Error(), "has 9 questions, fewer than the 10") || !strings.Contains(err.Error(), "--min-questions") {
		t.Fatalf("9 questions: error %v, want ErrTooFewQuestions naming 9 < 10 and --min-questions", err)
	}
	cfg := probe.Defaults()
	cfg.MinQuestions = 5
	rep, err := probe.Run(t.Context(), regions, small, f.emb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ci := rep.Drift.CI
	if ci == nil || ci.Resamples != probe.BootstrapResamples || ci.Low > ci.High || ci.High > rep.Drift.Max || ci.Level != 0.95 {
		t.Fatalf("bootstrap CI = %+v with max %v: want a 95%% interval within the sample's max", ci, rep.Drift.Max)
	}
	again, _ := probe.Run(t.Context(), regions, small, f.emb, cfg)
	if *again.Drift.CI != *ci {
		t.Errorf("bootstrap not reproducible: %+v then %+v", ci, again.Drift.CI)
	}
	full, _ := probe.Run(t.Context(), regions, loadGold(t), f.emb, probe.Defaults())
	if full.Drift.CI != nil {
		t.Errorf("60 questions: CI %+v, want none (30 or more questions)", full.Drift.CI)
	}
}

// TestModelTagsRefused: regions declaring different embedding models are
// refused before any search, and so is an embedder other than theirs.
func TestModelTagsRefused(t *testing.T) {
	f := loadFixture(t)
	regions := f.regions(t, "embedded", "qdrant")
	counters := []*countingSearcher{{Searcher: regions[0].Searcher}, {Searcher: regions[1].Searcher}}
	regions[0].Searcher, regions[1].Searcher = counters[0], counters[1]
	regions[1].ModelTag = "openai:text-embedding-3-small"
	_, err := probe.Run(t.Context(), regions, loadGold(t), f.emb, probe.Defaults())
	if !errors.Is(err, probe.ErrModelMismatch) || !strings.Contains(err.Error(), "qdrant: openai:text-embedding-3-small") || !strings.Contains(err.Error(), "meaningless") {
		t.Errorf("different tags: error %v", err)
	}
	regions[0].ModelTag = "openai:text-embedding-3-small"
	_, err = probe.Run(t.Context(), regions, loadGold(t), f.emb, probe.Defaults())
	if !errors.Is(err, probe.ErrModelMismatch) || !strings.Contains(err.Error(), "probe's embedder") {
		t.Errorf("embedder other than the regions': error %v", err)
	}
	if n := counters[0].n.Load() + counters[1].n.Load(); n != 0 {
		t.Errorf("%d searches ran before the refusal, want 0", n)
	}
}

// TestParaphrasesPerSeed: each seed asks the variant VariantIndex picks,
// embeds each distinct variant once, and ΔS follows the variant.
func TestParaphrasesPerSeed(t *testing.T) {
	f := loadFixture(t)
	base := loadGold(t)
	gold := &goldset.Set{Source: "paraphrased", Format: "yaml"}
	for _, q := range base.Questions[:12] {
		q.Paraphrases = []string{"Is it true that " + strings.ToLower(q.Question), "Evidence: " + q.Question}
		gold.Questions = append(gold.Questions, q)
	}
	rep, err := probe.Run(t.Context(), f.regions(t, "embedded", "qdrant"), gold, f.emb, probe.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	used := map[string]bool{}
	for qi, q := range rep.Questions {
		for _, rr := range q.Regions {
			for _, run := range rr.Runs {
				if want := probe.VariantIndex(run.Seed, q.ID, 3); run.Variant != want {
					t.Errorf("question %s seed %d: variant %d, want %d", q.ID, run.Seed, run.Variant, want)
				}
				used[gold.Questions[qi].Variants()[run.Variant]] = true
			}
		}
		r := q.Regions[0].Runs
		if r[0].Variant != r[1].Variant {
			differ++
			if r[0].DeltaS == r[1].DeltaS {
				t.Errorf("question %s: seeds ask different variants but ΔS is the same %v", q.ID, r[0].DeltaS)
			}
		}
	}
	if differ == 0 {
		t.Error("the two seeds asked the same variant of every question")
	}
	if got, want := rep.Embedding.QuestionTexts, len(used); got != want {
		t.Errorf("question texts embedded %d, want the %d distinct variants asked", got, want)
	}
	if got := check(t, rep, probe.CheckDrift); got.Status != probe.Pass {
		t.Errorf("identical regions with paraphrases: drift %s %v", got.Status, got.Figure)
	}
}
