package gate_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/ragparity/ragparity/adapters"
	_ "github.com/ragparity/ragparity/adapters/all"
	_ "github.com/ragparity/ragparity/adapters/qdrant"
	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
	"github.com/ragparity/ragparity/verifier"
)

type fixture struct {
	t       *testing.T
	vectors map[string]string
	fences  map[string]string
	health  map[string]http.HandlerFunc
	extra   string
	// agents holds YAML lines added to a region (its agent: block).
	agents map[string]string
}

func newFixture(t *testing.T, regions ...string) *fixture {
	f := &fixture{t: t, vectors: map[string]string{}, fences: map[string]string{}, health: map[string]http.HandlerFunc{}}
	for _, r := range regions {
		f.load(r, vectortest.Points(parity.IDString, 300, 11))
		p := filepath.Join(t.TempDir(), "fence.db")
		fe, err := fence.Open("file://"+p, "")
		if err != nil {
			t.Fatal(err)
		}
		fe.MarkWarm(context.Background(), fence.DedupeStat{Hits: 7, Misses: 300})
		fe.Close()
		f.fences[r] = "file://" + p
	}
	for _, r := range regions {
		f.health[r] = f.contract(r, nil)
	}
	return f
}

func (f *fixture) load(region string, pts []parity.Point) {
	u := fmt.Sprintf("embedded://%s?collection=chunks", f.t.TempDir())
	s, err := adapters.OpenVector(context.Background(), u)
	if err != nil {
		f.t.Fatal(err)
	}
	vectortest.Load(f.t, s, vectortest.Spec(parity.IDString), pts)
	f.vectors[region] = u
}

