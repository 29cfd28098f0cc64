// Package probe asks every region the same gold questions and decides
// whether their retrieval agrees (metrics.md "ΔS", "ΔS drift across
// regions", "λ (lambda_observe) on two seeds"):
//
//   - ΔS(q, r) = 1 − cos(E(question), E(text of region r's top-1 hit)),
//     re-embedding the retrieved text (a stored vector is never trusted);
//   - drift(q) = max over regions of ΔS − min, gated on the worst question
//     over at least min_questions questions;
//   - per region: ΔS zones, recall@k / nDCG@10 / MRR against the gold ids,
//     and the quality floor (ΔS and coverage);
//   - across regions: Jaccard of the top-k ids, Kendall tau of the top-10
//     order (warnings);
//   - λ: the trajectory of ΔS between the question and the centroid of the
//     top-t texts, classified per run, on every seed;
//   - per region (RunWith, Report.PerRegion): drift and λ against a
//     reference (a reference group, or a recorded Baseline), and ANN health
//     (recall@10 of the region's serving search against its own exact
//     search); the release quality floors are reported there and checked
//     for a release by CheckReleaseFloors.
//
// Parity searches are exact (adapters.SearchParams.Exact) unless the
// config's search is ann, so identical content gives drift 0 exactly.
//
// Each seed picks a question variant (the question or a paraphrase) and an
// order of probes, and re-runs every search. Every distinct text (question
// variant, retrieved chunk) is embedded once per Run, whatever the number
// of regions and seeds.
package probe

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/embed"
	"github.com/ragparity/ragparity/goldset"
	"github.com/ragparity/ragparity/parity"
)

// Region is one region to probe.
type Region struct {
	Name     string
	Searcher adapters.Searcher
	// ModelTag is the embedding model tag the region's index declares.
	ModelTag string
}

// ErrModelMismatch is wrapped when regions declare different embedding
// model tags, or a tag other than the probe embedder's: ΔS across models
// is meaningless, so nothing is probed.
var ErrModelMismatch = errors.New("embedding model tags differ")

// ErrTooFewQuestions is wrapped when the gold set is smaller than
// min_questions.
var ErrTooFewQuestions = errors.New("too few gold questions")

// Status of a check (parity.Status, the project's one status type).
type Status = parity.Status

const (
	Pass = parity.Pass
	Fail = parity.Fail
	// Warn reports without failing (Jaccard, Kendall).
	Warn = parity.Warn
)

// Check is one probe check.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Figure is compared with Threshold by Op ("<=" or ">=").
	Figure    float64 `json:"figure"`
	Op        string  `json:"op"`
	Threshold float64 `json:"threshold"`
	Detail    string  `json:"detail"`
	// Evidence lists the questions that fail (or warn), worst first.
	Evidence []string `json:"evidence"`
}

// SeedRun is one probe: one question, one region, one seed.
type SeedRun struct {
	Seed uint64 `json:"seed"`
	// Variant is 0 for the question, i for its i-th paraphrase.
	Variant int     `json:"variant"`
	DeltaS  float64 `json:"delta_s"`
	Zone    string  `json:"zone"`
	// TopK are the hit ids, best first, and Scores their scores.
	TopK   []string  `json:"top_k"`
	Scores []float64 `json:"scores"`
	Recall float64   `json:"recall"`
	NDCG10 float64   `json:"ndcg_at_10"`
	MRR    float64   `json:"mrr"`
	// Covered: a gold id is in the top k.
	Covered    bool      `json:"covered"`
	Lambda     Lambda    `json:"lambda"`
	Trajectory []float64 `json:"trajectory"`
	// AnchorDeltaS is ΔS between the gold set's anchor text and the top-1
	// text, when the question has an anchor (reported, not gated).
	AnchorDeltaS *float64 `json:"anchor_delta_s,omitempty"`
}

// RegionRuns are one region's runs of one question, one per seed.
type RegionRuns struct {
	Region string    `json:"region"`
	Runs   []SeedRun `json:"runs"`
}

