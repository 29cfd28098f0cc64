package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/replicate"
)

// failoverFixture is three pgvector regions rebuilt from the SciFact
// subset, each with a local blob folder, a file fence and a health
// contract served over loopback, and a signing key for baselines.
type failoverFixture struct {
	t       *testing.T
	dir     string
	prefix  string
	key     string
	regions []string
	tables  map[string]string
	mu      sync.Mutex
	claims  map[string]map[string]string
	hang    map[string]time.Duration
	health  *httptest.Server
	hashes  map[string]string
}

func newFailoverFixture(t *testing.T, regions ...string) *failoverFixture {
	t.Helper()
	f := &failoverFixture{t: t, dir: t.TempDir(), prefix: fmt.Sprintf("rp_fo_%08x", rand.Uint32()), regions: regions,
		tables: map[string]string{}, claims: map[string]map[string]string{}, hang: map[string]time.Duration{}}
	dropTables(t, f.prefix)
	f.key = writeSigningKey(t, f.dir)
	f.health = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		f.mu.Lock()
		c, d := f.claims[name], f.hang[name]
		f.mu.Unlock()
		if d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if c == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c)
	}))
	t.Cleanup(f.health.Close)
	for _, r := range regions {
		f.tables[r] = pgTableURL(f.prefix + "_" + r)
		blobs := filepath.Join(f.dir, "blobs", r)
		os.MkdirAll(blobs, 0o755)
		os.WriteFile(filepath.Join(blobs, "model-card.md"), []byte("the same card everywhere"), 0o644)
		os.WriteFile(filepath.Join(blobs, "vocab.txt"), []byte("a\nb\nc\n"), 0o644)
	}
	code, out, errOut := runCLI(t, "rebuild", "--config", f.config(nil, ""), "--source", filepath.Join("..", "..", "testdata", "scifact", "corpus.jsonl"), "--promote", "--json")
	if code != ExitEqual {
		t.Fatalf("rebuild: exit %d\n%s%s", code, out, errOut)
	}
	var rb replicate.Result
	if err := json.Unmarshal([]byte(out), &rb); err != nil {
		t.Fatal(err)
	}
	f.hashes = rb.IndexHash
	e, err := gate.OpenEmbedder("glove")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		f.claims[r] = map[string]string{"schema_rev": "s3", "model_tag": e.ModelTag(), "secrets_rev": "k9", "index_hash": rb.IndexHash[r]}
	}
	return f
}

// config writes a config for the regions; vectors overrides a region's
// store URL; extra goes under gate:.
func (f *failoverFixture) config(vectors map[string]string, extra string, regions ...string) string {
	if len(regions) == 0 {
		regions = f.regions
	}
	var b strings.Builder
	fmt.Fprintf(&b, "release: r-failover\nembedder: glove\ncache_dir: %q\nfence:\n  lease: 1s\n", filepath.Join(f.dir, "cache"))
	fmt.Fprintf(&b, "gate:\n  signing_key: %q\n  skip: [probes]\n  timeouts: {health: 2s, index_hash: 20s}\n%sregions:\n", f.key, extra)
	for _, r := range regions {
		u := f.tables[r]
		if v, ok := vectors[r]; ok {
			u = v
		}
		fmt.Fprintf(&b, "  - name: %s\n    vectors: %q\n    blobs: %q\n    health: %q\n    dedupe_kv: %q\n", r, u,
			"file://"+filepath.Join(f.dir, "blobs", r), f.health.URL+"/"+r, "file://"+filepath.Join(f.dir, "fence", r+".db"))
	}
	return writeConfig(f.t, b.String())
}

func (f *failoverFixture) claim(region, field, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := map[string]string{}
	for k, v := range f.claims[region] {
		c[k] = v
	}
	c[field] = value
	f.claims[region] = c
}