func (f *fixture) indexHash(region string) string {
	s, _ := adapters.OpenVector(context.Background(), f.vectors[region])
	sc, err := verifier.HashStore(context.Background(), s, verifier.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	return sc.IndexHash().Hex()
}

// contract answers the health contract with the region's real index hash,
// with overrides (a value of "" removes the field).
func (f *fixture) contract(region string, over map[string]string) http.HandlerFunc {
	ih := f.indexHash(region)
	return func(w http.ResponseWriter, r *http.Request) {
		m := map[string]string{"schema_rev": "s7", "model_tag": "m1", "secrets_rev": "k3", "index_hash": ih}
		for k, v := range over {
			if v == "" {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		json.NewEncoder(w).Encode(m)
	}
}

func (f *fixture) config(extra string) *config.Config {
	var b strings.Builder
	fmt.Fprintf(&b, "release: r1\ngate:\n  skip: [blobs, probes]\n  timeouts: {health: 500ms, dedupe_kv: 2s, index_hash: 5s}\n%s\nregions:\n", extra)
	for _, r := range []string{"us", "eu", "ap"} {
		if _, ok := f.vectors[r]; !ok {
			continue
		}
		h := f.health[r]
		srv := httptest.NewServer(h)
		f.t.Cleanup(srv.Close)
		fmt.Fprintf(&b, "  - name: %s\n    vectors: %q\n    health: %q\n    dedupe_kv: %q\n", r, f.vectors[r], srv.URL, f.fences[r])
		b.WriteString(f.agents[r])
	}
	c, err := config.Parse("gate.yaml", []byte(b.String()))
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

var key = func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(rand.Reader); return k }()

func run(t *testing.T, c *config.Config) *gate.Verdict {
	t.Helper()
	v, _, err := gate.Run(context.Background(), c, gate.Options{Signer: &gate.Signer{Key: key}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("verdict signature: %v", err)
	}
	return v
}

func check(v *gate.Verdict, name string) gate.Check {
	for _, c := range v.Checks {
		if c.Name == name {
			return c
		}
	}
	return gate.Check{}
}

func regionStatus(v *gate.Verdict) string {
	var s []string
	for _, r := range v.Regions {
		s = append(s, r.Name+"="+string(r.Status))
	}
	return strings.Join(s, " ")
}

func admitted(v *gate.Verdict) string {
	var s []string
	for _, r := range v.Regions {
		if r.Admit {
			s = append(s, r.Name)
		}
	}
	return strings.Join(s, ",")
}

func TestGatePasses(t *testing.T) {
	f := newFixture(t, "us", "eu")
	v := run(t, f.config(""))
	if v.Decision != gate.Pass || admitted(v) != "us,eu" {
		t.Fatalf("decision %s, admitted %q; checks %+v", v.Decision, admitted(v), v.Checks)
	}
	if got := check(v, gate.CheckBlobs).Status; got != gate.Skipped {
		t.Errorf("blobs status %s, want skipped", got)
	}
	if v.Regions[0].SchemaRev != "s7" || v.Regions[0].IndexHash == "" || v.InputsDigest == "" {
		t.Errorf("region verdict %+v, inputs digest %q", v.Regions[0], v.InputsDigest)
	}
	if !v.ExpiresAt.After(v.CreatedAt) {
		t.Errorf("expires_at %v not after created_at %v", v.ExpiresAt, v.CreatedAt)
	}
	// The dedupe check reports each region's running hit/miss totals.
	got := map[string]float64{}
	for _, m := range check(v, gate.CheckDedupeKV).Measures {
		got[m.Name+"/"+m.Region] = m.Value
	}
	for _, r := range []string{"us", "eu"} {
		if got[gate.MeasureDedupeHits+"/"+r] != 7 || got[gate.MeasureDedupeMisses+"/"+r] != 300 {
			t.Errorf("dedupe measures %v, want hits 7 misses 300 for %s", got, r)
		}
	}
	// Tampering breaks the signature.
	v.Regions[0].Admit = false
	if err := v.Verify(key.Public().(ed25519.PublicKey)); err == nil {
		t.Errorf("a tampered verdict still verifies")
	}
}

func TestGateIndexDriftBlocksOnlyTheDriftedRegion(t *testing.T) {
	f := newFixture(t, "us", "eu", "ap")
	pts := vectortest.Points(parity.IDString, 300, 11)
	pts[42].Text = "stale text after a partial reindex"
	f.load("ap", pts)
	f.health["ap"] = f.contract("ap", nil)
	v := run(t, f.config(""))
	if v.Decision != gate.Degraded {
		t.Fatalf("decision %s, want degraded", v.Decision)
	}
	if got := regionStatus(v); got != "us=pass eu=pass ap=fail" {
		t.Errorf("region statuses %q", got)
	}
	if got := admitted(v); got != "us,eu" {
		t.Errorf("admitted %q, want us,eu", got)
	}
	c := check(v, gate.CheckIndexHash)
	if c.Status != gate.Fail || fmt.Sprint(c.FailedRegions) != "[ap]" || !strings.Contains(strings.Join(c.Evidence, "\n"), "ap: id doc-00042 differs in text") {
		t.Errorf("index check %+v", c)
	}
}

func TestGateHealthContract(t *testing.T) {
	cases := []struct {
		name     string
		handler  func(f *fixture) http.HandlerFunc
		eu       gate.Status // eu's health result; us is gate.primary and healthy
		evidence string
	}{
		{"Bare200", func(*fixture) http.HandlerFunc { return func(http.ResponseWriter, *http.Request) {} }, gate.Fail, "bare 200"},
		{"NotJSON", func(*fixture) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("OK")) }
		}, gate.Fail, "not a JSON object"},
		{"MissingField", func(f *fixture) http.HandlerFunc { return f.contract("eu", map[string]string{"secrets_rev": ""}) }, gate.Fail, "missing secrets_rev"},
		{"Disagrees", func(f *fixture) http.HandlerFunc { return f.contract("eu", map[string]string{"schema_rev": "s8"}) }, gate.Fail, `claims schema_rev "s8", the reference expects "s7"`},
		{"WrongIndexHash", func(f *fixture) http.HandlerFunc { return f.contract("eu", map[string]string{"index_hash": "abc"}) }, gate.Fail, "claims index_hash abc"},
		{"Answers503", func(*fixture) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }
		}, gate.Inconclusive, ""},
		{"TimesOut", func(*fixture) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(3 * time.Second):
				}
			}
		}, gate.Inconclusive, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "us", "eu")
			f.health["eu"] = tc.handler(f)
			start := time.Now()
			c := f.config("")
			c.Gate.Primary = "us"
			v := run(t, c)
			// eu alone is blocked; us stays admitted (the gate exists for
			// failover).
			if v.Decision != gate.Degraded || admitted(v) != "us" {
				t.Fatalf("decision %s admitted %q, want degraded with us; health %+v", v.Decision, admitted(v), check(v, gate.CheckHealth))
			}
			if got, want := regionStatus(v), "us=pass eu="+string(tc.eu); got != want {
				t.Errorf("region statuses %q, want %q", got, want)
			}
			if ev := strings.Join(check(v, gate.CheckHealth).Evidence, "\n"); !strings.Contains(ev, tc.evidence) {
				t.Errorf("health evidence %q does not contain %q", ev, tc.evidence)
			}
			if time.Since(start) > 2500*time.Millisecond {
				t.Errorf("verify took %v with a 500ms health timeout", time.Since(start))
			}
		})
	}
}

