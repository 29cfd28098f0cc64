package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"

	_ "github.com/ragparity/ragparity/adapters/pgvector"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/embed"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/goldset"
	"github.com/ragparity/ragparity/probe"
)

// benchProbeExact times the parity probe with exact search (a sequential
// scan per question) beside the same probe through the HNSW index, on one
// pgvector region of n synthetic chunks embedded with the hash embedder
// (the table and its index are kept between runs), and then the default
// probe (exact parity searches plus the ANN-health searches). The stored
// vectors carry a little deterministic noise: hash embeddings take few
// distinct values, and the many exact ties at the k-th hit would make
// every search re-query for more rows (Search breaks ties by id), which
// measures ties, not search.
func benchProbeExact(args []string) error {
	fs := flag.NewFlagSet("probe-exact", flag.ExitOnError)
	n := fs.Int("points", 100000, "chunks in the table")
	dim := fs.Int("dim", 64, "hash embedder dimensions")
	nq := fs.Int("questions", 100, "gold questions")
	seeds := fs.Int("seeds", 2, "probe seeds")
	fs.Parse(args)
	ctx := context.Background()
	e, err := embed.Open(fmt.Sprintf("hash://?dim=%d", *dim))
	if err != nil {
		return err
	}
	table := fmt.Sprintf("rp_bench_probe_%d_%d_noise", *n, *dim)
	texts := synthTexts(*n)
	if err := ensureProbeTable(ctx, table, texts, e, *dim); err != nil {
		return err
	}
	u := pgtest.URL()
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	// The region as a config, so its declared settings come from the
	// gate's own rule (gate.DeclaredSettings), as verify's would.
	bcfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf("release: bench\nembedder: %q\nsettings: {vector.metric: cosine}\nregions:\n  - name: pg\n    vectors: %q\n",
		fmt.Sprintf("hash://?dim=%d", *dim), u+sep+"table="+table+"&payload=metadata&text=content")))
	if err != nil {
		return err
	}
	prs, closeRegions, err := gate.ProbeRegions(ctx, bcfg, []*config.Region{&bcfg.Regions[0]}, true)
	if err != nil {
		return err
	}
	defer closeRegions()
	region := prs[0]
	// Questions: half of a chunk's words, shuffled; its gold id is the chunk.
	r := rand.New(rand.NewPCG(7, 13))
	gold := &goldset.Set{Source: "synthetic", Format: "yaml"}
	for i := 0; i < *nq; i++ {
		id := 1 + r.IntN(*n)
		w := strings.Fields(texts[id-1])
		r.Shuffle(len(w), func(a, b int) { w[a], w[b] = w[b], w[a] })
		gold.Questions = append(gold.Questions, goldset.Question{ID: fmt.Sprintf("q%d", i), Question: strings.Join(w[:len(w)/2], " "), GoldIDs: []string{fmt.Sprint(id)}})
	}
	fmt.Printf("## probe: exact vs ANN parity search (pgvector, 1 region, %d chunks x %d dims, HNSW m=16 ef_construction=64, %d questions x %d seeds, k=10, hash embedder)\n\n", *n, *dim, *nq, *seeds)
	fmt.Printf("| probe | parity searches | probe seconds | of which search | ms per search (mean) | ANN recall@10 (mean, min) |\n|---|---|---|---|---|---|\n")
	for _, m := range []struct {
		name, search string
		health       bool
	}{{"exact (sequential scan)", probe.SearchExact, false}, {"ANN (HNSW, ef_search 100)", probe.SearchANN, false}, {"default: exact + ANN health", probe.SearchExact, true}} {
		cfg := probe.Defaults()
		cfg.Seeds, cfg.Search = *seeds, m.search
		t0 := time.Now()
		rep, err := probe.RunWith(ctx, []probe.Region{region}, gold, e, cfg, probe.Options{SkipANNHealth: !m.health})
		if err != nil {
			return err
		}
		el := time.Since(t0)
		searches := *nq * *seeds
		if m.health {
			searches *= 2
		}
		rr := rep.Region("pg")
		if rr.Error != "" {
			return fmt.Errorf("probe %s: %s", m.name, rr.Error)
		}
		ann := "-"
		if m.health {
			ann = fmt.Sprintf("%.3f, %.2f", rr.ANN.Mean, rr.ANN.Min)
		}
		fmt.Printf("| %s | %d | %.2f | %.2f | %.1f | %s |\n", m.name, *nq**seeds, el.Seconds(), float64(rep.SearchMS)/1000,
			float64(rep.SearchMS)/float64(searches), ann)
	}
	fmt.Println("\nExact search is linear in the table: scale the ms per search by rows to find where it exceeds the probe timeout (gate.timeouts.probes).")
	return nil
}

