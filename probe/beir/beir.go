// Package beir loads a retrieval test set in the BEIR layout (corpus.jsonl,
// queries.jsonl, qrels.tsv) and measures an embedder on it by brute-force
// cosine search: nDCG@k, recall@k and MRR@k, averaged over the judged
// queries. It is used by benchmarks and tests; it is not part of the
// service.
package beir

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ragparity/ragparity/embed"
	"github.com/ragparity/ragparity/probe"
)

// Doc is one corpus document.
type Doc struct {
	ID    string `json:"_id"`
	Title string `json:"title"`
	Text  string `json:"text"`
}

// Query is one query.
type Query struct {
	ID   string `json:"_id"`
	Text string `json:"text"`
}

// Dataset is a loaded BEIR folder.
type Dataset struct {
	Corpus  []Doc
	Queries []Query
	// Qrels maps query id -> document id -> graded relevance.
	Qrels map[string]map[string]int
}

// Load reads dir/corpus.jsonl, dir/queries.jsonl and dir/qrels.tsv (with a
// header line). Every judged query and document must be present.
func Load(dir string) (*Dataset, error) {
	ds := &Dataset{Qrels: map[string]map[string]int{}}
	if err := readJSONL(filepath.Join(dir, "corpus.jsonl"), func(b []byte) error {
		var d Doc
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		ds.Corpus = append(ds.Corpus, d)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := readJSONL(filepath.Join(dir, "queries.jsonl"), func(b []byte) error {
		var q Query
		if err := json.Unmarshal(b, &q); err != nil {
			return err
		}
		ds.Queries = append(ds.Queries, q)
		return nil
	}); err != nil {
		return nil, err
	}
	qrels, err := os.ReadFile(filepath.Join(dir, "qrels.tsv"))
	if err != nil {
		return nil, fmt.Errorf("beir: %w", err)
	}
	for n, line := range strings.Split(strings.TrimRight(string(qrels), "\n"), "\n") {
		if n == 0 {
			continue // header
		}
		f := strings.Split(strings.TrimRight(line, "\r"), "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("beir: qrels.tsv:%d: want 3 tab-separated fields", n+1)
		}
		score, err := strconv.Atoi(f[2])
		if err != nil {
			return nil, fmt.Errorf("beir: qrels.tsv:%d: score: %w", n+1, err)
		}
		if ds.Qrels[f[0]] == nil {
			ds.Qrels[f[0]] = map[string]int{}
		}
		ds.Qrels[f[0]][f[1]] = score
	}
	docs := map[string]bool{}
	for _, d := range ds.Corpus {
		docs[d.ID] = true
	}
	queries := map[string]bool{}
	for _, q := range ds.Queries {
		queries[q.ID] = true
	}
	for q, rel := range ds.Qrels {
		if !queries[q] {
			return nil, fmt.Errorf("beir: qrels.tsv judges query %q, missing from queries.jsonl", q)
		}
		for d := range rel {
			if !docs[d] {
				return nil, fmt.Errorf("beir: qrels.tsv judges document %q, missing from corpus.jsonl", d)
			}
		}
	}
	return ds, nil
}

func readJSONL(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("beir: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		if err := fn(sc.Bytes()); err != nil {
			return fmt.Errorf("beir: %s:%d: %w", filepath.Base(path), n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("beir: %s: %w", filepath.Base(path), err)
	}
	return nil
}

// DocText is what gets embedded for a document: title, a space, text.
func DocText(d Doc) string { return d.Title + " " + d.Text }

// Result holds the averaged figures.
type Result struct {
	K       int
	Queries int // judged queries evaluated
	Docs    int
	NDCG    float64 // nDCG@K, linear gain, log2 discount
	Recall  float64 // recall@K: relevant documents in the top K / relevant documents
	MRR     float64 // MRR@K: 1/rank of the first relevant document in the top K, else 0
}

func (r Result) String() string {
	return fmt.Sprintf("queries=%d docs=%d nDCG@%d=%.4f recall@%d=%.4f MRR@%d=%.4f",
		r.Queries, r.Docs, r.K, r.NDCG, r.K, r.Recall, r.K, r.MRR)
}

// Evaluate embeds the corpus (DocText) and the judged queries in batches of
// batch texts, ranks every document for every query by cosine (dot product
// of unit vectors; ties broken by document id), and averages the figures
// at cut-off k over the judged queries.
func Evaluate(ctx context.Context, e embed.Embedder, ds *Dataset, k, batch int) (Result, error) {
	if k <= 0 || batch <= 0 {
		return Result{}, errors.New("beir: k and batch must be positive")
	}
	docTexts := make([]string, len(ds.Corpus))
	for i, d := range ds.Corpus {
		docTexts[i] = DocText(d)
	}
	dv, err := embedAll(ctx, e, docTexts, batch)
	if err != nil {
		return Result{}, err
	}
	var qs []Query
	for _, q := range ds.Queries {
		if len(ds.Qrels[q.ID]) > 0 {
			qs = append(qs, q)
		}
	}
	qTexts := make([]string, len(qs))
	for i, q := range qs {
		qTexts[i] = q.Text
	}
	qv, err := embedAll(ctx, e, qTexts, batch)
	if err != nil {
		return Result{}, err
	}
	res := Result{K: k, Queries: len(qs), Docs: len(ds.Corpus)}
	type scored struct {
		i int
		s float32
	}
	ranked := make([]scored, len(dv))
	for qi, q := range qs {
		for i, v := range dv {
			ranked[i] = scored{i, dot(qv[qi], v)}
		}
		sort.Slice(ranked, func(a, b int) bool {
			if ranked[a].s != ranked[b].s {
				return ranked[a].s > ranked[b].s
			}
			return ds.Corpus[ranked[a].i].ID < ds.Corpus[ranked[b].i].ID
		})
		top := make([]string, 0, k)
		for _, r := range ranked[:min(k, len(ranked))] {
			top = append(top, ds.Corpus[r.i].ID)
		}
		n, rec, rr := probe.Score(top, ds.Qrels[q.ID], k)
		res.NDCG += n
		res.Recall += rec
		res.MRR += rr
	}
	if len(qs) > 0 {
		res.NDCG /= float64(len(qs))
		res.Recall /= float64(len(qs))
		res.MRR /= float64(len(qs))
	}
	return res, nil
}

func embedAll(ctx context.Context, e embed.Embedder, texts []string, batch int) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for i := 0; i < len(texts); i += batch {
		vs, err := e.Embed(ctx, texts[i:min(i+batch, len(texts))])
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	return out, nil
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