func TestGateInconclusiveFaults(t *testing.T) {
	t.Run("RedisDown", func(t *testing.T) {
		f := newFixture(t, "us", "eu")
		f.fences["eu"] = "redis://127.0.0.1:1/0"
		v := run(t, f.config(""))
		if v.Decision != gate.Degraded || admitted(v) != "us" || regionStatus(v) != "us=pass eu=inconclusive" || check(v, gate.CheckDedupeKV).Status != gate.Inconclusive {
			t.Errorf("decision %s admitted %q dedupe %+v", v.Decision, admitted(v), check(v, gate.CheckDedupeKV))
		}
	})
	t.Run("ColdFenceFails", func(t *testing.T) {
		f := newFixture(t, "us", "eu")
		f.fences["eu"] = "file://" + filepath.Join(t.TempDir(), "cold.db")
		v := run(t, f.config(""))
		if v.Decision != gate.Degraded || admitted(v) != "us" || regionStatus(v) != "us=pass eu=fail" {
			t.Errorf("decision %s admitted %q", v.Decision, admitted(v))
		}
	})
	t.Run("StoreHangs", func(t *testing.T) {
		f := newFixture(t, "us", "eu")
		srv := qdranttest.Start(t)
		s, _ := adapters.OpenVector(context.Background(), srv.URL("hang")+"?text=content&page_size=50")
		vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 300, 1))
		srv.ScrollHook = func(ctx context.Context, page int) error {
			if page > 0 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}
		f.vectors["eu"] = srv.URL("hang") + "?text=content&page_size=50"
		start := time.Now()
		v := run(t, f.config("timeout: 1s"))
		if v.Decision != gate.Inconclusive || admitted(v) != "" {
			t.Errorf("decision %s admitted %q", v.Decision, admitted(v))
		}
		c := check(v, gate.CheckIndexHash)
		if c.Status != gate.Inconclusive || !strings.Contains(c.Error, "region eu") {
			t.Errorf("index check %+v", c)
		}
		if el := time.Since(start); el > 8*time.Second {
			t.Errorf("took %v", el)
		}
	})
	t.Run("UnconfiguredChecksAreInconclusive", func(t *testing.T) {
		f := newFixture(t, "us", "eu")
		c := f.config("")
		c.Gate.Skip = nil
		v := run(t, c)
		if v.Decision != gate.Inconclusive || check(v, gate.CheckBlobs).Status != gate.Inconclusive || check(v, gate.CheckProbes).Status != gate.Inconclusive {
			t.Errorf("decision %s blobs %s probes %s", v.Decision, check(v, gate.CheckBlobs).Status, check(v, gate.CheckProbes).Status)
		}
	})
}

