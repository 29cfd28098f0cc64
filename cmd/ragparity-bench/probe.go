package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ragparity/ragparity/adapters"
	_ "github.com/ragparity/ragparity/adapters/embedded"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/embed"
	_ "github.com/ragparity/ragparity/embed/all"
	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/goldset"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/probe"
	"github.com/ragparity/ragparity/replicate"
)

// benchProbe prints the time of a probe over 3 embedded regions loaded
// from a BEIR folder (questions x seeds), and the embedding calls it made
// against the naive count (every region, question and seed embedding its
// own question and retrieved texts).
func benchProbe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	beir := fs.String("beir", defaultBEIR(), "BEIR folder (corpus.jsonl, queries.jsonl, qrels) to load and ask")
	nq := fs.Int("questions", 100, "gold questions (a fixed sample, seed 7)")
	seeds := fs.Int("seeds", 2, "probe seeds")
	k := fs.Int("k", 10, "hits per probe")
	runs := fs.Int("runs", 3, "timed probe runs")
	fs.Parse(args)
	ctx := context.Background()
	e, err := embed.Open("glove")
	if err != nil {
		return err
	}
	src, err := replicate.OpenSource(*beir)
	if err != nil {
		return err
	}
	gold, err := goldset.Load(*beir)
	if err != nil {
		return err
	}
	if gold, err = gold.Sample(*nq, 7); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "rp-bench-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	a := replicate.DefaultAnalyzer
	// The regions as a config, so that their declared settings come from
	// the gate's own rule (gate.DeclaredSettings), as verify's would.
	yml := "release: bench\nembedder: glove\nregions:\n"
	for _, r := range []string{"us-east-1", "eu-west-1", "ap-south-1"} {
		yml += fmt.Sprintf("  - name: %s\n    vectors: %q\n", r, fmt.Sprintf("embedded://%s?collection=chunks", filepath.Join(dir, r)))
	}
	bcfg, err := config.Parse("bench.yaml", []byte(yml))
	if err != nil {
		return err
	}
	var targets []replicate.Target
	var regions []probe.Region
	for i := range bcfg.Regions {
		reg := &bcfg.Regions[i]
		r := reg.Name
		s, err := adapters.OpenVector(ctx, reg.Vectors)
		if err != nil {
			return err
		}
		f, err := fence.Open("", filepath.Join(dir, r+".fence"))
		if err != nil {
			return err
		}
		defer f.Close()
		declared, err := gate.DeclaredSettings(bcfg, reg)
		if err != nil {
			return err
		}
		targets = append(targets, replicate.Target{Region: r, Store: s, Fence: f, Analyzer: a, Declared: declared})
		pr, err := probe.RegionFromStore(r, s, declared)
		if err != nil {
			return err
		}
		regions = append(regions, pr)
	}
	t0 := time.Now()
	res, err := replicate.Rebuild(ctx, targets, replicate.Options{Source: src, Embedder: e, RunID: "bench", Promote: true,
		Spec: adapters.CollectionSpec{Vectors: map[string]int{"": e.Dim()}, Metric: "cosine", IDKind: parity.IDUUID}})
	if err != nil {
		return err
	}
	fmt.Printf("## probe: %d regions x %d questions x %d seeds, k=%d (embedded store, glove, %s: %d documents, %d chunks; loaded by rebuild in %v)\n\n",
		len(regions), len(gold.Questions), *seeds, *k, filepath.Base(*beir), res.Documents, res.Chunks, time.Since(t0).Round(time.Millisecond))
	cfg := probe.Defaults()
	cfg.K, cfg.Seeds = *k, *seeds
	fmt.Printf("| run | probe seconds | of which search | searches | question texts embedded (naive) | retrieved texts embedded (naive) | Embed calls | drift max |\n|---|---|---|---|---|---|---|---|\n")
	var secs []float64
	for i := 1; i <= *runs; i++ {
		counter := embed.NewCounting(e)
		t1 := time.Now()
		rep, err := probe.Run(ctx, regions, gold, counter, cfg)
		if err != nil {
			return err
		}
		el := time.Since(t1)
		secs = append(secs, el.Seconds())
		em := rep.Embedding
		fmt.Printf("| %d | %.3f | %.3f | %d | %d (%d) | %d (%d) | %d | %.4f |\n", i, el.Seconds(), float64(rep.SearchMS)/1000,
			len(regions)*len(gold.Questions)**seeds, em.QuestionTexts, em.QuestionNaive, em.ChunkTexts, em.ChunkNaive, counter.Calls(), rep.Drift.Max)
		if got := counter.Texts(); got != int64(em.QuestionTexts+em.ChunkTexts+em.AnchorTexts) {
			return fmt.Errorf("embedder saw %d texts, the report counts %d", got, em.QuestionTexts+em.ChunkTexts+em.AnchorTexts)
		}
	}
	sort.Float64s(secs)
	fmt.Printf("\nmedian probe time %.3f s; every question variant is embedded once for all regions and seeds, every retrieved text once (identical regions add none).\n", secs[len(secs)/2])
	return nil
}
