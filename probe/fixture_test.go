package probe_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/adapters"
	_ "github.com/ragparity/ragparity/adapters/embedded"
	_ "github.com/ragparity/ragparity/adapters/pgvector"
	_ "github.com/ragparity/ragparity/adapters/qdrant"
	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
	"github.com/ragparity/ragparity/embed"
	_ "github.com/ragparity/ragparity/embed/glove"
	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/probe"
	"github.com/ragparity/ragparity/replicate"
)

// The SciFact subset (testdata/scifact) is loaded once per test binary
// through replicate.Rebuild, with the glove embedder, into:
//
//	pg        pgvector (PostgreSQL from RAGPARITY_PG_URL)
//	qdrant    the in-process Qdrant test server
//	embedded  the embedded store
//	stale     the embedded store, then 5 % of its chunks get stale text
//	          (their stored vector is the old text's; the text is replaced)
//	analyzer  the embedded store, chunked with a different analyzer
//	pg2       pgvector, rebuilt on its own (its own run, its own HNSW graph)
//	pgdeg     pgvector, rebuilt on its own with a degraded HNSW index
//	          (m=2, ef_construction=4): the same rows as pg
//	swap      pgvector, rebuilt on its own, then 10 % of its chunks swap
//	          texts in pairs behind their vectors
const scifactDir = "../testdata/scifact"

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error

	cleanups []func()
)

type fixture struct {
	emb    embed.Embedder
	stores map[string]adapters.VectorStore
	// staleIDs are the chunk ids of region stale whose text was replaced,
	// swapIDs those of region swap.
	staleIDs, swapIDs map[string]bool
	chunks            int
	embedded          int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	os.Exit(code)
}

func pgTable(table string) string {
	return pgtest.TableURL(table, "payload", "metadata", "text", "content")
}

// DefaultAnalyzer chunks SciFact abstracts into 1-3 chunks; the other
// analyzer cuts them finer.
var otherAnalyzer = replicate.Analyzer{ChunkSize: 80, Overlap: 10, Normalize: "NFKC"}

func loadFixture(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() { fix, fixErr = buildFixture() })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func buildFixture() (*fixture, error) {
	ctx := context.Background()
	f := &fixture{stores: map[string]adapters.VectorStore{}, staleIDs: map[string]bool{}, swapIDs: map[string]bool{}}
	e, err := embed.Open("glove")
	if err != nil {
		return nil, err
	}
	f.emb = e
	dir, err := os.MkdirTemp("", "ragparity-probe-")
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })

	// PostgreSQL: fail (never skip) when it is not there.
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL with pgvector is not reachable at %s: %v; run `make services`", adapters.Redact(pgtest.URL()), err)
	}
	conn.Close(ctx)
	table := fmt.Sprintf("rp_probe_%08x", rand.Uint32())
	cleanups = append(cleanups, func() {
		c, err := pgx.Connect(context.Background(), pgtest.URL())
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		rows, _ := c.Query(context.Background(), "SELECT tablename FROM pg_tables WHERE tablename LIKE $1", table+"%")
		names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range names {
			c.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{n}.Sanitize())
		}
	})

	// Qdrant test server.
	srv := qdranttest.New()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go srv.Serve(lis)
	cleanups = append(cleanups, srv.Stop)

	urls := map[string]string{
		"pg":       pgTable(table),
		"qdrant":   "qdrant://" + lis.Addr().String() + "/scifact?text=content",
		"embedded": "embedded://" + filepath.Join(dir, "embedded") + "?collection=chunks",
		"stale":    "embedded://" + filepath.Join(dir, "stale") + "?collection=chunks",
		"analyzer": "embedded://" + filepath.Join(dir, "analyzer") + "?collection=chunks",
		"pg2":      pgTable(table + "_2"),
		"pgdeg":    pgTable(table + "_deg"),
		"swap":     pgTable(table + "_swap"),
	}
	src, err := replicate.OpenSource(filepath.Join(scifactDir, "corpus.jsonl"))
	if err != nil {
		return nil, err
	}
	var targets []replicate.Target
	var alone []replicate.Target // rebuilt each on its own
	for _, name := range []string{"pg", "qdrant", "embedded", "stale", "analyzer", "pg2", "pgdeg", "swap"} {
		s, err := adapters.OpenVector(ctx, urls[name])
		if err != nil {
			return nil, err
		}
		cleanups = append(cleanups, func() { s.Close() })
		f.stores[name] = s
		fence, err := fence.Open("", filepath.Join(dir, "fence-"+name+".db"))
		if err != nil {
			return nil, err
		}
		cleanups = append(cleanups, func() { fence.Close() })
		a := replicate.DefaultAnalyzer
		if name == "analyzer" {
			a = otherAnalyzer
		}
		tg := replicate.Target{Region: name, Store: s, Fence: fence, Analyzer: a,
			Declared: map[string]any{"model_tag": e.ModelTag(), "analyzer": a.Version()}}
		if name == "pg2" || name == "pgdeg" || name == "swap" {
			alone = append(alone, tg)
			continue
		}
		targets = append(targets, tg)
	}
	spec := adapters.CollectionSpec{Vectors: map[string]int{"": e.Dim()}, Metric: "cosine", IDKind: parity.IDUUID}
	// Cosine regions on engines that normalise on insert (Qdrant, the
	// embedded store) and pgvector, which does not, hold different float32
	// bits, so their INDEX_HASHes differ: Rebuild stages them and each stage
	// is promoted here.
	res, err := replicate.Rebuild(ctx, targets, replicate.Options{Source: src, Embedder: e, Spec: spec, RunID: "probe"})
	if err != nil {
		return nil, err
	}
	for _, tg := range targets {
		if err := tg.Store.(adapters.Stager).Promote(ctx, res.RunID); err != nil {
			return nil, fmt.Errorf("promote %s: %w", tg.Region, err)
		}
	}
	f.chunks, f.embedded = res.Chunks, res.Embedded
	for _, tg := range alone {
		sp := spec
		if tg.Region == "pgdeg" {
			sp.HNSWM, sp.HNSWEfConstruction = 2, 4 // pgvector's smallest graph
		}
		r, err := replicate.Rebuild(ctx, []replicate.Target{tg}, replicate.Options{Source: src, Embedder: e, Spec: sp, RunID: "probe-" + tg.Region})
		if err != nil {
			return nil, err
		}
		if err := tg.Store.(adapters.Stager).Promote(ctx, r.RunID); err != nil {
			return nil, fmt.Errorf("promote %s: %w", tg.Region, err)
		}
	}
	if err := f.makeSwap(ctx); err != nil {
		return nil, err
	}
	return f, f.makeStale(ctx)
}

