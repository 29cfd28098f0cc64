package config

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Setenv("RP_PG_PASS", "s3cret")
	src := `release: r2026-11-26
timeout: 30s
regions:
  - name: us-east-1
    vectors: "postgres://postgres:${RP_PG_PASS}@127.0.0.1:5432/test?table=chunks"
  - name: local
    vectors: "embedded:///tmp/x?collection=c"
    settings:
      analyzer: v2
settings:
  model_tag: "glove-100d"
  dim_hint: 3
`
	c, err := Parse("regions.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got, want := c.Regions[0].Vectors, "postgres://postgres:s3cret@127.0.0.1:5432/test?table=chunks"; got != want {
		t.Errorf("expanded URL = %q, want %q", got, want)
	}
	if got, want := c.Timeout, 30*time.Second; got != want {
		t.Errorf("Timeout = %v, want %v", got, want)
	}
	d := c.DeclaredSettings(&c.Regions[1])
	if d["analyzer"] != "v2" || d["model_tag"] != "glove-100d" {
		t.Errorf("DeclaredSettings = %v", d)
	}
}

func TestErrorsNameFileLineAndField(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"UnknownKey", "release: x\nregions:\n  - name: a\n    vectorz: b\n", []string{"cfg.yaml:4", `unknown field "vectorz"`}},
		{"UnknownTopKey", "release: x\nregion: []\n", []string{"cfg.yaml:2", `unknown field "region"`}},
		{"Syntax", "release: [x\n", []string{"cfg.yaml:1"}},
		{"WrongType", "regions: 3\n", []string{"cfg.yaml:1", "sequence"}},
		{"NoRegions", "release: x\n", []string{"cfg.yaml", "regions", "at least one region"}},
		{"MissingName", "regions:\n  - vectors: embedded:///x\n", []string{"cfg.yaml:2", "regions[0]", "name is required"}},
		{"DuplicateName", "regions:\n  - name: a\n  - name: a\n", []string{"cfg.yaml:3", "regions[1].name", `"a"`}},
		{"BadURL", "regions:\n  - name: a\n    vectors: \"postgres://h:12ab/x\"\n", []string{"cfg.yaml:3", "regions[0].vectors", "not a valid URL"}},
		{"NoScheme", "regions:\n  - name: a\n    vectors: \"/tmp/x\"\n", []string{"cfg.yaml:3", "no scheme"}},
		{"UnsetEnv", "regions:\n  - name: a\n    vectors: \"postgres://u:${RP_SURELY_UNSET_VAR}@h/db\"\n", []string{"cfg.yaml:3", "RP_SURELY_UNSET_VAR is not set"}},
		{"BadBuckets", "hash:\n  buckets: 1000\nregions:\n  - name: a\n", []string{"cfg.yaml:2", "hash.buckets", "power of two"}},
		{"Empty", "", []string{"cfg.yaml", "empty config"}},
		{"BadProbeSearch", "regions:\n  - name: a\nprobe:\n  k: 10\n  search: fuzzy\n", []string{"cfg.yaml:5", "probe.search", `"fuzzy"`}},
		{"BadLambdaWindow", "regions:\n  - name: a\nprobe:\n  lambda_window: 0\n", []string{"cfg.yaml:4", "probe.lambda_window"}},
		{"BadChaosStep", "regions:\n  - name: a\nprobe:\n  lambda_chaos_step: 2\n", []string{"cfg.yaml:4", "probe.lambda_chaos_step", "not in [0, 1]"}},
		{"NegativeChaoticRuns", "regions:\n  - name: a\nprobe:\n  chaotic_runs_max: -1\n", []string{"cfg.yaml:4", "probe.chaotic_runs_max"}},
		{"BadANNRecall", "regions:\n  - name: a\nprobe:\n  ann_recall_min: 1.5\n", []string{"cfg.yaml:4", "probe.ann_recall_min"}},
		{"BadGRPCAddr", "gate:\n  grpc_addr: \"9001\"\nregions:\n  - name: a\n", []string{"cfg.yaml:2", "gate.grpc_addr", "want host:port"}},
		{"BadGateThreshold", "regions:\n  - name: a\ngate:\n  thresholds:\n    drift_max: -0.1\n", []string{"cfg.yaml:5", "gate.thresholds.drift_max"}},
		{"UnknownGateThreshold", "regions:\n  - name: a\ngate:\n  thresholds:\n    drift: 0.1\n", []string{"cfg.yaml:5", `unknown field "drift"`}},
		{"AgentNoKeys", "regions:\n  - name: a\n    agent:\n      url: https://agent-a:8443\n", []string{"cfg.yaml:4", "regions[0].agent.public_keys", "trusted agent public key"}},
		{"AgentBadURL", "regions:\n  - name: a\n    agent:\n      url: ftp://x\n      public_keys: [k]\n", []string{"cfg.yaml:4", "regions[0].agent.url", "https://"}},
		{"AgentURLWithToken", "regions:\n  - name: a\n    agent:\n      url: \"https://h:1/?token=s3cr3t\"\n      public_keys: [k]\n", []string{"cfg.yaml:4", "regions[0].agent.url", "token:"}},
		{"AgentUnknownField", "regions:\n  - name: a\n    agent:\n      uri: https://h\n", []string{"cfg.yaml:4", `unknown field "uri"`}},
		{"AgentCertWithoutKey", "regions:\n  - name: a\n    agent:\n      url: https://h:1\n      public_keys: [k]\n      cert: c.pem\n", []string{"cfg.yaml:6", "regions[0].agent.cert", "go together"}},
		{"AgentServerUnknownRegion", "regions:\n  - name: a\nagent:\n  region: b\n", []string{"cfg.yaml:4", "agent.region", `"b"`}},
		{"AgentServerMaxAgeBelowInterval", "regions:\n  - name: a\nagent:\n  interval: 1h\n  max_age: 10m\n", []string{"cfg.yaml:5", "agent.max_age", "shorter than interval"}},
		{"AgentServerClientCAWithoutTLS", "regions:\n  - name: a\nagent:\n  client_ca: ca.pem\n", []string{"cfg.yaml:4", "agent.client_ca", "need TLS"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("cfg.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	t.Setenv("RP_PW", "hunter2")
	_, err := Parse("c.yaml", []byte("regions:\n  - name: a\n    vectors: \"postgres://u:${RP_PW}@h:12ab/x\"\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v leaks the password or is nil", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("release: x\nregions:\n  - name: a\n    vectors: embedded:///tmp/x\n"))
	f.Add([]byte("regions:\n  - name: a\n    vectors: \"postgres://u:${X:-p}@h/db?table=t\"\n"))
	f.Add([]byte("hash: {buckets: 64}\nregions: [{name: a}]\nsettings: {a: [1, {b: 2}]}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := Parse("fuzz.yaml", src)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(c.Regions) == 0 {
			t.Fatalf("valid config without regions")
		}
	})
}

// gate.thresholds override probe: for the gate only; a field left out
// keeps probe:'s value.
func TestGateThresholds(t *testing.T) {
	c, err := Parse("cfg.yaml", []byte("regions:\n  - name: a\nprobe:\n  drift_max: 0.05\n  coverage_min: 0.4\ngate:\n  thresholds:\n    drift_max: 0.02\n    min_questions: 20\n"))
	if err != nil {
		t.Fatal(err)
	}
	gp := c.GateProbe()
	if gp.DriftMax != 0.02 || gp.MinQuestions != 20 || gp.CoverageMin != 0.4 || gp.DeltaSMax != 0.45 {
		t.Errorf("gate probe config %+v: want drift_max 0.02, min_questions 20 (gate), coverage_min 0.4 (probe:), delta_s_max 0.45 (default)", gp)
	}
	if c.Probe.DriftMax != 0.05 || c.Probe.MinQuestions != 10 {
		t.Errorf("probe: changed to %+v; the overrides are the gate's only", c.Probe)
	}
}

// TestProbeLambdaKeys: the λ thresholds, the chaotic-run allowances, the
// search mode and the ANN-health floor are config keys; left out, they
// keep metrics.md's defaults (ef_search 100, exact search).
func TestProbeLambdaKeys(t *testing.T) {
	c, err := Parse("cfg.yaml", []byte("regions:\n  - name: a\nprobe:\n  lambda_chaos_step: 0.1\n  chaotic_runs_max: 2\n  new_chaotic_max: 1\n  ann_recall_min: 0.85\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Probe
	if p.LambdaChaosStep != 0.1 || p.ChaoticRunsMax != 2 || p.NewChaoticMax != 1 || p.ANNRecallMin != 0.85 {
		t.Errorf("probe config %+v: keys not applied", p)
	}
	if p.EfSearch != 100 || p.Search != "exact" || p.LambdaNetMove != 0.02 || p.LambdaWindow != 5 {
		t.Errorf("defaults: ef_search %d, search %q, net move %v, window %d: want 100, exact, 0.02, 5", p.EfSearch, p.Search, p.LambdaNetMove, p.LambdaWindow)
	}
}

// Issue 15: each of these inputs gets a file:line error naming the field.
func TestHostileInputsNameFileLineAndField(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"ToleranceNaN", "hash:\n  tolerance: .nan\nregions:\n  - name: a\n", []string{"cfg.yaml:2", "hash.tolerance", "finite"}},
		{"ToleranceInf", "hash:\n  tolerance: .inf\nregions:\n  - name: a\n", []string{"cfg.yaml:2", "hash.tolerance", "finite"}},
		{"ZeroTimeout", "regions:\n  - name: a\ngate:\n  timeouts:\n    health: 0s\n", []string{"cfg.yaml:5", "gate.timeouts.health", "positive"}},
		{"NegativeTimeout", "regions:\n  - name: a\ngate:\n  timeouts:\n    blobs: -5s\n", []string{"cfg.yaml:5", "gate.timeouts.blobs", "positive"}},
		{"DurationOverflow", "regions:\n  - name: a\ngate:\n  verdict_ttl: 9999999999h\n", []string{"cfg.yaml:4"}},
		{"RehashEveryNegative", "regions:\n  - name: a\nblobs:\n  rehash_every: -1h\n", []string{"cfg.yaml:4", "blobs.rehash_every", "positive"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("cfg.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// schedule: 0 is documented as "only on POST /v1/verify and at start".
func TestScheduleZeroAccepted(t *testing.T) {
	for _, v := range []string{"0", "0s"} {
		c, err := Parse("cfg.yaml", []byte("regions:\n  - name: a\ngate:\n  schedule: "+v+"\n"))
		if err != nil {
			t.Fatalf("schedule: %s: %v", v, err)
		}
		if c.Gate.Schedule != 0 {
			t.Errorf("schedule: %s = %v, want 0", v, c.Gate.Schedule)
		}
	}
}

func TestBlobsRehashEveryDefault(t *testing.T) {
	c, err := Parse("cfg.yaml", []byte("regions:\n  - name: a\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Blobs.RehashEvery, 24*time.Hour; got != want {
		t.Errorf("blobs.rehash_every default %v, want %v", got, want)
	}
	c, err = Parse("cfg.yaml", []byte("regions:\n  - name: a\nblobs:\n  rehash_every: 6h\n"))
	if err != nil || c.Blobs.RehashEvery != 6*time.Hour {
		t.Fatalf("rehash_every: 6h gives %v, %v", c.Blobs.RehashEvery, err)
	}
}