// verify runs `ragparity verify --json` and checks the exit code.
func (f *failoverFixture) verify(cfg string, want int, args ...string) *gate.Verdict {
	f.t.Helper()
	code, out, errOut := runCLI(f.t, append([]string{"verify", "--config", cfg, "--json"}, args...)...)
	var v gate.Verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		f.t.Fatalf("verify: exit %d, no verdict: %v\n%s%s", code, err, out, errOut)
	}
	if code != want {
		f.t.Fatalf("verify: exit %d, want %d; decision %s\n%s\n%s", code, want, v.Decision, statuses(&v), errOut)
	}
	return &v
}

func statuses(v *gate.Verdict) string {
	var s []string
	for _, r := range v.Regions {
		s = append(s, fmt.Sprintf("%s=%s admit=%v %q", r.Name, r.Status, r.Admit, r.Reasons))
	}
	return strings.Join(s, "\n")
}

func wantRegions(t *testing.T, v *gate.Verdict, want map[string]gate.Status) {
	t.Helper()
	for name, st := range want {
		r, ok := v.Region(name)
		if !ok || r.Status != st || r.Admit != (st == gate.Pass) {
			t.Errorf("region %s: %+v, want %s (admitted: %v)\n%s", name, r, st, st == gate.Pass, statuses(v))
		}
	}
}

// unreachable is a PostgreSQL URL nothing listens on.
func unreachable(f *failoverFixture, region string) string {
	return strings.Replace(f.tables[region], "127.0.0.1:5432", "127.0.0.1:1", 1)
}

