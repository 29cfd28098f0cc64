package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/demo"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
	"github.com/ragparity/ragparity/probe"
	"github.com/ragparity/ragparity/replicate"
)

// TestVerifyCLI runs `ragparity verify` as a nightly job would: two
// embedded regions rebuilt from the SciFact subset, local blob folders,
// file fences and health contracts served over loopback, every check on.
// It then breaks one thing at a time and checks the exit code, the check
// that says so, and that the region is named.
func TestVerifyCLI(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join("..", "..", "testdata", "scifact")
	regions := []string{"a", "b"}
	head := fmt.Sprintf("release: r-verify\nembedder: glove\ncache_dir: %q\n", filepath.Join(dir, "cache")) +
		// GloVe is a weak retriever: the release quality floors are relaxed
		// (gate.thresholds, so the pass below also shows they apply);
		// drift keeps its 0.03.
		"probe:\n  drift_max: 0.03\n  min_questions: 10\n" +
		fmt.Sprintf("gate:\n  signing_key: %q\n", writeSigningKey(t, dir)) +
		"  timeouts: {health: 1s}\n  thresholds: {delta_s_max: 0.9, coverage_min: 0.1, convergent_share_min: 0, lambda_agreement_min: 0}\n"

	var mu sync.Mutex
	contracts := map[string]http.HandlerFunc{}
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := contracts[strings.TrimPrefix(r.URL.Path, "/")]
		mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(health.Close)
	setHealth := func(region string, h http.HandlerFunc) { mu.Lock(); contracts[region] = h; mu.Unlock() }

	var body strings.Builder
	body.WriteString(head + "regions:\n")
	for _, r := range regions {
		blobs := filepath.Join(dir, "blobs", r)
		os.MkdirAll(blobs, 0o755)
		os.WriteFile(filepath.Join(blobs, "doc-1.txt"), []byte("same bytes"), 0o644)
		fmt.Fprintf(&body, "  - name: %s\n    vectors: %q\n    blobs: %q\n    health: %q\n    dedupe_kv: %q\n", r,
			"embedded://"+filepath.Join(dir, "vectors", r)+"?collection=chunks", "file://"+blobs,
			health.URL+"/"+r, "file://"+filepath.Join(dir, "fence", r+".db"))
	}
	cfg := writeConfig(t, body.String())

	code, out, errOut := runCLI(t, "rebuild", "--config", cfg, "--source", filepath.Join(corpus, "corpus.jsonl"), "--promote", "--json")
	if code != ExitEqual {
		t.Fatalf("rebuild: exit %d\n%s%s", code, out, errOut)
	}
	var rb replicate.Result
	if err := json.Unmarshal([]byte(out), &rb); err != nil {
		t.Fatal(err)
	}
	e, err := gate.OpenEmbedder("glove")
	if err != nil {
		t.Fatal(err)
	}
	contract := func(ih string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"schema_rev": "s1", "model_tag": e.ModelTag(), "secrets_rev": "k1", "index_hash": ih})
		}
	}
	for _, r := range regions {
		setHealth(r, contract(rb.IndexHash[r]))
	}

	// The gold set: SciFact questions on which GloVe's λ is never chaotic
	// (the playbook's "no chaotic run" is not relaxable), picked by a
	// probe run as an engineer would.
	code, out, errOut = runCLI(t, "probe", "--config", cfg, "--goldset", corpus, "--regions", "a", "--json")
	var pr probe.Report
	if err := json.Unmarshal([]byte(out), &pr); err != nil {
		t.Fatalf("probe --json: exit %d: %v\n%s", code, err, errOut)
	}
	var calm []string
	for _, q := range pr.Questions {
		ok := true
		for _, run := range q.Regions[0].Runs {
			ok = ok && run.Lambda != probe.Chaotic
		}
		if ok {
			calm = append(calm, q.ID)
		}
	}
	if len(calm) < 20 {
		t.Fatalf("only %d questions without a chaotic λ run", len(calm))
	}
	gold := filepath.Join(dir, "gold.yaml")
	writeGoldYAML(t, gold, filepath.Join(corpus, "queries.jsonl"), filepath.Join(corpus, "qrels.tsv"), calm[:20])

	schema, err := jsonschema.NewCompiler().Compile(filepath.Join("..", "..", "schemas", "verdict.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	verify := func(t *testing.T, want int) *gate.Verdict {
		t.Helper()
		code, out, errOut := runCLI(t, "verify", "--config", cfg, "--goldset", gold, "--json")
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
		if err != nil {
			t.Fatalf("stdout is not one JSON document: %v\n%.500s\n%s", err, out, errOut)
		}
		if err := schema.Validate(doc); err != nil {
			t.Fatalf("verify --json does not match schemas/verdict.schema.json: %v", err)
		}
		var v gate.Verdict
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Fatalf("exit %d, want %d; decision %s; checks %+v\n%s", code, want, v.Decision, v.Checks, errOut)
		}
		return &v
	}
	checkOf := func(v *gate.Verdict, name string) gate.Check {
		for _, c := range v.Checks {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("verdict has no %s check", name)
		return gate.Check{}
	}

	t.Run("PassWithMeasures", func(t *testing.T) {
		v := verify(t, ExitEqual)
		if th := checkOf(v, gate.CheckProbes).Threshold; !strings.Contains(th, "λ state equal on >= 0 of runs") || !strings.Contains(th, "drift <= 0.03") {
			t.Errorf("probes threshold %q: want gate.thresholds' λ agreement 0 and probe:'s drift <= 0.03", th)
		}
		for _, r := range v.Regions {
			if !r.Admit || r.IndexHash != rb.IndexHash[r.Name] {
				t.Errorf("region %+v: want admitted with the rebuilt INDEX_HASH %s", r, rb.IndexHash[r.Name])
			}
		}
		// The figures the metrics export: ΔS and λ counts per region, the
		// drift, and the dedupe counters the rebuild left in each fence.
		got := map[string]float64{}
		for _, name := range []string{gate.CheckProbes, gate.CheckDedupeKV} {
			for _, m := range checkOf(v, name).Measures {
				got[m.Name+"/"+m.Region] = m.Value
			}
		}
		if _, ok := got[gate.MeasureDeltaSDrift+"/"]; !ok {
			t.Errorf("no %s measure: %v", gate.MeasureDeltaSDrift, got)
		}
		for _, r := range regions {
			if ds := got[gate.MeasureDeltaS+"/"+r]; ds <= 0 || ds > 1 {
				t.Errorf("region %s: delta_s %v, want in (0, 1]", r, ds)
			}
			runs := 0.0
			for _, l := range []string{"convergent", "recursive", "divergent", "chaotic"} {
				runs += got[gate.MeasureLambdaPrefix+l+"/"+r]
			}
			// 20 questions on two seeds.
			if runs != 40 {
				t.Errorf("region %s: %v λ runs over all states, want two seeds' worth", r, runs)
			}
			if got[gate.MeasureDedupeMisses+"/"+r] != float64(rb.Written[r]) {
				t.Errorf("region %s: dedupe misses %v, want the %d chunks the rebuild wrote", r, got[gate.MeasureDedupeMisses+"/"+r], rb.Written[r])
			}
		}
	})

	// verify records its verdict and its detail in the history store, like
	// serve; a report rebuilt from the verdict file reads the detail from
	// there (--config), and without it says plainly the detail was not
	// kept rather than "not measured".
	t.Run("RecordedInStoreWithDetail", func(t *testing.T) {
		v := verify(t, ExitEqual)
		c, err := config.Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		st, err := server.OpenStore(context.Background(), c.Gate.Store, c.CacheRoot())
		if err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(context.Background(), v.ID)
		st.Close()
		if err != nil || got.Signature != v.Signature {
			t.Fatalf("verdict %s not in the history store: %v", v.ID, err)
		}
		vb, _ := json.Marshal(v)
		vf := filepath.Join(t.TempDir(), "latest.json")
		os.WriteFile(vf, vb, 0o644)
		out1 := t.TempDir()
		if code, _, errOut := runCLI(t, "report", "--verdict", vf, "--config", cfg, "--out", out1, "--format", "md"); code != 0 {
			t.Fatalf("report --config: exit %d %s", code, errOut)
		}
		md, _ := os.ReadFile(filepath.Join(out1, "report.md"))
		if strings.Contains(string(md), "not measured") || strings.Contains(string(md), "not kept") {
			t.Errorf("report from the stored verdict lacks the probe detail:\n%s", md)
		}
		out2 := t.TempDir()
		if code, _, errOut := runCLI(t, "report", "--verdict", vf, "--out", out2, "--format", "md"); code != 0 {
			t.Fatalf("report: exit %d %s", code, errOut)
		}
		md, _ = os.ReadFile(filepath.Join(out2, "report.md"))
		if strings.Contains(string(md), "not measured") || !strings.Contains(string(md), "not kept") {
			t.Errorf("report without the store should say the detail was not kept:\n%s", md)
		}
	})

	// gate.Run as a library (no hooks, nothing of package main) decides
	// exactly what the CLI decides: the same INDEX_HASH as `hash`, the
	// same blob manifests and the same probe result.
	t.Run("LibraryAgreesWithCLI", func(t *testing.T) {
		cli := verify(t, ExitEqual)
		c, err := config.Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := gate.LoadSigner("")
		if err != nil {
			t.Fatal(err)
		}
		lib, det, err := gate.Run(context.Background(), c, gate.Options{Signer: signer, Goldset: gold})
		if err != nil {
			t.Fatal(err)
		}
		if lib.Decision != cli.Decision || det == nil || det.Probes == nil || len(det.Probes.Questions) != 20 {
			t.Fatalf("library decision %s (detail %+v), CLI %s", lib.Decision, det, cli.Decision)
		}
		_, out, _ := runCLI(t, "hash", "--config", cfg, "--json")
		var h gate.HashJSON
		if err := json.Unmarshal([]byte(out), &h); err != nil {
			t.Fatal(err)
		}
		for i, r := range lib.Regions {
			if r.IndexHash == "" || r.IndexHash != cli.Regions[i].IndexHash || r.IndexHash != h.Regions[i].IndexHash {
				t.Errorf("region %s: INDEX_HASH library %s, verify %s, hash %s", r.Name, r.IndexHash, cli.Regions[i].IndexHash, h.Regions[i].IndexHash)
			}
			if r.ManifestHash == "" || r.ManifestHash != cli.Regions[i].ManifestHash {
				t.Errorf("region %s: manifest library %s, verify %s", r.Name, r.ManifestHash, cli.Regions[i].ManifestHash)
			}
		}
		for _, name := range []string{gate.CheckBlobs, gate.CheckProbes} {
			l, v := checkOf(lib, name), checkOf(cli, name)
			if l.Status != gate.Pass || l.Status != v.Status || l.Figure != v.Figure {
				t.Errorf("%s: library %s %q, verify %s %q", name, l.Status, l.Figure, v.Status, v.Figure)
			}
		}
	})

	t.Run("HealthDownIsInconclusive", func(t *testing.T) {
		setHealth("b", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "upstream down", 503) })
		defer setHealth("b", contract(rb.IndexHash["b"]))
		v := verify(t, ExitUnknown)
		if c := checkOf(v, gate.CheckHealth); c.Status != gate.Inconclusive || !strings.Contains(c.Error, "b") {
			t.Errorf("health check %+v, want inconclusive naming b", c)
		}
		for _, r := range v.Regions {
			if r.Admit {
				t.Errorf("region %s admitted by an inconclusive verdict", r.Name)
			}
		}
	})

	t.Run("BareOKIsFail", func(t *testing.T) {
		setHealth("b", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
		defer setHealth("b", contract(rb.IndexHash["b"]))
		v := verify(t, ExitDiffer)
		c := checkOf(v, gate.CheckHealth)
		if c.Status != gate.Fail || strings.Join(c.FailedRegions, ",") != "b" {
			t.Errorf("health check %+v, want fail naming b only", c)
		}
	})

	t.Run("ClaimedHashDisagreesIsFail", func(t *testing.T) {
		setHealth("a", contract(strings.Repeat("0", 64)))
		defer setHealth("a", contract(rb.IndexHash["a"]))
		v := verify(t, ExitDiffer)
		c := checkOf(v, gate.CheckHealth)
		if c.Status != gate.Fail || !strings.Contains(strings.Join(c.Evidence, "\n"), "a") {
			t.Errorf("health check %+v, want fail naming a", c)
		}
	})

	// Two regions and no baseline: when they differ, neither can be
	// decided (no majority), and the message says to make a baseline.
	t.Run("TwoRegionsNoBaselineUndecided", func(t *testing.T) {
		setHealth("b", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) })
		defer setHealth("b", contract(rb.IndexHash["b"]))
		v := verify(t, ExitUnknown)
		for _, r := range v.Regions {
			if r.Admit || r.Status != gate.Inconclusive {
				t.Errorf("region %+v, want inconclusive", r)
			}
		}
		if !strings.Contains(strings.Join(v.Regions[0].Reasons, " "), "baseline create") {
			t.Errorf("region a's reasons %q do not say to create a baseline", v.Regions[0].Reasons)
		}
	})

	// With a baseline taken from a, each region is decided on its own.
	code, out, errOut = runCLI(t, "baseline", "create", "--config", cfg, "--from", "a", "--goldset", gold)
	if code != ExitEqual || !strings.Contains(out, "baseline b") {
		t.Fatalf("baseline create: exit %d\n%s%s", code, out, errOut)
	}

	t.Run("BaselineHealthDownKeepsTheOtherAdmitted", func(t *testing.T) {
		setHealth("b", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) })
		defer setHealth("b", contract(rb.IndexHash["b"]))
		v := verify(t, ExitUnknown)
		if v.Decision != gate.Degraded || v.BaselineID == "" {
			t.Fatalf("decision %s baseline %q, want degraded against the baseline", v.Decision, v.BaselineID)
		}
		if ra, _ := v.Region("a"); !ra.Admit || ra.Status != gate.Pass {
			t.Errorf("region a %+v, want admitted", ra)
		}
		if rbv, _ := v.Region("b"); rbv.Admit || rbv.Status != gate.Inconclusive {
			t.Errorf("region b %+v, want inconclusive", rbv)
		}
	})

	t.Run("StaleChunksFailIndexHash", func(t *testing.T) {
		n, err := demo.InjectStaleChunks(context.Background(), filepath.Join(dir, "vectors", "b"), "7912", "18670")
		if err != nil || n == 0 {
			t.Fatalf("InjectStaleChunks: %d, %v", n, err)
		}
		v := verify(t, ExitDiffer)
		c := checkOf(v, gate.CheckIndexHash)
		if c.Status != gate.Fail || fmt.Sprint(c.FailedRegions) != "[b]" || !strings.Contains(strings.Join(c.Evidence, "\n"), "b: id ") {
			t.Errorf("index_hash check %+v, want b failed with the differing ids", c)
		}
		if ra, _ := v.Region("a"); !ra.Admit || v.Decision != gate.Degraded {
			t.Errorf("decision %s, region a %+v: want a admitted", v.Decision, ra)
		}
	})
}

// writeSigningKey writes a new Ed25519 signing key (PEM PKCS#8) under dir.
func writeSigningKey(t *testing.T, dir string) string {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := gate.MarshalPrivateKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "signing.key")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
