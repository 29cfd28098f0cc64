// Command mksubset cuts a small BEIR test set out of a large one for unit
// tests (testdata/scifact was made with it):
//
//	go run ./probe/beir/mksubset -src /path/to/scifact -dst testdata/scifact -queries 60 -distractors 400
//
// It keeps every judged query at positions 0, step, 2*step, ... of
// queries.jsonl (step = judged queries / -queries), all their judgements
// and judged documents, and the -distractors unjudged documents (judged for
// none of the kept queries) with the smallest sha256(id). Lines are copied
// byte for byte, in the source's order, so the subset is deterministic.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	src := flag.String("src", "", "source BEIR folder")
	dst := flag.String("dst", "", "destination folder")
	nq := flag.Int("queries", 60, "queries to keep")
	nd := flag.Int("distractors", 400, "unjudged documents to keep")
	flag.Parse()
	if err := run(*src, *dst, *nq, *nd); err != nil {
		fmt.Fprintln(os.Stderr, "mksubset:", err)
		os.Exit(1)
	}
}

type line struct {
	id  string
	raw []byte
}

func readLines(path string) ([]line, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var v struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, line{v.ID, append([]byte(nil), sc.Bytes()...)})
	}
	return out, sc.Err()
}

func run(src, dst string, nq, nd int) error {
	if src == "" || dst == "" || nq <= 0 || nd < 0 {
		return errors.New("-src, -dst and positive -queries are required")
	}
	qrels, err := os.ReadFile(filepath.Join(src, "qrels.tsv"))
	if err != nil {
		return err
	}
	qlines := strings.Split(strings.TrimRight(string(qrels), "\n"), "\n")
	judged := map[string][]string{} // query -> qrels lines
	for _, l := range qlines[1:] {
		q := strings.SplitN(l, "\t", 2)[0]
		judged[q] = append(judged[q], l)
	}
	queries, err := readLines(filepath.Join(src, "queries.jsonl"))
	if err != nil {
		return err
	}
	var jq []line
	for _, q := range queries {
		if judged[q.id] != nil {
			jq = append(jq, q)
		}
	}
	if nq > len(jq) {
		nq = len(jq)
	}
	step := len(jq) / nq
	keepQ := map[string]bool{}
	var outQ, outR bytes.Buffer
	outR.WriteString(qlines[0] + "\n")
	keepD := map[string]bool{}
	for i := 0; i < nq; i++ {
		q := jq[i*step]
		keepQ[q.id] = true
		outQ.Write(q.raw)
		outQ.WriteByte('\n')
	}
	for _, l := range qlines[1:] {
		f := strings.Split(l, "\t")
		if keepQ[f[0]] {
			outR.WriteString(l + "\n")
			keepD[f[1]] = true
		}
	}
	docs, err := readLines(filepath.Join(src, "corpus.jsonl"))
	if err != nil {
		return err
	}
	var cand []string
	for _, d := range docs {
		if !keepD[d.id] {
			cand = append(cand, d.id)
		}
	}
	sort.Slice(cand, func(a, b int) bool {
		ha, hb := sha256.Sum256([]byte(cand[a])), sha256.Sum256([]byte(cand[b]))
		return bytes.Compare(ha[:], hb[:]) < 0
	})
	judgedDocs := len(keepD)
	for _, id := range cand[:min(nd, len(cand))] {
		keepD[id] = true
	}
	var outC bytes.Buffer
	for _, d := range docs {
		if keepD[d.id] {
			outC.Write(d.raw)
			outC.WriteByte('\n')
		}
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"corpus.jsonl": outC.Bytes(), "queries.jsonl": outQ.Bytes(), "qrels.tsv": outR.Bytes()} {
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("%d queries, %d judgements, %d documents (%d judged + %d distractors)\n",
		nq, strings.Count(outR.String(), "\n")-1, len(keepD), judgedDocs, len(keepD)-judgedDocs)
	return nil
}
