package beir

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/embed/hashembed"
)

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

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
