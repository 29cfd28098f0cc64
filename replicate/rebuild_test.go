package replicate_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/ragparity/ragparity/adapters"
	_ "github.com/ragparity/ragparity/adapters/embedded"
	_ "github.com/ragparity/ragparity/adapters/pgvector"
	_ "github.com/ragparity/ragparity/adapters/qdrant"
	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
	"github.com/ragparity/ragparity/embed"
	_ "github.com/ragparity/ragparity/embed/hashembed"
	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/replicate"
	"github.com/ragparity/ragparity/verifier"
)

// countingStore counts the points that reach the store through every
// stage it hands out.
type countingStore struct {
	adapters.VectorStore
	writes *atomic.Int64
}

type countingStager struct {
	adapters.VectorStore
	writes *atomic.Int64
}

func (c countingStager) Stage(ctx context.Context, name string, spec adapters.CollectionSpec) (adapters.VectorStore, error) {
	s, err := c.VectorStore.(adapters.Stager).Stage(ctx, name, spec)
	if err != nil {
		return nil, err
	}
	return countingStore{s, c.writes}, nil
}
func (c countingStager) Promote(ctx context.Context, name string) error {
	return c.VectorStore.(adapters.Stager).Promote(ctx, name)
}
func (c countingStager) DropStage(ctx context.Context, name string) error {
	return c.VectorStore.(adapters.Stager).DropStage(ctx, name)
}

// Seal forwards to stores that build their index after the load
// (pgvector), so the stage hashes as it will once promoted.
func (c countingStager) Seal(ctx context.Context, name string) error {
	if s, ok := c.VectorStore.(adapters.Sealer); ok {
		return s.Seal(ctx, name)
	}
	return nil
}

func (c countingStager) KeepsContent() error {
	if k, ok := c.VectorStore.(adapters.ContentKeeper); ok {
		return k.KeepsContent()
	}
	return nil
}

func (c countingStager) Stages(ctx context.Context) ([]adapters.StageInfo, error) {
	return c.VectorStore.(adapters.StageLister).Stages(ctx)
}

func (c countingStore) Upsert(ctx context.Context, pts []parity.Point) error {
	if err := c.VectorStore.Upsert(ctx, pts); err != nil {
		return err
	}
	c.writes.Add(int64(len(pts)))
	return nil
}