// QuestionResult is everything about one gold question.
type QuestionResult struct {
	ID       string   `json:"id"`
	Question string   `json:"question"`
	GoldIDs  []string `json:"gold_ids"`
	// Drift is max over seeds of (max − min over regions of ΔS), and
	// DriftSeed the seed where it was largest.
	Drift     float64 `json:"drift"`
	DriftSeed uint64  `json:"drift_seed"`
	// Jaccard and Kendall are the smallest over region pairs and seeds.
	Jaccard float64 `json:"jaccard"`
	Kendall float64 `json:"kendall"`
	// LambdaAgree: every region and seed gave the same λ state.
	LambdaAgree bool         `json:"lambda_agree"`
	Regions     []RegionRuns `json:"regions"`
}

// SeedSummary is one region's figures on one seed.
type SeedSummary struct {
	Seed            uint64         `json:"seed"`
	MeanDeltaS      float64        `json:"mean_delta_s"`
	MaxDeltaS       float64        `json:"max_delta_s"`
	Coverage        float64        `json:"coverage"`
	Recall          float64        `json:"recall"`
	NDCG10          float64        `json:"ndcg_at_10"`
	MRR             float64        `json:"mrr"`
	Zones           map[string]int `json:"zones"`
	Lambda          map[Lambda]int `json:"lambda"`
	ConvergentShare float64        `json:"convergent_share"`
}

// RegionSummary sums up one region.
type RegionSummary struct {
	Region   string        `json:"region"`
	ModelTag string        `json:"model_tag"`
	Seeds    []SeedSummary `json:"seeds"`
}

// DriftSummary sums up drift over the gold set.
type DriftSummary struct {
	Questions int     `json:"questions"`
	Max       float64 `json:"max"`
	Worst     string  `json:"worst"`
	Median    float64 `json:"median"`
	P90       float64 `json:"p90"`
	// CI is the bootstrap interval of the max, given when the gold set has
	// fewer than 30 questions.
	CI *Interval `json:"ci,omitempty"`
}

// EmbedStats counts the texts the probe had embedded, against the naive
// count (every region, question and seed embedding its own).
type EmbedStats struct {
	QuestionTexts int   `json:"question_texts"`
	QuestionNaive int   `json:"question_naive"`
	ChunkTexts    int   `json:"chunk_texts"`
	ChunkNaive    int   `json:"chunk_naive"`
	AnchorTexts   int   `json:"anchor_texts"`
	Calls         int64 `json:"calls"`
}

// Rules are the fixed parts of metrics.md's definitions, printed with
// every report.
type Rules struct {
	Zones     map[string]float64 `json:"zones"`
	Lambda    map[string]float64 `json:"lambda"`
	Bootstrap map[string]float64 `json:"bootstrap"`
}

// GoldInfo identifies the gold set.
type GoldInfo struct {
	Source    string `json:"source"`
	Format    string `json:"format"`
	Questions int    `json:"questions"`
	Digest    string `json:"digest"`
}

// Report is a probe run's result.
type Report struct {
	Config    Config           `json:"config"`
	Rules     Rules            `json:"rules"`
	ModelTag  string           `json:"model_tag"`
	Gold      GoldInfo         `json:"goldset"`
	Regions   []string         `json:"regions"`
	Seeds     []uint64         `json:"seeds"`
	Questions []QuestionResult `json:"questions"`
	Summary   []RegionSummary  `json:"region_summary"`
	Drift     DriftSummary     `json:"drift"`
	Checks    []Check          `json:"checks"`
	Embedding EmbedStats       `json:"embedding"`
	// PerRegion decides each region on its own against the reference
	// (RunWith's Options), in the order the regions were given.
	PerRegion []RegionResult `json:"per_region"`
	// Pass: no check failed and every region passed.
	Pass      bool  `json:"passed"`
	SearchMS  int64 `json:"search_ms"`
	ElapsedMS int64 `json:"elapsed_ms"`
}

// Passed reports whether no check failed (warnings do not fail).
func (r *Report) Passed() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return false
		}
	}
	return true
}

// Failed returns the failing checks.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

