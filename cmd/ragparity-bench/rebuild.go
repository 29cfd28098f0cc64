package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/adapters"
	_ "github.com/ragparity/ragparity/adapters/embedded"
	"github.com/ragparity/ragparity/adapters/pgvector"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/embed"
	_ "github.com/ragparity/ragparity/embed/all"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/replicate"
)

// benchRebuild prints chunks/s written to pgvector through COPY vs
// row-by-row INSERT, and embedding calls for 3 regions vs 3 x chunks.
func benchRebuild(args []string) error {
	fs := flag.NewFlagSet("rebuild", flag.ExitOnError)
	beir := fs.String("beir", defaultBEIR(), "BEIR folder (corpus.jsonl) to rebuild from")
	rows := fs.Int("rows", 5000, "chunks written in the COPY vs INSERT comparison")
	fs.Parse(args)
	ctx := context.Background()
	src, err := replicate.OpenSource(*beir)
	if err != nil {
		return err
	}
	e, err := embed.Open("glove")
	if err != nil {
		return err
	}
	a := replicate.DefaultAnalyzer
	// Collect chunks of the corpus.
	var pts []parity.Point
	var texts []string
	src.Each(ctx, func(d replicate.Document) error {
		for i, c := range a.Chunk(d.Text) {
			if len(texts) < *rows {
				texts = append(texts, c)
				pts = append(pts, parity.Point{ID: parity.ID{Kind: parity.IDUUID, S: replicate.ChunkID(d.SourceID, i)}, Payload: []byte(`{"source_id":"` + d.SourceID + `"}`), Text: c, HasText: true})
			}
		}
		return nil
	})
	vecs, err := e.Embed(ctx, texts)
	if err != nil {
		return err
	}
	for i := range pts {
		pts[i].Vectors = []parity.NamedVector{{Values: vecs[i]}}
	}
	fmt.Printf("## rebuild writes (pgvector, %d chunks of %s, %d dims)\n\n", len(pts), filepath.Base(*beir), e.Dim())
	fmt.Printf("| method | seconds | chunks/s |\n|---|---|---|\n")
	var rates []float64
	for _, method := range []string{"COPY (staged upsert)", "row-by-row INSERT"} {
		table := fmt.Sprintf("rp_bench_write_%08x", rand.Uint32())
		u := pgTable(table)
		s, err := adapters.OpenVector(ctx, u)
		if err != nil {
			return err
		}
		spec := adapters.CollectionSpec{Vectors: map[string]int{"": e.Dim()}, Metric: "cosine", IDKind: parity.IDUUID}
		// Rebuilds write into a stage (no ANN index while loading).
		st, err := s.(adapters.Stager).Stage(ctx, "bench", spec)
		if err != nil {
			return err
		}
		t0 := time.Now()
		if method == "row-by-row INSERT" {
			err = st.(*pgvector.Store).WriteRowByRow(ctx, pts)
		} else {
			for i := 0; i < len(pts) && err == nil; i += 5000 {
				err = st.Upsert(ctx, pts[i:min(i+5000, len(pts))])
			}
		}
		el := time.Since(t0)
		s.(adapters.Stager).DropStage(ctx, "bench")
		s.Close()
		if err != nil {
			return err
		}
		rates = append(rates, float64(len(pts))/el.Seconds())
		fmt.Printf("| %s | %.2f | %.0f |\n", method, el.Seconds(), rates[len(rates)-1])
	}
	fmt.Printf("\nCOPY / row-by-row = %.1fx (target >= 10x); both write into a rebuild stage (the HNSW index is built at promote).\n", rates[0]/rates[1])

	// Embedding calls for a 3-region rebuild.
	dir, _ := os.MkdirTemp("", "rp-bench-rebuild-")
	defer os.RemoveAll(dir)
	counter := embed.NewCounting(e)
	// The regions as a config: their targets (stores, fences, declared
	// settings, analyzer) come from gate.Targets, as `ragparity rebuild`'s do.
	yml := fmt.Sprintf("release: bench\nembedder: glove\ncache_dir: %q\nregions:\n", filepath.Join(dir, "cache"))
	for _, r := range []string{"us-east-1", "eu-west-1", "ap-south-1"} {
		yml += fmt.Sprintf("  - name: %s\n    vectors: %q\n    dedupe_kv: %q\n", r, fmt.Sprintf("embedded://%s?collection=chunks", filepath.Join(dir, r)), "file://"+filepath.Join(dir, r+".fence"))
	}
	bcfg, err := config.Parse("bench.yaml", []byte(yml))
	if err != nil {
		return err
	}
	targets, closeTargets, err := gate.Targets(ctx, bcfg, nil)
	defer closeTargets()
	if err != nil {
		return err
	}
	t0 := time.Now()
	res, err := replicate.Rebuild(ctx, targets, replicate.Options{Source: src, Embedder: counter, RunID: "bench",
		Spec: gate.CollectionSpec(bcfg, e.Dim())})
	if err != nil {
		return err
	}
	fmt.Printf("\n## embedding calls, 3-region rebuild of %s (embedded store, %v)\n\n", *beir, time.Since(t0).Round(time.Millisecond))
	fmt.Printf("| chunks | texts embedded | distinct | 3 x chunks (naive) | target |\n|---|---|---|---|---|\n")
	fmt.Printf("| %d | %d | %d | %d | exactly chunks (duplicate chunk texts are embedded once, so <= chunks) |\n", res.Chunks, counter.Texts(), counter.Distinct(), 3*res.Chunks)
	return nil
}

func pgTable(table string) string {
	return pgtest.TableURL(table, "payload", "metadata", "text", "content")
}

func defaultBEIR() string {
	for _, p := range []string{"../shared/data/scifact", "testdata/scifact"} {
		if _, err := os.Stat(filepath.Join(p, "corpus.jsonl")); err == nil {
			return p
		}
	}
	return "testdata/scifact"
}

var _ = pgx.Identifier{}
