package goldset

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LoadBEIR reads a BEIR folder as a gold set: every query of queries.jsonl
// with at least one judgement of score > 0 in qrels/test.tsv (or, when that
// is absent, qrels.tsv) becomes a question whose gold ids are the judged
// corpus ids (document ids). Queries without a positive judgement are left
// out; the corpus is not read.
func LoadBEIR(dir string) (*Set, error) {
	qpath := filepath.Join(dir, "queries.jsonl")
	qrels := filepath.Join(dir, "qrels", "test.tsv")
	if _, err := os.Stat(qrels); err != nil {
		qrels = filepath.Join(dir, "qrels.tsv")
	}
	if _, err := os.Stat(qpath); err != nil {
		return nil, &Error{File: dir, Err: errors.New("not a gold set: a folder must be in BEIR layout (queries.jsonl, qrels/test.tsv or qrels.tsv)")}
	}
	if _, err := os.Stat(qrels); err != nil {
		return nil, &Error{File: dir, Err: errors.New("BEIR folder without judgements: want qrels/test.tsv or qrels.tsv")}
	}
	type query struct {
		text string
		line int
	}
	queries := map[string]query{}
	var order []string
	b, err := os.ReadFile(qpath)
	if err != nil {
		return nil, &Error{File: qpath, Err: err}
	}
	if err := checkUTF8(qpath, b); err != nil {
		return nil, err
	}
	for n, line := range bytes.Split(b, []byte("\n")) {
		ln := n + 1
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var q struct {
			ID   any    `json:"_id"`
			Text string `json:"text"`
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&q); err != nil {
			return nil, &Error{File: qpath, Line: ln, Err: fmt.Errorf("not a JSON object: %v", err)}
		}
		id, err := idString(q.ID)
		if err != nil {
			return nil, &Error{File: qpath, Line: ln, Field: "_id", Err: err}
		}
		if prev, dup := queries[id]; dup {
			return nil, &Error{File: qpath, Line: ln, Field: "_id", Err: fmt.Errorf("duplicate id %q (first used on line %d)", id, prev.line)}
		}
		queries[id] = query{q.Text, ln}
		order = append(order, id)
	}
	gold := map[string][]string{}
	f, err := os.Open(qrels)
	if err != nil {
		return nil, &Error{File: qrels, Err: err}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		fs := strings.Split(line, "\t")
		if len(fs) != 3 {
			return nil, &Error{File: qrels, Line: ln, Err: fmt.Errorf("want 3 tab-separated fields (query-id, corpus-id, score), got %d", len(fs))}
		}
		score, err := strconv.Atoi(strings.TrimSpace(fs[2]))
		if err != nil {
			if ln == 1 {
				continue // header
			}
			return nil, &Error{File: qrels, Line: ln, Field: "score", Err: fmt.Errorf("%q is not an integer", fs[2])}
		}
		qid, did := strings.TrimSpace(fs[0]), strings.TrimSpace(fs[1])
		if _, ok := queries[qid]; !ok {
			return nil, &Error{File: qrels, Line: ln, Field: "query-id", Err: fmt.Errorf("query %q is not in %s", qid, qpath)}
		}
		if did == "" {
			return nil, &Error{File: qrels, Line: ln, Field: "corpus-id", Err: errors.New("empty")}
		}
		if score > 0 {
			gold[qid] = append(gold[qid], did)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: qrels, Err: err}
	}
	s := &Set{Source: dir, Format: "beir"}
	for _, id := range order {
		g := gold[id]
		if len(g) == 0 {
			continue
		}
		q := queries[id]
		if strings.TrimSpace(q.text) == "" {
			return nil, &Error{File: qpath, Line: q.line, Field: "text", Err: errors.New("empty question")}
		}
		s.Questions = append(s.Questions, Question{ID: id, Question: q.text, GoldIDs: dedupe(g), Line: q.line})
	}
	if len(s.Questions) == 0 {
		return nil, &Error{File: qrels, Err: errors.New("no query has a positive judgement")}
	}
	return s, nil
}

func dedupe(ids []string) []string {
	seen := map[string]bool{}
	out := ids[:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