// VariantIndex is the question variant seed picks for a question with n
// variants: SHA-256(seed as 8 big-endian bytes || id) mod n.
func VariantIndex(seed uint64, id string, n int) int {
	if n <= 1 {
		return 0
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	h := sha256.Sum256(append(b[:], id...))
	return int(binary.BigEndian.Uint64(h[:8]) % uint64(n))
}

// Order is the order seed probes n questions in (a permutation of 0..n-1).
func Order(seed uint64, n int) []int {
	return rand.New(rand.NewPCG(seed, 0x6f72646572)).Perm(n)
}

// checkRegions refuses what cannot be probed: no regions, duplicate or
// empty names, no searcher, and model tags that differ between regions or
// from the embedder's.
func checkRegions(regions []Region, emb embed.Embedder) (string, error) {
	if len(regions) == 0 {
		return "", errors.New("probe: no regions")
	}
	seen := map[string]bool{}
	tags := map[string][]string{}
	for _, r := range regions {
		if r.Name == "" {
			return "", errors.New("probe: a region has no name")
		}
		if seen[r.Name] {
			return "", fmt.Errorf("probe: region %s listed twice", r.Name)
		}
		seen[r.Name] = true
		if r.Searcher == nil {
			return "", fmt.Errorf("probe: region %s: its store cannot search", r.Name)
		}
		if r.ModelTag == "" {
			return "", fmt.Errorf("probe: region %s declares no embedding model tag (settings.model_tag, or the config's embedder): %w", r.Name, ErrModelMismatch)
		}
		tags[r.ModelTag] = append(tags[r.ModelTag], r.Name)
	}
	if len(tags) > 1 {
		var parts []string
		for t, names := range tags {
			parts = append(parts, fmt.Sprintf("%s: %s", strings.Join(names, ", "), t))
		}
		sort.Strings(parts)
		return "", fmt.Errorf("probe: refused before any probe ran: regions declare different embedding model tags (%s); ΔS compared across models is meaningless: %w", strings.Join(parts, "; "), ErrModelMismatch)
	}
	tag := regions[0].ModelTag
	if emb.ModelTag() != tag {
		return "", fmt.Errorf("probe: refused before any probe ran: the regions declare model tag %q but the probe's embedder is %q: %w", tag, emb.ModelTag(), ErrModelMismatch)
	}
	return tag, nil
}

// vectors embeds texts once each and remembers them for the Run.
type vectors struct {
	emb  embed.Embedder
	mu   sync.Mutex
	vecs map[string][]float32
}

const embedBatch = 256

// ensure embeds the texts not seen yet (empty texts get no vector) and
// returns how many it embedded.
func (v *vectors) ensure(ctx context.Context, texts []string) (int, error) {
	v.mu.Lock()
	var todo []string
	seen := map[string]bool{}
	for _, t := range texts {
		if _, ok := v.vecs[t]; !ok && !seen[t] && strings.TrimSpace(t) != "" {
			seen[t] = true
			todo = append(todo, t)
		}
	}
	v.mu.Unlock()
	sort.Strings(todo)
	for i := 0; i < len(todo); i += embedBatch {
		batch := todo[i:min(i+embedBatch, len(todo))]
		out, err := v.emb.Embed(ctx, batch)
		if err != nil {
			return 0, fmt.Errorf("probe: embed: %w", err)
		}
		if len(out) != len(batch) {
			return 0, fmt.Errorf("probe: embed: %d vectors for %d texts", len(out), len(batch))
		}
		v.mu.Lock()
		for j, t := range batch {
			v.vecs[t] = out[j]
		}
		v.mu.Unlock()
	}
	return len(todo), nil
}

func (v *vectors) get(t string) []float32 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.vecs[t]
}

// hitRec is what Run keeps of a hit.
type hitRec struct {
	id, sourceID, text string
	score              float64
}