func TestAdmitter(t *testing.T) {
	now := time.Now()
	v := &gate.Verdict{Release: "r1", Decision: gate.Fail, CreatedAt: now, ExpiresAt: now.Add(time.Minute), Regions: []gate.RegionVerdict{
		{Name: "us", Admit: true, IndexHash: "h1", SchemaRev: "s1"},
		{Name: "eu", Admit: false, IndexHash: "h2", SchemaRev: "s1"},
		{Name: "ap", Admit: true, IndexHash: "h1", SchemaRev: "s1"},
	}}
	a := server.NewAdmitter(v, map[string][]string{"eu-client": {"eu", "ap", "us"}})
	cases := []struct {
		q      server.AdmitRequest
		code   int
		region string
	}{
		{server.AdmitRequest{Pin: "us"}, 200, "us"},
		{server.AdmitRequest{Pin: "eu", ClientRegion: "eu-client", Fallback: server.FallbackRoute}, 200, "ap"},
		{server.AdmitRequest{Pin: "eu", ClientRegion: "eu-client"}, 421, "ap"},
		{server.AdmitRequest{ClientRegion: "eu-client"}, 200, "ap"},
		{server.AdmitRequest{Pin: "us", IndexHash: "h2"}, 503, ""},
		{server.AdmitRequest{Pin: "us", SchemaRev: "s2"}, 503, ""},
		{server.AdmitRequest{Release: "r2"}, 409, ""},
		{server.AdmitRequest{Release: "r1", Pin: "ap"}, 200, "ap"},
	}
	for _, c := range cases {
		got := a.Admit(&c.q, now)
		if got.Code != c.code || got.Region != c.region {
			t.Errorf("Admit(%+v) = %+v, want %d %q", c.q, got, c.code, c.region)
		}
	}
	if got := a.Admit(&server.AdmitRequest{Pin: "us"}, now.Add(2*time.Minute)); got.Code != 503 || !strings.Contains(got.Reason, "expired") {
		t.Errorf("expired verdict: %+v", got)
	}
	v2 := *v
	v2.Decision = gate.Inconclusive
	if got := server.NewAdmitter(&v2, nil).Admit(&server.AdmitRequest{Pin: "us"}, now); got.Code != 503 {
		t.Errorf("inconclusive verdict admitted: %+v", got)
	}
	if got := server.NewAdmitter(nil, nil).Admit(&server.AdmitRequest{}, now); got.Code != 503 {
		t.Errorf("no verdict admitted: %+v", got)
	}
}

// TestGateEngineParity: three pgvector regions with the same rows, one of
// them serving from an HNSW index built with other parameters. INDEX_HASH (semantic
// settings and content) is equal, the engine digest is not: a warning by
// default, a failure of that region alone with gate.engine_parity: strict.
func TestGateEngineParity(t *testing.T) {
	f := newFixture(t)
	pts := vectortest.Points(parity.IDString, 200, 21)
	prefix := fmt.Sprintf("rp_gate_engine_%08x", mrand.Uint32())
	for _, r := range []string{"us", "eu", "ap"} {
		u := pgtest.TableURL(prefix+"_"+r, "payload", "metadata", "text", "content")
		s, err := adapters.OpenVector(context.Background(), u)
		if err != nil {
			t.Fatalf("PostgreSQL: %v (start it with `make services`)", err)
		}
		t.Cleanup(func() { s.(adapters.VectorWriter).Drop(context.Background()); s.Close() })
		spec := vectortest.Spec(parity.IDString)
		if r == "eu" {
			spec.HNSWM, spec.HNSWEfConstruction = 8, 32 // another HNSW build
		}
		vectortest.Load(t, s, spec, pts)
		f.vectors[r] = u
		p := filepath.Join(t.TempDir(), "fence.db")
		fe, err := fence.Open("file://"+p, "")
		if err != nil {
			t.Fatal(err)
		}
		fe.MarkWarm(context.Background(), fence.DedupeStat{Misses: 200})
		fe.Close()
		f.fences[r] = "file://" + p
	}
	settings := ""
	for _, r := range []string{"us", "eu", "ap"} {
		f.health[r] = f.contractWith(r, settings)
	}

	v := run(t, f.config(settings))
	c := check(v, gate.CheckIndexHash)
	if v.Decision != gate.Pass || c.Status != gate.Pass {
		t.Fatalf("decision %s, index check %+v: want pass (engine settings are not INDEX_HASH)", v.Decision, c)
	}
	if w := strings.Join(c.Warnings, "\n"); len(c.Warnings) != 1 || !strings.Contains(w, "eu: same content") || !strings.Contains(w, "index.m: 16 -> 8") {
		t.Errorf("warnings %q: want one naming eu and index.m", c.Warnings)
	}

	strict := f.config(settings)
	strict.Gate.EngineParity = "strict"
	v = run(t, strict)
	if got := regionStatus(v); got != "us=pass eu=fail ap=pass" {
		t.Errorf("strict: region statuses %q", got)
	}
}