// TestFailoverPerRegion is the per-region gate against the real services:
// a region that is down or drifted is blocked and the others stay
// admitted, decided against a signed release baseline.
func TestFailoverPerRegion(t *testing.T) {
	f := newFailoverFixture(t, "a", "b", "c")
	base := f.config(nil, "")

	v := f.verify(base, ExitEqual)
	if v.Decision != gate.Pass || v.BaselineID != "" {
		t.Fatalf("three faithful regions without a baseline: %s, baseline %q", v.Decision, v.BaselineID)
	}
	code, out, errOut := runCLI(t, "baseline", "create", "--config", base, "--from", "a")
	if code != ExitEqual {
		t.Fatalf("baseline create: exit %d\n%s%s", code, out, errOut)
	}

	t.Run("OneStoreDownOthersAdmitted", func(t *testing.T) {
		cfg := f.config(map[string]string{"c": unreachable(f, "c")}, "")
		v := f.verify(cfg, ExitUnknown)
		if v.Decision != gate.Degraded || v.BaselineID == "" {
			t.Fatalf("decision %s baseline %q", v.Decision, v.BaselineID)
		}
		wantRegions(t, v, map[string]gate.Status{"a": gate.Pass, "b": gate.Pass, "c": gate.Inconclusive})
		rc, _ := v.Region("c")
		if !strings.Contains(strings.Join(rc.Reasons, " "), "index_hash") {
			t.Errorf("region c's reasons %q do not name the index check", rc.Reasons)
		}

		// serve answers the same per region, and admission pinned to c
		// falls back to an admitted region.
		addr := freePort(t)
		s := startServe(t, "--config", cfg, "--addr", addr)
		hc := &http.Client{Timeout: 5 * time.Second}
		resp := waitHTTP(t, hc, "http://"+addr+"/readyz", s)
		resp.Body.Close()
		for region, want := range map[string]int{"a": 200, "b": 200, "c": 503} {
			resp, err := hc.Get("http://" + addr + "/v1/regions/" + region + "/ready")
			if err != nil {
				t.Fatal(err)
			}
			var rr struct {
				Ready  bool   `json:"ready"`
				Reason string `json:"reason"`
			}
			json.NewDecoder(resp.Body).Decode(&rr)
			resp.Body.Close()
			if resp.StatusCode != want || rr.Ready != (want == 200) || (want == 503 && rr.Reason == "") {
				t.Errorf("/v1/regions/%s/ready: %d %+v, want %d", region, resp.StatusCode, rr, want)
			}
		}
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/admit", nil)
		req.Header.Set("X-Region-Pin", "c")
		for _, fallback := range []string{"", "route"} {
			want := 421
			if fallback != "" {
				want = 200
				req.Header.Set("X-Ragparity-Fallback", fallback)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("X-Route-Region"); resp.StatusCode != want || (got != "a" && got != "b") {
				t.Errorf("/v1/admit pinned to c (X-Ragparity-Fallback %q): %d naming %q, want %d naming a or b", fallback, resp.StatusCode, got, want)
			}
		}
	})

	t.Run("ChangedTextsFailOnlyThatRegionLocalisedFromTheBaseline", func(t *testing.T) {
		conn, err := pgx.Connect(context.Background(), pgtest.URL())
		if err != nil {
			t.Fatalf("PostgreSQL: %v (start it with `make services`)", err)
		}
		defer conn.Close(context.Background())
		tbl := pgx.Identifier{f.prefix + "_b"}.Sanitize()
		var ids []string
		rows, err := conn.Query(context.Background(), "SELECT id::text FROM "+tbl+" ORDER BY id LIMIT 3")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			rows.Scan(&id)
			ids = append(ids, id)
		}
		rows.Close()
		if _, err := conn.Exec(context.Background(), "UPDATE "+tbl+" SET content = content || ' (edited)' WHERE id::text = ANY($1)", ids); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			conn, err := pgx.Connect(context.Background(), pgtest.URL())
			if err == nil {
				conn.Exec(context.Background(), "UPDATE "+tbl+" SET content = replace(content, ' (edited)', '') WHERE id::text = ANY($1)", ids)
				conn.Close(context.Background())
			}
		})

		// With a and c reachable, b's ids come from a diff with a.
		v := f.verify(base, ExitDiffer)
		wantRegions(t, v, map[string]gate.Status{"a": gate.Pass, "b": gate.Fail, "c": gate.Pass})
		ev := strings.Join(v.Checks[0].Evidence, "\n")
		for _, id := range ids {
			if !strings.Contains(ev, "b: id "+id+" differs in text") {
				t.Errorf("index evidence does not name id %s:\n%s", id, ev)
			}
		}

		// With a and c down, b is still decided and localised, from the
		// baseline's Merkle leaves alone.
		lone := f.config(map[string]string{"a": unreachable(f, "a"), "c": unreachable(f, "c")}, "")
		v = f.verify(lone, ExitDiffer)
		wantRegions(t, v, map[string]gate.Status{"a": gate.Inconclusive, "b": gate.Fail, "c": gate.Inconclusive})
		ev = strings.Join(v.Checks[0].Evidence, "\n")
		for _, id := range ids {
			if !strings.Contains(ev, id) || !strings.Contains(ev, "differs from the baseline") {
				t.Errorf("lone-region evidence does not localise id %s:\n%s", id, ev)
			}
		}
	})

	t.Run("ContractClaimsOtherThanTheBaseline", func(t *testing.T) {
		for _, field := range []string{"model_tag", "secrets_rev"} {
			old := f.claims["c"]
			f.claim("c", field, "text-embedding-3-small")
			v := f.verify(base, ExitDiffer)
			f.mu.Lock()
			f.claims["c"] = old
			f.mu.Unlock()
			wantRegions(t, v, map[string]gate.Status{"a": gate.Pass, "b": gate.Pass, "c": gate.Fail})
			if ev := strings.Join(v.Checks[2].Evidence, "\n"); !strings.Contains(ev, "c: claims "+field) {
				t.Errorf("%s: health evidence %q", field, ev)
			}
		}
	})

	t.Run("TamperedOrForeignBaselineRefused", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "baseline.json")
		if code, _, e := runCLI(t, "baseline", "export", "--config", base, "--out", file); code != 0 {
			t.Fatal(e)
		}
		raw, _ := os.ReadFile(file)
		tampered := filepath.Join(t.TempDir(), "tampered.json")
		os.WriteFile(tampered, []byte(strings.Replace(string(raw), f.hashes["a"], f.hashes["a"][:60]+"0000", 1)), 0o644)
		code, _, errOut := runCLI(t, "verify", "--config", base, "--baseline", tampered)
		if code != ExitUnknown || !strings.Contains(errOut, "baseline refused") {
			t.Errorf("tampered baseline: exit %d: %s", code, errOut)
		}
		if code, _, errOut := runCLI(t, "baseline", "import", "--config", base, "--in", tampered); code != ExitUnknown || !strings.Contains(errOut, "not signed by a trusted key") {
			t.Errorf("import of a tampered baseline: exit %d: %s", code, errOut)
		}
		// The same key, another release: refused by release.
		other := writeConfig(t, strings.Replace(mustRead(t, base), "release: r-failover", "release: r-other", 1))
		if code, _, e := runCLI(t, "baseline", "create", "--config", other, "--from", "a"); code != 0 {
			t.Fatal(e)
		}
		foreign := filepath.Join(t.TempDir(), "foreign.json")
		if code, _, e := runCLI(t, "baseline", "export", "--config", other, "--out", foreign); code != 0 {
			t.Fatal(e)
		}
		code, _, errOut = runCLI(t, "verify", "--config", base, "--baseline", foreign)
		if code != ExitUnknown || !strings.Contains(errOut, `of release "r-other"`) {
			t.Errorf("foreign-release baseline: exit %d: %s", code, errOut)
		}
	})

	t.Run("RestartWithChangedConfigAdmitsNothingBeforeItsVerification", func(t *testing.T) {
		addr := freePort(t)
		hc := &http.Client{Timeout: 10 * time.Second}
		s := startServe(t, "--config", base, "--addr", addr)
		resp := waitHTTP(t, hc, "http://"+addr+"/readyz", s)
		resp.Body.Close()
		s.cancel()
		<-s.done
		s.done <- 0 // for the cleanup

		// The new config differs; its first verification takes seconds
		// (a's health answers slowly). Meanwhile nothing is admitted,
		// although the store holds an unexpired verdict of the old config.
		changed := f.config(nil, "  verdict_ttl: 20m\n")
		f.mu.Lock()
		f.hang["a"] = 1500 * time.Millisecond
		f.mu.Unlock()
		defer func() { f.mu.Lock(); f.hang["a"] = 0; f.mu.Unlock() }()
		s2 := startServe(t, "--config", changed, "--addr", addr)
		deadline := time.Now().Add(800 * time.Millisecond)
		seen := 0
		for time.Now().Before(deadline) {
			resp, err := hc.Get("http://" + addr + "/v1/admit")
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			resp.Body.Close()
			seen++
			if resp.StatusCode == 200 {
				t.Fatalf("admitted to %s before the first verification under the changed config", resp.Header.Get("X-Route-Region"))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if seen == 0 {
			t.Fatalf("serve never answered: %s", s2.stderr)
		}
		resp = waitHTTP(t, hc, "http://"+addr+"/readyz", s2)
		resp.Body.Close()
		resp, err := hc.Get("http://" + addr + "/v1/admit")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("after its verification: admit %d", resp.StatusCode)
		}
	})
}