func corpus(t *testing.T, n int) replicate.Source {
	dir := t.TempDir()
	var b strings.Builder
	r := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("vector index region replica failover shard chunk embedding parity drift router gate blob manifest hash merkle bucket payload text query answer")
	for i := 0; i < n; i++ {
		var doc []string
		for j := 0; j < 30+r.IntN(120); j++ {
			doc = append(doc, words[r.IntN(len(words))])
		}
		fmt.Fprintf(&b, "{\"_id\":\"doc%d\",\"title\":\"Document %d\",\"text\":%q}\n", i, i, strings.Join(doc, " "))
	}
	p := filepath.Join(dir, "corpus.jsonl")
	os.WriteFile(p, []byte(b.String()), 0o644)
	s, err := replicate.OpenSource(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type region struct {
	name   string
	url    string
	writes *atomic.Int64
}

func embeddedRegions(t *testing.T, names ...string) []region {
	var out []region
	for _, n := range names {
		out = append(out, region{name: n, url: fmt.Sprintf("embedded://%s?collection=chunks", t.TempDir()), writes: &atomic.Int64{}})
	}
	return out
}

var analyzer = replicate.Analyzer{ChunkSize: 24, Overlap: 4, Normalize: "NFKC"}

func targets(t *testing.T, regs []region, fence func(region) fence.Fence) []replicate.Target {
	var ts []replicate.Target
	for _, r := range regs {
		s, err := adapters.OpenVector(context.Background(), r.url)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, replicate.Target{
			Region: r.name, Store: countingStager{s, r.writes}, Fence: fence(r),
			Declared: map[string]any{"model_tag": "hash-64", "analyzer": analyzer.Version()}, Analyzer: analyzer,
		})
	}
	return ts
}

func boltFence(t *testing.T) func(region) fence.Fence {
	dir := t.TempDir()
	return func(r region) fence.Fence {
		f, err := fence.Open("", filepath.Join(dir, r.name+".db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
}

func hashEmbedder(t *testing.T) embed.Embedder {
	e, err := embed.Open("hash://?dim=64")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func opts(src replicate.Source, e embed.Embedder, run string) replicate.Options {
	return replicate.Options{Source: src, Embedder: e, RunID: run, BatchDocs: 16,
		Spec: adapters.CollectionSpec{Vectors: map[string]int{"": 64}, Metric: "cosine", IDKind: parity.IDUUID}}
}

func liveHash(t *testing.T, url string) *verifier.Scan {
	s, err := adapters.OpenVector(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := verifier.HashStore(context.Background(), s, verifier.Options{Declared: map[string]any{"model_tag": "hash-64", "analyzer": analyzer.Version()}})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestRebuildEmbedsOnceWritesEverywhere(t *testing.T) {
	src := corpus(t, 120)
	regs := embeddedRegions(t, "us-east-1", "eu-west-1", "ap-south-1")
	e := embed.NewCounting(hashEmbedder(t))
	o := opts(src, e, "run1")
	o.Promote = true
	res, err := replicate.Rebuild(context.Background(), targets(t, regs, boltFence(t)), o)
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if res.Documents != 120 || res.Chunks < 240 {
		t.Fatalf("documents %d chunks %d", res.Documents, res.Chunks)
	}
	if got, want := e.Texts(), int64(e.Distinct()); got != want || e.Repeated() != 0 {
		t.Errorf("embedded %d texts, %d distinct, %d repeated: each chunk must be embedded once", got, want, e.Repeated())
	}
	if e.Texts() > int64(res.Chunks) {
		t.Errorf("embedding calls %d > chunks %d (3 regions must not multiply them)", e.Texts(), res.Chunks)
	}
	for _, r := range regs {
		if got := r.writes.Load(); got != int64(res.Chunks) {
			t.Errorf("%s: %d points written, want %d", r.name, got, res.Chunks)
		}
	}
	if !res.Agree || !res.Promoted {
		t.Fatalf("agree=%v promoted=%v", res.Agree, res.Promoted)
	}
	want := liveHash(t, regs[0].url)
	for _, r := range regs {
		got := liveHash(t, r.url)
		if got.Points != int64(res.Chunks) || got.IndexHash() != want.IndexHash() {
			t.Errorf("%s: live %d points %s, want %d points %s", r.name, got.Points, got.IndexHash(), res.Chunks, want.IndexHash())
		}
		if res.IndexHash[r.name] != got.IndexHash().Hex() {
			t.Errorf("%s: reported INDEX_HASH %s, live %s", r.name, res.IndexHash[r.name], got.IndexHash())
		}
	}
}

func TestReplayTwiceInARowWritesOnce(t *testing.T) {
	src := corpus(t, 60)
	regs := embeddedRegions(t, "a", "b")
	fence := boltFence(t)
	first, err := replicate.Rebuild(context.Background(), targets(t, regs, fence), opts(src, hashEmbedder(t), "replay"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := replicate.Rebuild(context.Background(), targets(t, regs, fence), opts(src, hashEmbedder(t), "replay"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regs {
		if got := r.writes.Load(); got != int64(first.Chunks) {
			t.Errorf("%s: %d writes over two runs, want %d (100%% dedupe)", r.name, got, first.Chunks)
		}
		if second.Written[r.name] != 0 || second.Dedupe[r.name].Hits != first.Chunks {
			t.Errorf("%s: second run wrote %d, dedupe hits %d, want 0 and %d", r.name, second.Written[r.name], second.Dedupe[r.name].Hits, first.Chunks)
		}
	}
	if second.IndexHash["a"] != first.IndexHash["a"] || !second.Agree {
		t.Errorf("replay changed the staged index")
	}
}

func redisFence(t *testing.T) func(region) fence.Fence {
	u := os.Getenv("RAGPARITY_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	return func(r region) fence.Fence {
		f, err := fence.Open(u, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Warm(context.Background()); err != nil {
			t.Fatalf("Redis not reachable at %s (start it with `make services`): %v", u, err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
}

// TestConcurrentRebuildsOneWins: a second rebuild of a region while one
// is running fails with the lease message and writes nothing; the first
// writes every chunk once and promotes. With Wait, the second waits and
// then finds the run promoted.
func TestConcurrentRebuildsOneWins(t *testing.T) {
	src := corpus(t, 200)
	regs := embeddedRegions(t, "a", "b")
	run := fmt.Sprintf("conc%d", rand.Uint32())
	f := redisFence(t)
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	o := opts(src, hashEmbedder(t), run)
	o.Promote, o.Host, o.BatchDocs = true, "host-one", 4
	o.Lease = time.Second
	o.OnBatch = func(int) {
		once.Do(func() { close(started); <-release })
	}
	var first *replicate.Result
	var firstErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		first, firstErr = replicate.Rebuild(context.Background(), targets(t, regs, f), o)
	}()
	<-started
	o2 := opts(src, hashEmbedder(t), run)
	o2.Promote, o2.Host = true, "host-two"
	_, err := replicate.Rebuild(context.Background(), targets(t, regs, f), o2)
	var le *replicate.LeaseError
	if !errors.As(err, &le) {
		t.Fatalf("second rebuild: %v, want a *LeaseError", err)
	}
	if want := "region a is being rebuilt by run " + run + " on host host-one since "; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
	// The second waits (past a lease renewal of the first's).
	o3 := opts(src, hashEmbedder(t), run)
	o3.Promote, o3.Wait, o3.Lease = true, true, time.Second
	var third *replicate.Result
	var thirdErr error
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		third, thirdErr = replicate.Rebuild(context.Background(), targets(t, regs, f), o3)
	}()
	time.Sleep(1500 * time.Millisecond)
	close(release)
	<-done
	if firstErr != nil || !first.Promoted {
		t.Fatalf("first rebuild: %v (promoted %v)", firstErr, first != nil && first.Promoted)
	}
	<-waited
	if thirdErr != nil {
		t.Fatalf("waiting rebuild: %v", thirdErr)
	}
	if third.Promoted || third.Note == "" || third.Written["a"] != 0 {
		t.Errorf("waiting rebuild after the first promoted: written %v, note %q: want nothing written, the run noted as promoted", third.Written, third.Note)
	}
	for _, r := range regs {
		if got := r.writes.Load(); got != int64(first.Chunks) {
			t.Errorf("%s: %d writes, want exactly %d", r.name, got, first.Chunks)
		}
		if got := liveHash(t, r.url); got.IndexHash().Hex() != first.IndexHash[r.name] || got.Points != int64(first.Chunks) {
			t.Errorf("%s: live %s (%d points), want the first run's %s", r.name, got.IndexHash(), got.Points, first.IndexHash[r.name])
		}
	}
}

// TestFailoverReplay: a writer dies mid-run (its context is cancelled after
// some batches, leaving pending claims); after the lease, a writer in
// another region replays the whole run: no chunk is written twice, none is
// missing.
func TestFailoverReplay(t *testing.T) {
	src := corpus(t, 150)
	regs := embeddedRegions(t, "a", "b")
	run := fmt.Sprintf("fail%d", rand.Uint32())
	fence := redisFence(t)
	ctx, cancel := context.WithCancel(context.Background())
	o := opts(src, hashEmbedder(t), run)
	o.Lease = 300 * time.Millisecond
	batches := 0
	o.OnBatch = func(int) {
		if batches++; batches == 3 {
			cancel()
		}
	}
	if _, err := replicate.Rebuild(ctx, targets(t, regs, fence), o); err == nil {
		t.Fatalf("the interrupted writer finished")
	}
	before := regs[0].writes.Load()
	if before == 0 {
		t.Fatalf("the first writer wrote nothing before failing")
	}
	o2 := opts(src, hashEmbedder(t), run)
	o2.Lease = 300 * time.Millisecond
	res, err := replicate.Rebuild(context.Background(), targets(t, regs, fence), o2)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regs {
		if got := r.writes.Load(); got != int64(res.Chunks) {
			t.Errorf("%s: %d writes across failover, want exactly %d", r.name, got, res.Chunks)
		}
	}
	t.Logf("before failover %d of %d chunks written; dedupe hits after: %d", before, res.Chunks, res.Dedupe["a"].Hits)
	if res.Dedupe["a"].Hits == 0 {
		t.Errorf("the replay found nothing already written")
	}
}

func TestRebuildBadSourceLeavesLiveUntouched(t *testing.T) {
	regs := embeddedRegions(t, "a")
	good := corpus(t, 20)
	o := opts(good, hashEmbedder(t), "good")
	o.Promote = true
	if _, err := replicate.Rebuild(context.Background(), targets(t, regs, boltFence(t)), o); err != nil {
		t.Fatal(err)
	}
	before := liveHash(t, regs[0].url)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "corpus.jsonl"), []byte("{\"_id\":\"x\",\"text\":\"fine words here\"}\n{broken\n"), 0o644)
	bad, _ := replicate.OpenSource(filepath.Join(dir, "corpus.jsonl"))
	o = opts(bad, hashEmbedder(t), "bad")
	o.Promote = true
	_, err := replicate.Rebuild(context.Background(), targets(t, regs, boltFence(t)), o)
	if err == nil || !strings.Contains(err.Error(), "corpus.jsonl:2") || !strings.Contains(err.Error(), "untouched") {
		t.Fatalf("error = %v, want one naming corpus.jsonl:2 and saying the live index is untouched", err)
	}
	if after := liveHash(t, regs[0].url); after.IndexHash() != before.IndexHash() {
		t.Errorf("a failed rebuild changed the live index")
	}
}

func TestDifferentAnalyzersNeverHashEqual(t *testing.T) {
	src := corpus(t, 30)
	regs := embeddedRegions(t, "a", "b")
	ts := targets(t, regs, boltFence(t))
	other := replicate.Analyzer{ChunkSize: 30, Overlap: 4, Normalize: "NFKC"}
	ts[1].Analyzer = other
	ts[1].Declared = map[string]any{"model_tag": "hash-64", "analyzer": other.Version()}
	res, err := replicate.Rebuild(context.Background(), ts, opts(src, hashEmbedder(t), "analyzers"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Agree || res.IndexHash["a"] == res.IndexHash["b"] {
		t.Errorf("regions chunked differently hash equal: %v", res.IndexHash)
	}
}

// TestPromoteAcrossEngines: pgvector (with its HNSW index) and the Qdrant
// test server rebuilt from the same corpus differ only in engine settings
// (HNSW build parameters, storage type, on_disk, shards): their
// INDEX_HASHes agree and Promote swaps both in. The metric is dot, which
// neither engine normalises on insert: a cosine Qdrant or embedded region
// stores the L2-normalised float32 bits, which differ in the last bits
// from pgvector's for most vectors, and content_root rightly tells them
// apart (the embedded store, cosine only, is left out for that reason).
func TestPromoteAcrossEngines(t *testing.T) {
	table := fmt.Sprintf("rp_promote_%08x", rand.Uint32())
	srv := qdranttest.Start(t)
	regs := []region{
		{name: "pg", url: pgtest.TableURL(table, "payload", "metadata", "text", "content"), writes: &atomic.Int64{}},
		{name: "qdrant", url: "qdrant://" + srv.Addr() + "/" + table + "?text=content", writes: &atomic.Int64{}},
	}
	// The stores themselves, not targets()'s counting wrappers, which hide
	// pgvector's Sealer (the HNSW index is built when the stage is sealed).
	ts := targets(t, regs, boltFence(t))
	for i := range ts {
		ts[i].Store = ts[i].Store.(countingStager).VectorStore
	}
	t.Cleanup(func() {
		for _, tg := range ts {
			tg.Store.Drop(context.Background())
		}
	})
	o := opts(corpus(t, 40), hashEmbedder(t), "engines")
	o.Spec.Metric = "dot"
	o.Promote = true
	res, err := replicate.Rebuild(context.Background(), ts, o)
	if err != nil {
		t.Fatalf("Rebuild across engines: %v", err)
	}
	if !res.Agree || !res.Promoted {
		t.Fatalf("agree=%v promoted=%v INDEX_HASH %v", res.Agree, res.Promoted, res.IndexHash)
	}
	pg, qd := liveHash(t, regs[0].url), liveHash(t, regs[1].url)
	if pg.IndexHash() != qd.IndexHash() || pg.EngineDigest == qd.EngineDigest {
		t.Errorf("live pgvector vs qdrant: INDEX_HASH equal %v, engine digests equal %v: want equal, different", pg.IndexHash() == qd.IndexHash(), pg.EngineDigest == qd.EngineDigest)
	}
	if got, want := fmt.Sprint(pg.Settings.Engine["index.type"], " ", pg.Settings.Engine["index.ef_construction"], " ", qd.Settings.Engine["index.ef_construction"]), "hnsw 64 100"; got != want {
		t.Errorf("engine settings index.type / ef_construction pg / qdrant = %s, want %s", got, want)
	}
}