// contractWith is contract for a region whose INDEX_HASH includes the
// declared settings of a config fragment.
func (f *fixture) contractWith(region, settings string) http.HandlerFunc {
	c, err := config.Parse("c.yaml", []byte(fmt.Sprintf("release: r1\n%s\nregions:\n  - name: %s\n    vectors: %q\n", settings, region, f.vectors[region])))
	if err != nil {
		f.t.Fatal(err)
	}
	sc := gate.ScanRegions(context.Background(), c, []*config.Region{&c.Regions[0]}, gate.ScanOptions{})
	if sc[0].Err != nil {
		f.t.Fatal(sc[0].Err)
	}
	ih := sc[0].Scan.IndexHash().Hex()
	return func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"schema_rev": "s7", "model_tag": "m1", "secrets_rev": "k3", "index_hash": ih})
	}
}

// TestGateDedupeRate: a region whose fence let replayed writes through
// (dedupe rate below 0.999 over the current window) fails dedupe_kv
// alone; one whose replays were all stopped passes.
func TestGateDedupeRate(t *testing.T) {
	f := newFixture(t, "us", "eu", "ap")
	ctx := context.Background()
	for r, c := range map[string]fence.Counts{"us": {Hits: 1000, Misses: 300}, "eu": {Hits: 990, Misses: 300, Duplicates: 10}} {
		fe, err := fence.Open(f.fences[r], "")
		if err != nil {
			t.Fatal(err)
		}
		if err := fe.Count(ctx, r, fence.DefaultWindow, c); err != nil {
			t.Fatal(err)
		}
		fe.Close()
	}
	v := run(t, f.config(""))
	c := check(v, gate.CheckDedupeKV)
	if got := regionStatus(v); got != "us=pass eu=fail ap=pass" {
		t.Fatalf("region statuses %q; dedupe %+v", got, c)
	}
	if ev := strings.Join(c.Evidence, "\n"); !strings.Contains(ev, "eu: dedupe rate 0.9900 < 0.999: 10 of 1000 replayed writes") {
		t.Errorf("evidence %q", ev)
	}
}

func TestGateHealthRedirectToAnotherHostNotFollowed(t *testing.T) {
	f := newFixture(t, "us", "eu")
	other := httptest.NewServer(f.contract("eu", nil))
	t.Cleanup(other.Close)
	f.health["eu"] = func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/health", http.StatusFound)
	}
	c := f.config("")
	c.Gate.Primary = "us"
	v := run(t, c)
	if got, want := regionStatus(v), "us=pass eu=fail"; got != want {
		t.Fatalf("region statuses %q, want %q", got, want)
	}
	if ev := strings.Join(check(v, gate.CheckHealth).Evidence, "\n"); !strings.Contains(ev, "redirected to another host") {
		t.Errorf("health evidence %q does not name the redirect", ev)
	}
}

func TestGateEmptyRegions(t *testing.T) {
	t.Run("FailWithoutAllowEmpty", func(t *testing.T) {
		f := newFixture(t, "us", "eu")
		f.load("us", nil)
		f.load("eu", nil)
		f.health["us"], f.health["eu"] = f.contract("us", nil), f.contract("eu", nil)
		v := run(t, f.config(""))
		if got, want := regionStatus(v), "us=fail eu=fail"; got != want {
			t.Fatalf("region statuses %q, want %q", got, want)
		}
		if ev := fmt.Sprint(check(v, gate.CheckIndexHash).Regions); !strings.Contains(ev, "0 points") {
			t.Errorf("index check regions %s do not say 0 points", ev)
		}
	})
	t.Run("OnlyTheEmptyRegionFails", func(t *testing.T) {
		f := newFixture(t, "us", "eu", "ap")
		f.load("ap", nil)
		f.health["ap"] = f.contract("ap", nil)
		v := run(t, f.config(""))
		if got, want := regionStatus(v), "us=pass eu=pass ap=fail"; got != want {
			t.Fatalf("region statuses %q, want %q", got, want)
		}
	})
	t.Run("AllowEmpty", func(t *testing.T) {
		f := newFixture(t, "us", "eu")
		f.load("us", nil)
		f.load("eu", nil)
		f.health["us"], f.health["eu"] = f.contract("us", nil), f.contract("eu", nil)
		c := f.config("")
		for i := range c.Regions {
			c.Regions[i].AllowEmpty = true
		}
		v := run(t, c)
		if got, want := check(v, gate.CheckIndexHash).Status, gate.Pass; got != want {
			t.Fatalf("index check %s, want %s: %+v", got, want, check(v, gate.CheckIndexHash))
		}
	})
}
