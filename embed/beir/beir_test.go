package beir

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/embed/hashembed"
)

func TestScore(t *testing.T) {
	rel := map[string]int{"a": 1, "b": 1, "x": 0}
	ndcg, recall, rr := Score([]string{"z", "a", "x", "b"}, rel, 10)
	wantDCG := 1/math.Log2(3) + 1/math.Log2(5)
	wantIDCG := 1 + 1/math.Log2(3)
	if math.Abs(ndcg-wantDCG/wantIDCG) > 1e-12 || recall != 1 || rr != 0.5 {
		t.Fatalf("Score = %v %v %v, want %v 1 0.5", ndcg, recall, rr, wantDCG/wantIDCG)
	}
	if _, recall, rr := Score([]string{"z", "a", "b"}, rel, 2); recall != 0.5 || rr != 0.5 {
		t.Fatalf("cut-off 2: recall %v, rr %v", recall, rr)
	}
	if n, r, m := Score([]string{"a"}, map[string]int{}, 10); n != 0 || r != 0 || m != 0 {
		t.Fatal("no relevant documents should score 0")
	}
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadAndEvaluate(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"corpus.jsonl": `{"_id":"d1","title":"Vitamin D","text":"vitamin d and bone health"}
{"_id":"d2","title":"Cats","text":"cats sleep on rugs"}
{"_id":"d3","title":"Bonds","text":"interest rates and bonds"}
`,
		"queries.jsonl": `{"_id":"q1","text":"vitamin d bone"}
{"_id":"q2","text":"unjudged query"}
`,
		"qrels.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
	})
	ds, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := hashembed.New(64)
	res, err := Evaluate(context.Background(), e, ds, 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Queries != 1 || res.Docs != 3 || res.Recall != 1 || res.MRR != 1 || res.NDCG != 1 {
		t.Fatalf("Evaluate = %s, want a perfect score on the one judged query", res)
	}
}

func TestLoadRejectsDanglingJudgement(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"corpus.jsonl":  `{"_id":"d1","title":"","text":"x"}` + "\n",
		"queries.jsonl": `{"_id":"q1","text":"x"}` + "\n",
		"qrels.tsv":     "query-id\tcorpus-id\tscore\nq1\td9\t1\n",
	})
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "d9") {
		t.Fatalf("err = %v, want a missing-document error", err)
	}
}