// synthTexts returns n chunk texts of 12 words from a 5000-word vocabulary
// with a skewed frequency (deterministic).
func synthTexts(n int) []string {
	r := rand.New(rand.NewPCG(2026, 12))
	out := make([]string, n)
	var b strings.Builder
	for i := range out {
		b.Reset()
		for j := 0; j < 12; j++ {
			if j > 0 {
				b.WriteByte(' ')
			}
			w := int(5000 * r.Float64() * r.Float64())
			fmt.Fprintf(&b, "w%04d", w)
		}
		out[i] = b.String()
	}
	return out
}

// ensureProbeTable creates table with the chunks (ids 1..n), their hash
// embeddings and an HNSW index, unless it already holds n rows and the
// index.
func ensureProbeTable(ctx context.Context, table string, texts []string, e embed.Embedder, dim int) error {
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var count int64
	var indexed bool
	if conn.QueryRow(ctx, "SELECT count(*), EXISTS (SELECT 1 FROM pg_indexes WHERE tablename = $1 AND indexdef ILIKE '%USING hnsw%') FROM "+table, table).Scan(&count, &indexed) == nil && count == int64(len(texts)) && indexed {
		return nil
	}
	fmt.Fprintf(os.Stderr, "creating %s (%d chunks x %d dims, HNSW index)...\n", table, len(texts), dim)
	t0 := time.Now()
	for _, s := range []string{"DROP TABLE IF EXISTS " + table,
		fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, embedding vector(%d), metadata jsonb, content text)", table, dim)} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return err
		}
	}
	const batch = 2000
	for lo := 0; lo < len(texts); lo += batch {
		hi := min(lo+batch, len(texts))
		vecs, err := e.Embed(ctx, texts[lo:hi])
		if err != nil {
			return err
		}
		ids := make([]int64, hi-lo)
		lits, metas := make([]string, hi-lo), make([]string, hi-lo)
		for i := range ids {
			ids[i] = int64(lo + i + 1)
			lits[i] = vecLiteral(jitter(vecs[i], uint64(ids[i])))
			metas[i] = fmt.Sprintf(`{"source_id": "%d"}`, ids[i])
		}
		if _, err := conn.Exec(ctx, "INSERT INTO "+table+" SELECT * FROM unnest($1::bigint[], $2::text[]::vector[], $3::text[]::jsonb[], $4::text[])",
			ids, lits, metas, texts[lo:hi]); err != nil {
			return fmt.Errorf("load %s: %w", table, err)
		}
	}
	for _, s := range []string{"SET maintenance_work_mem = '512MB'",
		fmt.Sprintf("CREATE INDEX ON %s USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)", table),
		"VACUUM ANALYZE " + table} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "created in %v\n", time.Since(t0).Round(time.Millisecond))
	return nil
}

// jitter adds noise of about 1e-3 per component (seeded by id) and
// renormalises.
func jitter(v []float32, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 99))
	out := make([]float32, len(v))
	var n float64
	for i, x := range v {
		out[i] = x + float32((r.Float64()-0.5)*2e-3)
		n += float64(out[i]) * float64(out[i])
	}
	inv := float32(1 / math.Sqrt(n))
	for i := range out {
		out[i] *= inv
	}
	return out
}

func vecLiteral(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, ",") + "]"
}
