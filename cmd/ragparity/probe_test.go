package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ragparity/ragparity/probe"
)

// TestProbeCLI loads the SciFact subset with `ragparity rebuild` into a
// pgvector table and three embedded regions (two chunked alike, one with
// another analyzer), then runs `ragparity probe` and `ragparity goldset`
// as a user would.
func TestProbeCLI(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join("..", "..", "testdata", "scifact")
	prefix := fmt.Sprintf("rp_probecli_%08x", rand.Uint32())
	dropTables(t, prefix)
	emb := func(name string) string {
		return fmt.Sprintf("embedded://%s?collection=chunks", filepath.Join(dir, name))
	}
	head := fmt.Sprintf("release: r-probe\nembedder: glove\ncache_dir: %q\n", filepath.Join(dir, "cache"))
	// Rebuild per engine: --promote needs equal INDEX_HASHes, and engines'
	// settings differ by design.
	for _, body := range []string{
		fmt.Sprintf("regions:\n  - name: pg\n    vectors: %q\n", pgTableURL(prefix)),
		fmt.Sprintf("regions:\n  - name: a\n    vectors: %q\n  - name: b\n    vectors: %q\n", emb("a"), emb("b")),
		fmt.Sprintf("regions:\n  - name: c\n    vectors: %q\n    analyzer: {chunk_size: 80, overlap: 10, normalize: NFKC}\n", emb("c")),
	} {
		code, out, errOut := runCLI(t, "rebuild", "--config", writeConfig(t, head+body), "--source", filepath.Join(corpus, "corpus.jsonl"), "--promote")
		if code != ExitEqual {
			t.Fatalf("rebuild: exit %d\n%s%s", code, out, errOut)
		}
	}
	all := writeConfig(t, head+fmt.Sprintf("regions:\n  - name: pg\n    vectors: %q\n  - name: a\n    vectors: %q\n  - name: b\n    vectors: %q\n  - name: c\n    vectors: %q\n",
		pgTableURL(prefix), emb("a"), emb("b"), emb("c")))
	schema, err := jsonschema.NewCompiler().Compile(filepath.Join("..", "..", "schemas", "probe.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	probeJSON := func(t *testing.T, out string) *probe.Report {
		t.Helper()
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
		if err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%.500s", err, out)
		}
		if err := schema.Validate(v); err != nil {
			t.Fatalf("probe --json does not match schemas/probe.schema.json: %v", err)
		}
		var rep probe.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		return &rep
	}

	var healthy []string // questions that pass every floor in region a
	t.Run("DifferentAnalyzerFailsExit1", func(t *testing.T) {
		code, out, errOut := runCLI(t, "probe", "--config", all, "--goldset", corpus, "--regions", "a,c")
		if code != ExitDiffer {
			t.Fatalf("exit %d, want 1\n%s", code, errOut)
		}
		m := regexp.MustCompile(`(?m)^FAIL: .*drift \(questions: ([0-9, ]+)[ )]`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("last line does not name the failing drift check and its questions:\n%s", lastLines(out, 3))
		}
		for _, want := range []string{"region a (ΔS", "region c (ΔS", "across regions, worst drift first", "  FAIL drift ", "thresholds: drift_max=0.03 min_questions=10 delta_s_max=0.45", "search=exact ef_search=100 probes=0 ann_recall_min=0.9", "per region (parity searches exact; ANN health: serving search at ef_search=100"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		code, jout, _ := runCLI(t, "probe", "--config", all, "--goldset", corpus, "--regions", "a,c", "--json")
		rep := probeJSON(t, jout)
		if code != ExitDiffer || rep.Pass || rep.Checks[0].Name != probe.CheckDrift || rep.Checks[0].Status != probe.Fail {
			t.Fatalf("--json: exit %d, passed %v, first check %+v", code, rep.Pass, rep.Checks[0])
		}
		// The text names the same questions, worst first.
		if got, want := strings.Split(m[1], ", ")[0], rep.Checks[0].Evidence[0]; got != want {
			t.Errorf("text names %s first, JSON %s", got, want)
		}
		for _, q := range rep.Questions {
			r := q.Regions[0].Runs[0]
			if r.DeltaS <= 0.40 && r.Covered && r.Lambda == probe.Convergent && q.Regions[0].Runs[1].Lambda == probe.Convergent {
				healthy = append(healthy, q.ID)
			}
		}
	})

	t.Run("IdenticalRegionsPassExit0", func(t *testing.T) {
		if len(healthy) < 10 {
			t.Fatalf("only %d healthy questions in region a: %v", len(healthy), healthy)
		}
		// A YAML gold set of ten questions every floor accepts.
		gold := filepath.Join(t.TempDir(), "gold.yaml")
		writeGoldYAML(t, gold, filepath.Join(corpus, "queries.jsonl"), filepath.Join(corpus, "qrels.tsv"), healthy[:10])
		code, out, errOut := runCLI(t, "probe", "--config", all, "--goldset", gold, "--regions", "pg,a,b", "--ef-search", "100", "--json")
		rep := probeJSON(t, out)
		if code != ExitEqual || !rep.Pass {
			t.Fatalf("exit %d, passed %v; stderr %s; checks %+v", code, rep.Pass, errOut, rep.Checks)
		}
		if rep.Drift.Max != 0 || rep.Drift.CI == nil || rep.Config.EfSearch != 100 || rep.Gold.Format != "yaml" {
			t.Errorf("drift %+v, ef_search %d, format %s: want 0 with a bootstrap CI (10 < 30 questions), 100, yaml", rep.Drift, rep.Config.EfSearch, rep.Gold.Format)
		}
		if e := rep.Embedding; e.QuestionTexts != 10 || e.QuestionNaive != 60 {
			t.Errorf("embedding %+v: want 10 question texts for a naive 60", e)
		}
		code, out, _ = runCLI(t, "probe", "--config", all, "--goldset", gold, "--regions", "pg,a,b", "--ef-search", "100")
		if code != ExitEqual || !strings.Contains(out, "PASS: every probe check passed") || !strings.Contains(out, "bootstrap CI of the max") {
			t.Errorf("text: exit %d\n%s", code, lastLines(out, 12))
		}
	})

	t.Run("ThresholdFlagsAreApplied", func(t *testing.T) {
		code, out, _ := runCLI(t, "probe", "--config", all, "--goldset", corpus, "--regions", "a,c", "--drift-max", "0.5", "--json")
		rep := probeJSON(t, out)
		if rep.Config.DriftMax != 0.5 || rep.Checks[0].Status != probe.Pass || rep.Checks[0].Threshold != 0.5 {
			t.Errorf("--drift-max 0.5: exit %d, config %+v, drift check %+v", code, rep.Config, rep.Checks[0])
		}
	})

	t.Run("TooFewQuestionsExit2", func(t *testing.T) {
		small := filepath.Join(t.TempDir(), "small.jsonl")
		if code, _, errOut := runCLI(t, "goldset", "sample", "--from", corpus, "--n", "9", "--seed", "3", "--out", small); code != ExitEqual {
			t.Fatalf("sample: exit %d: %s", code, errOut)
		}
		code, _, errOut := runCLI(t, "probe", "--config", all, "--goldset", small, "--regions", "a,b")
		if code != ExitUnknown || !strings.Contains(errOut, "has 9 questions, fewer than the 10 the drift gate needs") || !strings.Contains(errOut, "--min-questions") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
		code, out, errOut := runCLI(t, "probe", "--config", all, "--goldset", small, "--regions", "a,b", "--min-questions", "5", "--json")
		if code == ExitUnknown {
			t.Fatalf("--min-questions 5: exit 2: %s", errOut)
		}
		if rep := probeJSON(t, out); rep.Config.MinQuestions != 5 || len(rep.Questions) != 9 {
			t.Errorf("min_questions %d, %d questions; want 5 and 9", rep.Config.MinQuestions, len(rep.Questions))
		}
	})

	t.Run("DifferentModelTagsRefusedExit2", func(t *testing.T) {
		cfg := writeConfig(t, head+fmt.Sprintf("regions:\n  - name: a\n    vectors: %q\n  - name: b\n    vectors: %q\n    settings:\n      model_tag: openai:text-embedding-3-small\n", emb("a"), emb("b")))
		code, out, errOut := runCLI(t, "probe", "--config", cfg, "--goldset", corpus)
		// Refused before any probe runs: the region's declared model tag
		// contradicts the embedder the config names.
		if code != ExitUnknown || !strings.Contains(errOut, "region b: settings.model_tag \"openai:text-embedding-3-small\" contradicts") || out != "" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("BadGoldsetExit2", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "gold.yaml")
		os.WriteFile(bad, []byte("questions:\n  - id: a\n    question: q?\n    gold_ids: []\n"), 0o600)
		code, _, errOut := runCLI(t, "probe", "--config", all, "--goldset", bad)
		if code != ExitUnknown || !strings.Contains(errOut, bad+":4: questions[0].gold_ids: no gold ids") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
		code, _, errOut = runCLI(t, "goldset", "validate", bad)
		if code != ExitUnknown || !strings.Contains(errOut, bad+":4: questions[0].gold_ids") {
			t.Errorf("validate: exit %d, stderr %q", code, errOut)
		}
		code, _, errOut = runCLI(t, "probe", "--config", all)
		if code != ExitUnknown || !strings.Contains(errOut, "--goldset") {
			t.Errorf("no --goldset: exit %d, stderr %q", code, errOut)
		}
		code, _, errOut = runCLI(t, "probe", "--config", all, "--goldset", corpus, "--k", "20", "--ef-search", "10")
		if code != ExitUnknown || !strings.Contains(errOut, "probe.ef_search: 10 is below k=20") {
			t.Errorf("ef_search < k: exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("GoldsetSampleReproducible", func(t *testing.T) {
		code, a, _ := runCLI(t, "goldset", "sample", "--from", corpus, "--n", "20", "--seed", "7")
		_, b, _ := runCLI(t, "goldset", "sample", "--from", corpus, "--n", "20", "--seed", "7")
		_, c, _ := runCLI(t, "goldset", "sample", "--from", corpus, "--n", "20", "--seed", "8")
		if code != ExitEqual || a != b || a == c || strings.Count(a, "\n") != 20 {
			t.Fatalf("exit %d; seed 7 twice equal: %v; seed 8 differs: %v; lines %d", code, a == b, a != c, strings.Count(a, "\n"))
		}
		out := filepath.Join(t.TempDir(), "nightly.jsonl")
		runCLI(t, "goldset", "sample", "--from", corpus, "--n", "20", "--seed", "7", "--out", out)
		if got, _ := os.ReadFile(out); string(got) != a {
			t.Errorf("--out wrote a different sample than stdout")
		}
		code, v, _ := runCLI(t, "goldset", "validate", out)
		if code != ExitEqual || !strings.Contains(v, "valid jsonl gold set: 20 questions") {
			t.Errorf("validate the sample: exit %d, %q", code, v)
		}
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// writeGoldYAML writes the named BEIR queries as a YAML gold set, with a
// paraphrase each.
func writeGoldYAML(t *testing.T, path, queries, qrels string, ids []string) {
	t.Helper()
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	text := map[string]string{}
	qb, _ := os.ReadFile(queries)
	for _, line := range strings.Split(string(qb), "\n") {
		var q struct {
			ID   string `json:"_id"`
			Text string `json:"text"`
		}
		if json.Unmarshal([]byte(line), &q) == nil && want[q.ID] {
			text[q.ID] = q.Text
		}
	}
	gold := map[string][]string{}
	rb, _ := os.ReadFile(qrels)
	for _, line := range strings.Split(string(rb), "\n") {
		f := strings.Split(line, "\t")
		if len(f) == 3 && want[f[0]] {
			gold[f[0]] = append(gold[f[0]], f[1])
		}
	}
	sort.Strings(ids)
	var b strings.Builder
	b.WriteString("# gold questions taken from the SciFact subset\nquestions:\n")
	for _, id := range ids {
		q, _ := json.Marshal(text[id])
		g, _ := json.Marshal(gold[id])
		fmt.Fprintf(&b, "  - id: %q\n    question: %s\n    gold_ids: %s\n", id, q, g)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A probe flag given on the command line overrides the config's probe
// section; one not given leaves the config's value, not the default.
func TestProbeFlagsOverrideOnlyWhatIsGiven(t *testing.T) {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	d := probe.Defaults()
	probeFlags(fs, &d)
	if err := fs.Parse([]string{"--seeds", "3", "--search", "ann", "--drift-max", "0.05"}); err != nil {
		t.Fatal(err)
	}
	base := probe.Defaults()
	base.K, base.Seeds, base.EfSearch = 5, 2, 64
	got, err := resolveProbeFlags(fs, base)
	if err != nil {
		t.Fatal(err)
	}
	if got.K != 5 || got.EfSearch != 64 || got.Seeds != 3 || got.Search != "ann" || got.DriftMax != 0.05 {
		t.Fatalf("resolved %+v", got)
	}
}