// TestFailoverTwoRegions: with two regions and one down, a baseline
// decides the reachable one; without one, neither can be decided.
func TestFailoverTwoRegions(t *testing.T) {
	f := newFailoverFixture(t, "a", "b")
	down := map[string]string{"b": unreachable(f, "b")}

	noBaseline := f.config(down, fmt.Sprintf("  store: %q\n", "sqlite://"+filepath.Join(t.TempDir(), "empty.db")))
	v := f.verify(noBaseline, ExitUnknown)
	wantRegions(t, v, map[string]gate.Status{"a": gate.Inconclusive, "b": gate.Inconclusive})
	if ra, _ := v.Region("a"); !strings.Contains(strings.Join(ra.Reasons, " "), "ragparity baseline create") {
		t.Errorf("region a's reasons %q do not say to create a baseline", ra.Reasons)
	}

	if code, out, e := runCLI(t, "baseline", "create", "--config", f.config(nil, ""), "--from", "a"); code != 0 {
		t.Fatalf("baseline create: %s%s", out, e)
	}
	v = f.verify(f.config(down, ""), ExitUnknown)
	if v.Decision != gate.Degraded {
		t.Errorf("decision %s, want degraded", v.Decision)
	}
	wantRegions(t, v, map[string]gate.Status{"a": gate.Pass, "b": gate.Inconclusive})
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