// makeSwap swaps the texts of 10 % of region swap's chunks in pairs
// (chosen by a hash of their id), keeping each stored vector: texts that
// no longer match the vectors they are retrieved by.
func (f *fixture) makeSwap(ctx context.Context) error {
	all, err := scanAll(ctx, f.stores["swap"])
	if err != nil {
		return err
	}
	n := len(all) * 10 / 100 / 2 * 2
	out := make([]parity.Point, n)
	for i := 0; i < n; i += 2 {
		a, b := all[i], all[i+1]
		a.Text, b.Text = b.Text, a.Text
		out[i], out[i+1] = a, b
		f.swapIDs[a.ID.S], f.swapIDs[b.ID.S] = true, true
	}
	return f.stores["swap"].Upsert(ctx, out)
}

// scanAll reads every point of s, in the order of a hash of their id.
func scanAll(ctx context.Context, s adapters.VectorStore) ([]parity.Point, error) {
	var all []parity.Point
	err := s.Scan(ctx, func(p *parity.Point) error {
		cp := *p
		cp.Vectors = []parity.NamedVector{{Values: append([]float32(nil), p.Vectors[0].Values...)}}
		cp.Payload = append([]byte(nil), p.Payload...)
		all = append(all, cp)
		return nil
	})
	sort.Slice(all, func(i, j int) bool {
		hi, hj := sha256.Sum256([]byte(all[i].ID.S)), sha256.Sum256([]byte(all[j].ID.S))
		return string(hi[:]) < string(hj[:])
	})
	return all, err
}

// makeStale replaces the text of 5 % of region stale's chunks (chosen by
// a hash of their id) with the text of another chunk, keeping the stored
// vector: an index whose texts were rewritten without re-embedding.
func (f *fixture) makeStale(ctx context.Context) error {
	s := f.stores["stale"]
	var all []parity.Point
	err := s.Scan(ctx, func(p *parity.Point) error {
		cp := *p
		cp.Vectors = []parity.NamedVector{{Values: append([]float32(nil), p.Vectors[0].Values...)}}
		cp.Payload = append([]byte(nil), p.Payload...)
		all = append(all, cp)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool {
		hi, hj := sha256.Sum256([]byte(all[i].ID.S)), sha256.Sum256([]byte(all[j].ID.S))
		return string(hi[:]) < string(hj[:])
	})
	n := len(all) * 5 / 100
	stale := make([]parity.Point, n)
	for i := range stale {
		stale[i] = all[i]
		// The text of a chunk far away in the hash order: another document.
		stale[i].Text = all[len(all)-1-i].Text
		f.staleIDs[all[i].ID.S] = true
	}
	return s.Upsert(ctx, stale)
}

// regions returns probe regions for the named fixture stores.
func (f *fixture) regions(t *testing.T, names ...string) []probe.Region {
	t.Helper()
	var out []probe.Region
	for _, n := range names {
		r, err := probe.RegionFromStore(n, f.stores[n], map[string]any{"model_tag": f.emb.ModelTag()})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}