// sourceID reads a payload's "source_id" (a string or a number).
func sourceID(payload []byte) string {
	if len(payload) == 0 {
		return ""
	}
	var p struct {
		SourceID json.RawMessage `json:"source_id"`
	}
	if json.Unmarshal(payload, &p) != nil || len(p.SourceID) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(p.SourceID, &s) == nil {
		return s
	}
	if p.SourceID[0] >= '0' && p.SourceID[0] <= '9' || p.SourceID[0] == '-' {
		return string(p.SourceID)
	}
	return ""
}

// Run probes every region with the gold set, on cfg.Seeds seeds, and
// judges the results against the reference group of every region. It
// returns an error (and no report) when it could not run: bad config, too
// few questions, regions that declare different embedding models, a search
// or embedding failure in any region. RunWith is the per-region form: a
// region that fails is reported as such and the others still get results.
func Run(ctx context.Context, regions []Region, gold *goldset.Set, emb embed.Embedder, cfg Config) (*Report, error) {
	rep, err := RunWith(ctx, regions, gold, emb, cfg, Options{})
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, rr := range rep.PerRegion {
		if rr.err != nil {
			errs = append(errs, rr.err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rep, nil
}

// Options choose what RunWith compares each region with.
type Options struct {
	// Reference names the regions of the reference group (in order of
	// preference); empty: every region. For each question and seed the
	// reference run is the group's reachable member run with the median ΔS
	// (the lower median for an even count), so one deviating member of a
	// group of three or more does not move the reference.
	Reference []string
	// Baseline, when set, is the reference instead of any region: a lone
	// region is compared with what the release recorded. Reference must
	// then be empty.
	Baseline *Baseline
	// SkipANNHealth runs only the parity searches: no serving-vs-exact
	// comparison (each region's ANN health is then reported as not
	// measured, status "", and decides nothing). For timing the parity
	// probe alone, or where a second search per question is too costly.
	SkipANNHealth bool
}

// regionHits is what one region's searches returned.
type regionHits struct {
	parity [][][]hitRec // [seed][question]: the parity searches
	// recall [seed][question]: recall@10 of the serving search against the
	// exact one (ANN health).
	recall [][]float64
	err    error
}

// ANNK is the depth of the ANN-health recall (recall@10).
const ANNK = 10

// searchRegion runs one region's probes: per seed, in the seed's order,
// the parity search (exact unless cfg.Search is ann) and, for ANN health,
// the serving search compared with the exact one.
func searchRegion(ctx context.Context, r Region, qs []goldset.Question, seeds []uint64, variant [][]int, vs *vectors, cfg Config, health bool) regionHits {
	nq := len(qs)
	out := regionHits{parity: make([][][]hitRec, len(seeds)), recall: make([][]float64, len(seeds))}
	serving := adapters.SearchParams{EfSearch: cfg.EfSearch, Probes: cfg.Probes}
	exact := adapters.SearchParams{Exact: true}
	fail := func(q *goldset.Question, seed uint64, what string, err error) regionHits {
		out.err = fmt.Errorf("probe: region %s: question %s (seed %d): %s: %w", r.Name, q.ID, seed, what, err)
		return out
	}
	for si, seed := range seeds {
		out.parity[si] = make([][]hitRec, nq)
		out.recall[si] = make([]float64, nq)
		for _, qi := range Order(seed, nq) {
			q := &qs[qi]
			qv := vs.get(q.Variants()[variant[si][qi]])
			pp := serving
			if cfg.exact() {
				pp = exact
			}
			got, err := r.Searcher.Search(ctx, qv, max(cfg.K, ANNK), pp)
			if err != nil {
				return fail(q, seed, "search", err)
			}
			recs := make([]hitRec, 0, min(len(got), cfg.K))
			for i, h := range got {
				if i >= cfg.K {
					break
				}
				if !h.HasText {
					out.err = fmt.Errorf("probe: region %s: hit %s has no text: ΔS re-embeds the retrieved text, so the region's URL must name its text field (text=...)", r.Name, h.ID.S)
					return out
				}
				recs = append(recs, hitRec{id: h.ID.S, sourceID: sourceID(h.Payload), text: h.Text, score: h.Score})
			}
			out.parity[si][qi] = recs
			if !health {
				continue
			}
			// ANN health: the serving search against the exact one.
			var exactHits, servingHits []adapters.Hit
			if cfg.exact() {
				exactHits = got
				if servingHits, err = r.Searcher.Search(ctx, qv, ANNK, serving); err != nil {
					return fail(q, seed, "serving search", err)
				}
			} else {
				servingHits = got
				if exactHits, err = r.Searcher.Search(ctx, qv, ANNK, exact); err != nil {
					return fail(q, seed, "exact search", err)
				}
			}
			out.recall[si][qi] = recallAt(servingHits, exactHits, ANNK)
		}
	}
	return out
}

// recallAt is |serving ∩ exact| / |exact| over the first k of each (1 when
// the exact search found nothing).
func recallAt(serving, exact []adapters.Hit, k int) float64 {
	exact = exact[:min(k, len(exact))]
	serving = serving[:min(k, len(serving))]
	if len(exact) == 0 {
		return 1
	}
	in := map[string]bool{}
	for _, h := range exact {
		in[h.ID.S] = true
	}
	n := 0
	for _, h := range serving {
		if in[h.ID.S] {
			n++
		}
	}
	return float64(n) / float64(len(exact))
}

// RunWith probes every region with the gold set, on cfg.Seeds seeds, and
// judges each region on its own against the reference opts names (the
// reference group, or a recorded Baseline): Report.PerRegion. A region
// whose searches fail is reported with its error (inconclusive) and left
// out of the cross-region figures; the others still get results. RunWith
// returns an error only when nothing could be probed (bad config, too few
// questions, model tags that differ, a baseline recorded with other
// parameters, an embedding failure).
func RunWith(ctx context.Context, regions []Region, gold *goldset.Set, emb embed.Embedder, cfg Config, opts Options) (*Report, error) {
	start := time.Now()
	if cfg.Search == "" {
		cfg.Search = SearchExact
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if gold == nil || len(gold.Questions) == 0 {
		return nil, errors.New("probe: empty gold set")
	}
	if n := len(gold.Questions); n < cfg.MinQuestions {
		return nil, fmt.Errorf("probe: the gold set %s has %d questions, fewer than the %d the drift gate needs (min_questions); add questions, or lower the bar with --min-questions (probe.min_questions): %w",
			gold.Source, n, cfg.MinQuestions, ErrTooFewQuestions)
	}
	tag, err := checkRegions(regions, emb)
	if err != nil {
		return nil, err
	}
	if err := checkOptions(opts, regions, tag, cfg); err != nil {
		return nil, err
	}
	counter := embed.NewCounting(emb)
	vs := &vectors{emb: counter, vecs: map[string][]float32{}}
	rep := &Report{Config: cfg, Rules: rules(cfg), ModelTag: tag,
		Gold: GoldInfo{Source: gold.Source, Format: gold.Format, Questions: len(gold.Questions), Digest: gold.Digest()}}
	for s := 1; s <= cfg.Seeds; s++ {
		rep.Seeds = append(rep.Seeds, uint64(s))
	}
	qs := gold.Questions
	nq, ns := len(qs), len(rep.Seeds)

	// Question variants (and anchors): each distinct text embedded once.
	variant := make([][]int, ns) // [seed][question]
	var texts []string
	for si, seed := range rep.Seeds {
		variant[si] = make([]int, nq)
		for qi := range qs {
			vars := qs[qi].Variants()
			variant[si][qi] = VariantIndex(seed, qs[qi].ID, len(vars))
			texts = append(texts, vars[variant[si][qi]])
		}
	}
	if rep.Embedding.QuestionTexts, err = vs.ensure(ctx, texts); err != nil {
		return nil, err
	}
	var anchors []string
	for _, q := range qs {
		if q.Anchor != "" {
			anchors = append(anchors, q.Anchor)
		}
	}
	if rep.Embedding.AnchorTexts, err = vs.ensure(ctx, anchors); err != nil {
		return nil, err
	}

	// Search: regions concurrently, each seed in its own order. A region
	// that fails stops only its own searches.
	all := make([]regionHits, len(regions))
	searchStart := time.Now()
	var wg sync.WaitGroup
	for ri := range regions {
		wg.Add(1)
		go func(ri int) {
			defer wg.Done()
			all[ri] = searchRegion(ctx, regions[ri], qs, rep.Seeds, variant, vs, cfg, !opts.SkipANNHealth)
		}(ri)
	}
	wg.Wait()
	rep.SearchMS = time.Since(searchStart).Milliseconds()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	var live []Region
	var hits [][][][]hitRec // [live region][seed][question]
	for ri, r := range regions {
		if all[ri].err == nil {
			live = append(live, r)
			hits = append(hits, all[ri].parity)
			rep.Regions = append(rep.Regions, r.Name)
		}
	}
	nr := len(live)
	rep.Embedding.QuestionNaive = nr * nq * ns

	// Retrieved texts: each distinct text embedded once for all regions
	// and seeds.
	texts = texts[:0]
	for ri := range hits {
		for si := range hits[ri] {
			for qi := range hits[ri][si] {
				for _, h := range hits[ri][si][qi] {
					texts = append(texts, h.text)
					rep.Embedding.ChunkNaive++
				}
			}
		}
	}
	if rep.Embedding.ChunkTexts, err = vs.ensure(ctx, texts); err != nil {
		return nil, err
	}
	rep.Embedding.Calls = counter.Calls()

	// Per run, per question, per region.
	rule := cfg.LambdaRule()
	rep.Questions = make([]QuestionResult, nq)
	for qi := range qs {
		q := &qs[qi]
		gold := map[string]bool{}
		for _, g := range q.GoldIDs {
			gold[g] = true
		}
		qr := QuestionResult{ID: q.ID, Question: q.Question, GoldIDs: q.GoldIDs, Jaccard: 1, Kendall: 1, LambdaAgree: true, Regions: []RegionRuns{}}
		for ri, r := range live {
			rr := RegionRuns{Region: r.Name}
			for si, seed := range rep.Seeds {
				rr.Runs = append(rr.Runs, makeRun(q, seed, variant[si][qi], hits[ri][si][qi], vs, gold, cfg.K, rule))
			}
			qr.Regions = append(qr.Regions, rr)
		}
		for si, seed := range rep.Seeds {
			if nr == 0 {
				break
			}
			first := qr.Regions[0].Runs[0].Lambda
			lo, hi := 2.0, -1.0
			for ri := range live {
				run := &qr.Regions[ri].Runs[si]
				lo, hi = min(lo, run.DeltaS), max(hi, run.DeltaS)
				if run.Lambda != first {
					qr.LambdaAgree = false
				}
				for rj := ri + 1; rj < nr; rj++ {
					other := &qr.Regions[rj].Runs[si]
					qr.Jaccard = min(qr.Jaccard, Jaccard(run.TopK, other.TopK))
					qr.Kendall = min(qr.Kendall, KendallTop(run.TopK, other.TopK, 10))
				}
			}
			if d := hi - lo; d > qr.Drift || si == 0 {
				qr.Drift, qr.DriftSeed = d, seed
			}
		}
		rep.Questions[qi] = qr
	}
	if nr > 0 {
		rep.summarise(live)
		rep.judge()
	} else {
		rep.Checks = append(rep.Checks, Check{Name: CheckRegions, Status: Fail, Op: ">=", Threshold: 1,
			Detail: "no region could be probed (see per_region)", Evidence: []string{}})
	}
	if opts.SkipANNHealth {
		for ri := range all {
			all[ri].recall = nil
		}
	}
	rep.perRegion(regions, all, opts)
	rep.Pass = rep.Passed()
	for _, rr := range rep.PerRegion {
		if rr.Status != Pass {
			rep.Pass = false
		}
	}
	rep.ElapsedMS = time.Since(start).Milliseconds()
	return rep, nil
}

func makeRun(q *goldset.Question, seed uint64, variant int, hs []hitRec, vs *vectors, gold map[string]bool, k int, rule LambdaRule) SeedRun {
	run := SeedRun{Seed: seed, Variant: variant, TopK: []string{}, Scores: []float64{}, Trajectory: []float64{}}
	qv := vs.get(q.Variants()[variant])
	tvs := make([][]float32, len(hs))
	ids := make([]string, len(hs))
	srcs := make([]string, len(hs))
	for i, h := range hs {
		tvs[i] = vs.get(h.text)
		ids[i], srcs[i] = h.id, h.sourceID
		run.TopK = append(run.TopK, h.id)
		run.Scores = append(run.Scores, h.score)
	}
	if traj := Trajectory(qv, tvs); traj != nil {
		run.Trajectory = traj
	}
	run.DeltaS = 1
	if len(run.Trajectory) > 0 {
		run.DeltaS = run.Trajectory[0]
	}
	run.Zone = Zone(run.DeltaS)
	run.Lambda = rule.Classify(run.Trajectory)
	run.Recall, run.NDCG10, run.MRR, run.Covered = quality(ids, srcs, gold, k)
	if q.Anchor != "" {
		a := 1.0
		if len(tvs) > 0 && tvs[0] != nil {
			top := make([]float64, len(tvs[0]))
			for i, x := range tvs[0] {
				top[i] = float64(x)
			}
			a = deltaS(vs.get(q.Anchor), top)
		}
		run.AnchorDeltaS = &a
	}
	return run
}

func rules(c Config) Rules {
	return Rules{
		Zones: map[string]float64{"transitional": ZoneTransitional, "risk": ZoneRisk, "danger": ZoneDanger},
		Lambda: map[string]float64{"chaos_step": c.LambdaChaosStep, "net_move": c.LambdaNetMove,
			"eres_rise": c.LambdaEresRise, "eres_flat": c.LambdaEresFlat, "window": float64(c.LambdaWindow)},
		Bootstrap: map[string]float64{"below_questions": 30, "resamples": BootstrapResamples, "level": BootstrapLevel, "seed": BootstrapSeed},
	}
}

func (rep *Report) summarise(regions []Region) {
	nq := float64(len(rep.Questions))
	for ri, r := range regions {
		rs := RegionSummary{Region: r.Name, ModelTag: r.ModelTag}
		for si, seed := range rep.Seeds {
			ss := SeedSummary{Seed: seed, Zones: map[string]int{}, Lambda: map[Lambda]int{}}
			for _, z := range []string{"stable", "transitional", "risk", "danger"} {
				ss.Zones[z] = 0
			}
			for _, l := range []Lambda{Convergent, Recursive, Divergent, Chaotic} {
				ss.Lambda[l] = 0
			}
			for qi := range rep.Questions {
				run := &rep.Questions[qi].Regions[ri].Runs[si]
				ss.MeanDeltaS += run.DeltaS
				ss.MaxDeltaS = max(ss.MaxDeltaS, run.DeltaS)
				ss.Recall += run.Recall
				ss.NDCG10 += run.NDCG10
				ss.MRR += run.MRR
				if run.Covered {
					ss.Coverage++
				}
				ss.Zones[run.Zone]++
				ss.Lambda[run.Lambda]++
			}
			ss.MeanDeltaS /= nq
			ss.Recall /= nq
			ss.NDCG10 /= nq
			ss.MRR /= nq
			ss.Coverage /= nq
			ss.ConvergentShare = float64(ss.Lambda[Convergent]) / nq
			rs.Seeds = append(rs.Seeds, ss)
		}
		rep.Summary = append(rep.Summary, rs)
	}
	drifts := make([]float64, len(rep.Questions))
	d := &rep.Drift
	d.Questions = len(rep.Questions)
	for i, q := range rep.Questions {
		drifts[i] = q.Drift
		if i == 0 || q.Drift > d.Max {
			d.Max, d.Worst = q.Drift, q.ID
		}
	}
	d.Median = quantile(0.5, drifts)
	d.P90 = quantile(0.9, drifts)
	if len(drifts) < 30 {
		d.CI = bootstrapMax(drifts)
	}
}
