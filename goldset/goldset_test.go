package goldset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const scifact = "../testdata/scifact"

func TestLoadBEIRSciFact(t *testing.T) {
	s, err := Load(scifact)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Format, "beir"; got != want {
		t.Errorf("format = %q, want %q", got, want)
	}
	// testdata/scifact/README.md: 60 judged queries, 71 judgements.
	if got, want := len(s.Questions), 60; got != want {
		t.Fatalf("questions = %d, want %d", got, want)
	}
	gold := 0
	for _, q := range s.Questions {
		gold += len(q.GoldIDs)
	}
	if got, want := gold, 71; got != want {
		t.Errorf("gold ids = %d, want %d", got, want)
	}
	q := s.Questions[0]
	if q.ID != "1" || q.Question != "0-dimensional biomaterials show inductive properties." || !reflect.DeepEqual(q.GoldIDs, []string{"31715818"}) || q.Line != 1 {
		t.Errorf("first question = %+v", q)
	}
}

func TestLoadBEIRQrelsFolderPreferred(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "queries.jsonl"), `{"_id": "a", "text": "first?"}
{"_id": 7, "text": "second?", "metadata": {}}
{"_id": "c", "text": "unjudged"}
`)
	write(t, filepath.Join(dir, "qrels.tsv"), "query-id\tcorpus-id\tscore\na\twrong\t1\n")
	os.Mkdir(filepath.Join(dir, "qrels"), 0o755)
	write(t, filepath.Join(dir, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\na\td1\t1\na\td0\t0\n7\td2\t2\n7\td3\t1\n")
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, q := range s.Questions {
		got = append(got, q.ID+":"+strings.Join(q.GoldIDs, ","))
	}
	if want := []string{"a:d1", "7:d2,d3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("questions = %v, want %v (qrels/test.tsv wins, score 0 is not gold, unjudged queries dropped)", got, want)
	}
	write(t, filepath.Join(dir, "qrels", "test.tsv"), "query-id\tcorpus-id\tscore\nzz\td1\t1\n")
	_, err = Load(dir)
	if got, want := fmt.Sprint(err), filepath.Join(dir, "qrels", "test.tsv")+":2: query-id: query \"zz\" is not in"; !strings.HasPrefix(got, want) {
		t.Errorf("unknown query: %v, want prefix %q", got, want)
	}
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

const goodYAML = `# gold questions
questions:
  - id: q1
    question: Does ALDH1 expression predict a poor prognosis?
    paraphrases:
      - Is ALDH1 a marker of worse outcome?
    gold_ids: ["45638119", 31715818]
    anchor: ALDH1 marks mammary stem cells.
  - id: 2
    question: |
      A multi-line
      question
    gold_ids: [chunk-9]
`

func TestParseYAML(t *testing.T) {
	s, err := ParseYAML("gold.yaml", []byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := []Question{
		{ID: "q1", Question: "Does ALDH1 expression predict a poor prognosis?", Paraphrases: []string{"Is ALDH1 a marker of worse outcome?"},
			GoldIDs: []string{"45638119", "31715818"}, Anchor: "ALDH1 marks mammary stem cells.", Line: 3},
		{ID: "2", Question: "A multi-line\nquestion\n", GoldIDs: []string{"chunk-9"}, Line: 9},
	}
	if !reflect.DeepEqual(s.Questions, want) {
		t.Errorf("questions =\n%+v\nwant\n%+v", s.Questions, want)
	}
	if got := s.Questions[0].Variants(); len(got) != 2 || got[1] != "Is ALDH1 a marker of worse outcome?" {
		t.Errorf("variants = %q", got)
	}
}

// TestDigestSameAcrossFormats: the same questions read from YAML and from
// JSONL have the same digest, and the JSONL written back parses to them.
func TestDigestSameAcrossFormats(t *testing.T) {
	y, err := ParseYAML("gold.yaml", []byte(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := y.WriteJSONL(&b); err != nil {
		t.Fatal(err)
	}
	j, err := ParseJSONL("gold.jsonl", b.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got, want := j.Digest(), y.Digest(); got != want {
		t.Errorf("JSONL digest %s, YAML digest %s", got, want)
	}
	j.Questions[1].GoldIDs = []string{"chunk-10"}
	if j.Digest() == y.Digest() {
		t.Error("digest did not change with a gold id")
	}
}

// errorCases are bad gold sets and the exact "file:line: field: " prefix
// their error must start with. schemaOK marks the cases JSON Schema cannot
// see (duplicate ids).
var errorCases = []struct {
	name, file, src, want string
	schemaOK              bool
}{
	{"YAMLUnknownField", "g.yaml", "questions:\n  - id: a\n    question: q?\n    gold_ids: [d]\n  - id: b\n    question: r?\n    colour: red\n    gold_ids: [d]\n",
		"g.yaml:7: questions[1].colour: unknown field", false},
	{"YAMLUnknownTopLevel", "g.yaml", "question:\n  - id: a\n", "g.yaml:1: question: unknown field", false},
	{"YAMLEmptyQuestion", "g.yaml", "questions:\n  - id: a\n    question: q?\n    gold_ids: [d]\n  - id: b\n    question: \"  \"\n    gold_ids: [d]\n",
		"g.yaml:6: questions[1].question: empty", false},
	{"YAMLMissingQuestion", "g.yaml", "questions:\n  - id: a\n    gold_ids: [d]\n", "g.yaml:2: questions[0].question: missing", false},
	{"YAMLNoGoldIDs", "g.yaml", "questions:\n  - id: a\n    question: q?\n    gold_ids: []\n", "g.yaml:4: questions[0].gold_ids: no gold ids", false},
	{"YAMLGoldIDsMissing", "g.yaml", "questions:\n  - id: a\n    question: q?\n", "g.yaml:2: questions[0].gold_ids: no gold ids", false},
	{"YAMLDuplicateID", "g.yaml", "questions:\n  - id: a\n    question: q?\n    gold_ids: [d]\n  - id: a\n    question: r?\n    gold_ids: [e]\n",
		"g.yaml:5: questions[1].id: duplicate id \"a\" (first used on line 2)", true},
	{"YAMLParaphrasesNotAList", "g.yaml", "questions:\n  - id: a\n    question: q?\n    paraphrases: other\n    gold_ids: [d]\n",
		"g.yaml:4: questions[0].paraphrases: want a list of strings", false},
	{"YAMLFloatGoldID", "g.yaml", "questions:\n  - id: a\n    question: q?\n    gold_ids: [1.5]\n", "g.yaml:4: questions[0].gold_ids[0]: 1.5 is not an integer", false},
	{"YAMLEmptyParaphrase", "g.yaml", "questions:\n  - id: a\n    question: q?\n    paraphrases: [ok, \"\"]\n    gold_ids: [d]\n", "g.yaml:4: questions[0].paraphrases[1]: empty", false},
	{"YAMLNoQuestions", "g.yaml", "questions: []\n", "g.yaml:1: questions: no questions", false},
	{"JSONLUnknownField", "g.jsonl", `{"id":"a","question":"q?","gold_ids":["d"]}` + "\n\n" + `{"id":"b","question":"r?","gold":["d"]}` + "\n",
		"g.jsonl:3: gold: unknown field", false},
	{"JSONLEmptyQuestion", "g.jsonl", `{"id":"a","question":"","gold_ids":["d"]}`, "g.jsonl:1: question: empty", false},
	{"JSONLNoGoldIDs", "g.jsonl", `{"id":"a","question":"q?"}`, "g.jsonl:1: gold_ids: no gold ids", false},
	{"JSONLDuplicateID", "g.jsonl", `{"id":"a","question":"q?","gold_ids":["d"]}` + "\n" + `{"id":"a","question":"r?","gold_ids":["e"]}`,
		"g.jsonl:2: id: duplicate id \"a\" (first used on line 1)", true},
	{"JSONLDuplicateGoldID", "g.jsonl", `{"id":"a","question":"q?","gold_ids":["d","d"]}`, "g.jsonl:1: gold_ids[1]: \"d\" is listed twice", false},
	{"JSONLWrongType", "g.jsonl", `{"id":"a","question":"q?","gold_ids":"d"}`, "g.jsonl:1: gold_ids: want a list of ids", false},
	{"JSONLIDMissing", "g.jsonl", `{"question":"q?","gold_ids":["d"]}`, "g.jsonl:1: id: missing", false},
	{"JSONLNotJSON", "g.jsonl", `{"id":"a","question":"q?","gold_ids":["d"]}` + "\nnot json\n", "g.jsonl:2: not a JSON object", false},
}

func parse(name, src string) (*Set, error) {
	if strings.HasSuffix(name, ".yaml") {
		return ParseYAML(name, []byte(src))
	}
	return ParseJSONL(name, []byte(src))
}

func TestErrorsNameFileLineField(t *testing.T) {
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(c.file, c.src)
			if err == nil {
				t.Fatalf("parsed without error, want %q", c.want)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error = %q\nwant prefix %q", err, c.want)
			}
			var ge *Error
			if !errors.As(err, &ge) || ge.File != c.file || ge.Line == 0 {
				t.Errorf("error %#v is not an *Error with file %s and a line", err, c.file)
			}
		})
	}
}

func TestLoadByExtension(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "gold.yml")
	write(t, p, goodYAML)
	if s, err := Load(p); err != nil || s.Format != "yaml" || len(s.Questions) != 2 {
		t.Errorf("Load(.yml) = %+v, %v", s, err)
	}
	p = filepath.Join(dir, "gold.txt")
	write(t, p, goodYAML)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "unknown gold set format") {
		t.Errorf("Load(.txt) error = %v", err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "BEIR layout") {
		t.Errorf("Load(folder without queries.jsonl) error = %v", err)
	}
}

func TestSample(t *testing.T) {
	s, err := Load(scifact)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(s *Set) []string {
		var out []string
		for _, q := range s.Questions {
			out = append(out, q.ID)
		}
		return out
	}
	a, _ := s.Sample(20, 7)
	b, _ := s.Sample(20, 7)
	if got, want := len(a.Questions), 20; got != want {
		t.Fatalf("sample size %d, want %d", got, want)
	}
	if !reflect.DeepEqual(ids(a), ids(b)) {
		t.Errorf("same seed, different samples:\n%v\n%v", ids(a), ids(b))
	}
	c, _ := s.Sample(20, 8)
	if reflect.DeepEqual(ids(a), ids(c)) {
		t.Errorf("seeds 7 and 8 gave the same sample %v", ids(a))
	}
	// Independent of the file's order.
	rev := &Set{Source: s.Source, Format: s.Format}
	for i := len(s.Questions) - 1; i >= 0; i-- {
		rev.Questions = append(rev.Questions, s.Questions[i])
	}
	r, _ := rev.Sample(20, 7)
	got := map[string]bool{}
	for _, id := range ids(r) {
		got[id] = true
	}
	for _, id := range ids(a) {
		if !got[id] {
			t.Errorf("question %s chosen from the file but not from the reversed file", id)
		}
	}
	// Kept in the set's order.
	pos := map[string]int{}
	for i, q := range s.Questions {
		pos[q.ID] = i
	}
	for i := 1; i < len(a.Questions); i++ {
		if pos[a.Questions[i-1].ID] > pos[a.Questions[i].ID] {
			t.Errorf("sample not in the set's order: %v", ids(a))
			break
		}
	}
	all, _ := s.Sample(1000, 7)
	if len(all.Questions) != len(s.Questions) {
		t.Errorf("n larger than the set: %d questions, want all %d", len(all.Questions), len(s.Questions))
	}
	if _, err := s.Sample(0, 7); err == nil {
		t.Error("sample of 0 accepted")
	}
}

func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("../schemas/goldset.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// yamlToJSON converts a YAML document to a JSON value for the schema.
func yamlToJSON(t *testing.T, src string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaAgreesWithLoader: the published schema accepts what the loader
// accepts and rejects what it rejects (bar duplicate ids, which JSON
// Schema cannot express).
func TestSchemaAgreesWithLoader(t *testing.T) {
	sch := compileSchema(t)
	if err := sch.Validate(yamlToJSON(t, goodYAML)); err != nil {
		t.Errorf("schema rejects the good YAML: %v", err)
	}
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			var docs []any
			if strings.HasSuffix(c.file, ".yaml") {
				docs = append(docs, yamlToJSON(t, c.src))
			} else {
				var qs []any
				for _, line := range strings.Split(c.src, "\n") {
					if strings.TrimSpace(line) == "" {
						continue
					}
					v, err := jsonschema.UnmarshalJSON(strings.NewReader(line))
					if err != nil {
						qs = nil
						break // not JSON: nothing for the schema to judge
					}
					qs = append(qs, v)
				}
				if qs == nil {
					return
				}
				docs = append(docs, map[string]any{"questions": qs})
			}
			err := sch.Validate(docs[0])
			if c.schemaOK && err != nil {
				t.Errorf("schema rejects a set only the loader can: %v", err)
			}
			if !c.schemaOK && err == nil {
				t.Errorf("schema accepts a set the loader rejects (%s)", c.want)
			}
		})
	}
}

func FuzzParseYAML(f *testing.F) {
	f.Add(goodYAML)
	for _, c := range errorCases {
		if strings.HasSuffix(c.file, ".yaml") {
			f.Add(c.src)
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := ParseYAML("f.yaml", []byte(src))
		if err != nil {
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		roundTrip(t, s)
	})
}

func FuzzParseJSONL(f *testing.F) {
	for _, c := range errorCases {
		if strings.HasSuffix(c.file, ".jsonl") {
			f.Add(c.src)
		}
	}
	f.Add(`{"id":1,"question":"q?","paraphrases":["p"],"gold_ids":[2,"x"],"anchor":"a"}`)
	f.Fuzz(func(t *testing.T, src string) {
		s, err := ParseJSONL("f.jsonl", []byte(src))
		if err != nil {
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		roundTrip(t, s)
	})
}

// roundTrip: a parsed set written as JSONL parses back to the same digest.
func roundTrip(t *testing.T, s *Set) {
	var b bytes.Buffer
	if err := s.WriteJSONL(&b); err != nil {
		t.Fatal(err)
	}
	back, err := ParseJSONL("back.jsonl", b.Bytes())
	if err != nil {
		t.Fatalf("written JSONL does not parse: %v\n%s", err, b.String())
	}
	if back.Digest() != s.Digest() {
		t.Fatalf("round trip changed the set:\n%s", b.String())
	}
}

// A gold set that is not UTF-8 (Latin-1 bytes, say) would be hashed and
// embedded as replacement characters: a file:line error instead.
func TestNonUTF8GoldSetsRefused(t *testing.T) {
	jsonl := "{\"id\": \"q1\", \"question\": \"what is x\", \"gold_ids\": [\"d1\"]}\n{\"id\": \"q2\", \"question\": \"caf\xe9 opening hours\", \"gold_ids\": [\"d2\"]}\n"
	yml := "questions:\n  - id: q1\n    question: \"caf\xe9 hours\"\n    gold_ids: [d1]\n"
	for name, tc := range map[string]struct {
		parse func(string, []byte) (*Set, error)
		src   string
		want  string
	}{
		"JSONL": {ParseJSONL, jsonl, "g.jsonl:2"},
		"YAML":  {ParseYAML, yml, "g.yaml:3"},
	} {
		t.Run(name, func(t *testing.T) {
			file := "g." + strings.ToLower(name)
			_, err := tc.parse(file, []byte(tc.src))
			if err == nil {
				t.Fatalf("a non-UTF-8 gold set was accepted")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "UTF-8") {
				t.Errorf("error %q, want %s and UTF-8", err, tc.want)
			}
		})
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "queries.jsonl"), []byte("{\"_id\": \"q1\", \"text\": \"caf\xe9\"}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "qrels.tsv"), []byte("query-id\tcorpus-id\tscore\nq1\td1\t1\n"), 0o644)
	if _, err := LoadBEIR(dir); err == nil || !strings.Contains(err.Error(), "queries.jsonl:1") || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("BEIR queries not UTF-8: %v", err)
	}
}
