package glove

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ragparity/ragparity/embed"
	"github.com/ragparity/ragparity/embed/hashembed"
	"github.com/ragparity/ragparity/probe/beir"
)

// BenchmarkSciFact measures retrieval quality on a BEIR folder: every
// document (title + " " + text) and judged query is embedded, documents are
// ranked by cosine, and nDCG@10, recall@10 and MRR@10 are reported per
// embedder (glove, and hash as the baseline).
//
// The folder is $RAGPARITY_BEIR, else the shared SciFact copy beside the
// repository (../../../shared/data/scifact), else the small subset in
// testdata/scifact; it skips only when none exists.
//
//	go test -run '^$' -bench SciFact -benchtime 1x ./embed/glove/
func BenchmarkSciFact(b *testing.B) {
	dir := beirDir()
	if dir == "" {
		b.Skip("no BEIR folder: set RAGPARITY_BEIR")
	}
	ds, err := beir.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("BEIR folder %s: %d documents, %d queries", dir, len(ds.Corpus), len(ds.Qrels))
	g, err := New()
	if err != nil {
		b.Fatal(err)
	}
	h, err := hashembed.New(hashembed.DefaultDim)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		e    embed.Embedder
	}{{"glove", g}, {"hash", h}} {
		b.Run(tc.name, func(b *testing.B) {
			var res beir.Result
			for b.Loop() {
				if res, err = beir.Evaluate(context.Background(), tc.e, ds, 10, 256); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(res.NDCG, "nDCG@10")
			b.ReportMetric(res.Recall, "recall@10")
			b.ReportMetric(res.MRR, "MRR@10")
			b.Logf("%s (%s): %s", tc.name, tc.e.ModelTag(), res)
		})
	}
}

func beirDir() string {
	for _, d := range []string{os.Getenv("RAGPARITY_BEIR"), filepath.Join("..", "..", "..", "shared", "data", "scifact"), testdataSciFact} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "qrels.tsv")); err == nil {
			return d
		}
	}
	return ""
}

// testdataSciFact is the repository's small SciFact subset.
var testdataSciFact = filepath.Join("..", "..", "testdata", "scifact")
