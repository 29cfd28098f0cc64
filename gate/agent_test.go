package gate_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
	"github.com/ragparity/ragparity/agent"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
	"github.com/ragparity/ragparity/verifier"
	"github.com/ragparity/ragparity/verifier/blob"
)

const agentToken = "agent-test-token-not-a-secret"

// blobDir writes files (path -> content) under a new directory and
// returns its file:// URL.
func blobDir(t *testing.T, files map[string]string) string {
	d := t.TempDir()
	for k, v := range files {
		p := filepath.Join(d, k)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return "file://" + d
}

// startAgentBlobs is startAgent with a blob store.
func startAgentBlobs(t testing.TB, region, vectors, blobs string, wrap func(key ed25519.PrivateKey, h http.Handler) http.Handler) *testAgent {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	srv, err := agent.New(agent.Options{Region: region, Vectors: vectors, Blobs: blobs, BlobCacheDir: t.TempDir(), Key: key, Token: agentToken, SpillDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(key, h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return &testAgent{URL: ts.URL, Pub: base64.StdEncoding.EncodeToString(pub), Key: key, Srv: srv}
}

// testAgent is a running agent over one store.
type testAgent struct {
	URL string
	Pub string // base64 of the public key
	Key ed25519.PrivateKey
	Srv *agent.Server
}

// startAgent scans vectors with a real agent.Server and serves it over
// HTTP; wrap, when set, sits in front of it (to forge answers); now, when
// set, is the agent's clock.
func startAgent(t testing.TB, region, vectors string, wrap func(key ed25519.PrivateKey, h http.Handler) http.Handler, now func() time.Time) *testAgent {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	srv, err := agent.New(agent.Options{Region: region, Vectors: vectors, Key: key, Token: agentToken, SpillDir: t.TempDir(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(key, h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return &testAgent{URL: ts.URL, Pub: base64.StdEncoding.EncodeToString(pub), Key: key, Srv: srv}
}

// yaml is the region's agent: block.
func (a *testAgent) yaml(extra string) string {
	return fmt.Sprintf("    agent:\n      url: %q\n      token: %s\n      public_keys: [%q]\n%s", a.URL, agentToken, a.Pub, extra)
}

// loadStore creates a store of one backend holding pts and returns its URL.
func loadStore(t *testing.T, backend string, pts []parity.Point, kind parity.IDKind) string {
	t.Helper()
	var u string
	switch backend {
	case "embedded":
		u = fmt.Sprintf("embedded://%s?collection=chunks", t.TempDir())
	case "qdrant":
		srv := qdranttest.Start(t)
		u = srv.URL(fmt.Sprintf("c%08x", mrand.Uint32())) + "?text=content"
	case "pgvector":
		u = pgtest.TableURL(fmt.Sprintf("rp_agent_%08x", mrand.Uint32()), "payload", "metadata", "text", "content")
	}
	s, err := adapters.OpenVector(context.Background(), u)
	if err != nil {
		t.Fatalf("%s: %v", backend, err)
	}
	t.Cleanup(func() {
		if w, ok := s.(adapters.VectorWriter); ok && backend == "pgvector" {
			w.Drop(context.Background())
		}
		s.Close()
	})
	vectortest.Load(t, s, vectortest.Spec(kind), pts)
	return u
}

func parseConfig(t testing.TB, text string) *config.Config {
	t.Helper()
	c, err := config.Parse("gate.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func diffJSON(t *testing.T, d *verifier.DiffResult) string {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAgentMatchesDirectScan: on the conformance data of every store
// type, a region read through its agent has the INDEX_HASH, leaves,
// tolerant root and settings of a direct scan, and diff gives the same
// result whichever side is read through an agent.
func TestAgentMatchesDirectScan(t *testing.T) {
	for _, backend := range []string{"embedded", "qdrant", "pgvector"} {
		t.Run(backend, func(t *testing.T) {
			kind := parity.IDString
			if backend == "qdrant" {
				kind = parity.IDUUID
			}
			pts := vectortest.Points(kind, 400, 7)
			changed := append([]parity.Point(nil), pts[:399]...) // last one missing
			changed[3].Payload = []byte(`{"doc":"edited"}`)
			changed[5].Text = "another text"
			changed = append(changed, vectortest.Points(kind, 401, 7)[400]) // one extra
			ua := loadStore(t, backend, pts, kind)
			ub := loadStore(t, backend, changed, kind)
			aa := startAgent(t, "a_agent", ua, nil, nil)
			ab := startAgent(t, "b_agent", ub, nil, nil)
			cfg := parseConfig(t, fmt.Sprintf("release: r1\nsettings: {model_tag: m1}\nregions:\n  - name: a\n    vectors: %q\n  - name: b\n    vectors: %q\n  - name: a_agent\n%s  - name: b_agent\n%s",
				ua, ub, aa.yaml(""), ab.yaml("")))
			regions, _ := gate.SelectRegions(cfg, nil)
			for _, spill := range []bool{false, true} {
				out := gate.ScanRegions(context.Background(), cfg, regions, gate.ScanOptions{Spill: spill, Tolerant: true})
				defer func() {
					for i := range out {
						out[i].Close()
					}
				}()
				for _, r := range out {
					if r.Err != nil {
						t.Fatalf("spill=%v: %s: %v", spill, r.Region.Name, r.Err)
					}
				}
				for _, p := range [][2]int{{0, 2}, {1, 3}} {
					d, g := out[p[0]].Scan, out[p[1]].Scan
					name := fmt.Sprintf("spill=%v %s", spill, out[p[1]].Region.Name)
					if d.IndexHash() != g.IndexHash() || d.SettingsDigest != g.SettingsDigest || d.EngineDigest != g.EngineDigest {
						t.Errorf("%s: INDEX_HASH %s settings %s engine %s, direct %s %s %s", name, g.IndexHash(), g.SettingsDigest, g.EngineDigest, d.IndexHash(), d.SettingsDigest, d.EngineDigest)
					}
					if !slices.Equal(d.Leaves, g.Leaves) || d.Points != g.Points || !d.HasTolerant() || d.ContentRootTolerant() != g.ContentRootTolerant() {
						t.Errorf("%s: leaves, points (%d vs %d) or tolerant root differ from the direct scan's", name, g.Points, d.Points)
					}
					if d.Via != "direct" || g.Via != "agent "+[]*testAgent{aa, ab}[p[0]].URL {
						t.Errorf("%s: via %q and %q", name, d.Via, g.Via)
					}
				}
				if !spill {
					continue
				}
				want := ""
				for _, p := range [][2]int{{0, 1}, {2, 1}, {0, 3}, {2, 3}} {
					d, err := verifier.Diff("a", "b", out[p[0]].Scan, out[p[1]].Scan, out[p[0]].Spill, out[p[1]].Spill)
					if err != nil {
						t.Fatalf("diff %s %s: %v", out[p[0]].Region.Name, out[p[1]].Region.Name, err)
					}
					if d.ViaFrom != out[p[0]].Scan.Via || d.ViaTo != out[p[1]].Scan.Via {
						t.Errorf("diff via %q, %q", d.ViaFrom, d.ViaTo)
					}
					d.ViaFrom, d.ViaTo = "", ""
					got := diffJSON(t, d)
					if want == "" {
						want = got
						if len(d.Changed) != 2 || len(d.OnlyInFrom) != 1 || len(d.OnlyInTo) != 1 {
							t.Errorf("direct diff %s", got)
						}
						continue
					}
					if got != want {
						t.Errorf("diff %s -> %s:\n%s\nthe direct diff:\n%s", out[p[0]].Region.Name, out[p[1]].Region.Name, got, want)
					}
				}
				// `diff` between the two agents (only the subtrees where
				// their trees differ are fetched) says the same.
				d, err := gate.DiffRegions(context.Background(), cfg, "a_agent", "b_agent", gate.ScanOptions{})
				if err != nil {
					t.Fatalf("DiffRegions a_agent b_agent: %v", err)
				}
				d.ViaFrom, d.ViaTo, d.From, d.To = "", "", "a", "b"
				if got := diffJSON(t, d); got != want {
					t.Errorf("diff a_agent -> b_agent:\n%s\nthe direct diff:\n%s", got, want)
				}
			}
		})
	}
}

// resign rewrites a signed answer with edit and signs it again with key:
// a validly signed lie.
func resign(key ed25519.PrivateKey, h http.Handler, edit func(a *agent.Answer)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Accept-Encoding")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var a agent.Answer
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &a) != nil {
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		edit(&a)
		body, _ := json.Marshal(&a)
		kid, sig := agent.Sign(key, r.URL.RequestURI(), body)
		w.Header().Set(agent.HeaderKeyID, kid)
		w.Header().Set(agent.HeaderSignature, sig)
		w.Write(body)
	})
}

// TestAgentAnswersThatCannotBeVerified: an agent answer with an unknown
// key, a forged signature, a stale scan, tree nodes that do not hash to
// the signed root, or no token makes that region inconclusive, naming the
// agent; the other regions are admitted (leaves and records:
// TestAgentLeavesPathChecksLeaves).
func TestAgentAnswersThatCannotBeVerified(t *testing.T) {
	f := newFixture(t, "us", "eu", "ap")
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	flip := func(b []byte) {
		if len(b) > 0 {
			b[len(b)/2] ^= 1
		}
	}
	cases := []struct {
		name string
		wrap func(key ed25519.PrivateKey, h http.Handler) http.Handler
		now  func() time.Time
		yaml func(a *testAgent) string
		// region is the agent's own region name (default ap).
		region string
		error  string
	}{
		{name: "Good", error: ""},
		{name: "UnknownKey", yaml: func(a *testAgent) string {
			return strings.Replace(a.yaml(""), a.Pub, base64.StdEncoding.EncodeToString(other), 1)
		}, error: "not trusted"},
		{name: "ForgedSignature", wrap: func(key ed25519.PrivateKey, h http.Handler) http.Handler {
			_, forger, _ := ed25519.GenerateKey(rand.Reader)
			return resign(forger, h, func(a *agent.Answer) {})
		}, yaml: func(a *testAgent) string { return a.yaml("") }, error: "not trusted"},
		{name: "AlteredInTransit", wrap: func(key ed25519.PrivateKey, h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.Header.Del("Accept-Encoding")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				body := strings.Replace(rec.Body.String(), `"points":300`, `"points":301`, 1)
				w.Write([]byte(body))
			})
		}, error: "signature does not verify"},
		{name: "Stale", now: func() time.Time { return time.Now().Add(-2 * time.Hour) }, error: "stale"},
		{name: "NodesDoNotMatchRoot", wrap: func(key ed25519.PrivateKey, h http.Handler) http.Handler {
			return resign(key, h, func(a *agent.Answer) {
				if a.Nodes != nil {
					flip(a.Nodes.Hashes)
				}
			})
		}, error: "do not hash to the signed content root"},
		{name: "OtherRegionsAgent", region: "eu", error: `about region "eu", not "ap"`},
		{name: "NoToken", yaml: func(a *testAgent) string {
			return strings.Replace(a.yaml(""), agentToken, "wrong-token", 1)
		}, error: "401"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := "ap"
			if c.region != "" {
				name = c.region
			}
			a := startAgent(t, name, f.vectors["ap"], c.wrap, c.now)
			y := a.yaml("")
			if c.yaml != nil {
				y = c.yaml(a)
			}
			f.agents = map[string]string{"ap": y}
			v := run(t, f.config(""))
			if c.error == "" {
				if v.Decision != gate.Pass || admitted(v) != "us,eu,ap" {
					t.Fatalf("decision %s admitted %q: %+v", v.Decision, admitted(v), check(v, gate.CheckIndexHash))
				}
				if f := check(v, gate.CheckIndexHash).Figure; !strings.Contains(f, "ap via agent "+a.URL) {
					t.Errorf("the index check's figure does not say ap was read through its agent: %q", f)
				}
				return
			}
			if admitted(v) != "us,eu" || regionStatus(v) != "us=pass eu=pass ap=inconclusive" {
				t.Fatalf("decision %s admitted %q statuses %q", v.Decision, admitted(v), regionStatus(v))
			}
			var reasons string
			for _, r := range v.Regions {
				if r.Name == "ap" {
					reasons = strings.Join(r.Reasons, "; ")
				}
			}
			if !strings.Contains(reasons, "agent "+a.URL) || !strings.Contains(reasons, c.error) {
				t.Errorf("ap's reasons %q: want the agent %s named and %q", reasons, a.URL, c.error)
			}
			if strings.Contains(reasons, agentToken) {
				t.Errorf("the token is in the reasons: %q", reasons)
			}
		})
	}
}

// TestAgentLeavesPathChecksLeaves: hash (no diff) fetches the whole
// leaves; leaves that do not hash to the signed root, or records that do
// not add up to their leaf, are refused.
func TestAgentLeavesPathChecksLeaves(t *testing.T) {
	f := newFixture(t, "us")
	flipLeaves := startAgent(t, "us", f.vectors["us"], func(key ed25519.PrivateKey, h http.Handler) http.Handler {
		return resign(key, h, func(a *agent.Answer) {
			if a.Leaves != nil {
				a.Leaves.Sums[5] ^= 1
			}
		})
	}, nil)
	cfg := parseConfig(t, "release: r1\nregions:\n  - name: us\n"+flipLeaves.yaml(""))
	out := gate.ScanRegions(context.Background(), cfg, []*config.Region{&cfg.Regions[0]}, gate.ScanOptions{})
	if out[0].Err == nil || !strings.Contains(out[0].Err.Error(), "leaves do not match the signed content root") || !strings.Contains(out[0].Err.Error(), "agent "+flipLeaves.URL) {
		t.Errorf("tampered leaves: %v", out[0].Err)
	}
	lyingRecords := startAgent(t, "us", f.vectors["us"], func(key ed25519.PrivateKey, h http.Handler) http.Handler {
		return resign(key, h, func(a *agent.Answer) {
			if a.Records != nil && len(a.Records.Data) > 0 {
				a.Records.Data[len(a.Records.Data)-1] ^= 1
			}
		})
	}, nil)
	cfg = parseConfig(t, "release: r1\nregions:\n  - name: us\n"+lyingRecords.yaml(""))
	out = gate.ScanRegions(context.Background(), cfg, []*config.Region{&cfg.Regions[0]}, gate.ScanOptions{Spill: true})
	if out[0].Err != nil {
		t.Fatal(out[0].Err)
	}
	want := map[int]bool{}
	for b, l := range out[0].Scan.Leaves {
		if l.Count > 0 && len(want) < 3 {
			want[b] = true
		}
	}
	err := out[0].Spill.ReadBuckets(want, func(*verifier.SpillRecord) { t.Errorf("a record of a lying answer was passed on") })
	if err == nil || !strings.Contains(err.Error(), "do not add up to its signed leaf") {
		t.Errorf("lying records: %v", err)
	}
}

// TestAgentBytesMoved: one verification of a 20k-point region through its
// agent moves at most 256 KB, localising one changed point at most 128 KB
// (counted on the wire).
func TestAgentBytesMoved(t *testing.T) {
	pts := vectortest.Points(parity.IDString, 20000, 3)
	ref := loadStore(t, "embedded", pts, parity.IDString)
	pts[12345].Text = "changed"
	ub := loadStore(t, "embedded", pts, parity.IDString)
	ab := startAgent(t, "b", ub, nil, nil)
	cfg := parseConfig(t, fmt.Sprintf("release: r1\nregions:\n  - name: a\n    vectors: %q\n  - name: b\n%s", ref, ab.yaml("")))
	var n agent.Counter
	out := gate.ScanRegions(context.Background(), cfg, []*config.Region{&cfg.Regions[1]}, gate.ScanOptions{AgentCounter: &n})
	if out[0].Err != nil {
		t.Fatal(out[0].Err)
	}
	t.Logf("verification (INDEX_HASH with all 4096 leaves): %d bytes", n.Total())
	if n.Total() > 256<<10 || n.Total() < 128<<10 {
		t.Errorf("verification moved %d bytes, want (128 KB, 256 KB]", n.Total())
	}
	n.Reset()
	regions, _ := gate.SelectRegions(cfg, nil)
	out = gate.ScanRegions(context.Background(), cfg, regions, gate.ScanOptions{Spill: true, AgentCounter: &n})
	defer out[0].Close()
	if out[0].Err != nil || out[1].Err != nil {
		t.Fatal(out[0].Err, out[1].Err)
	}
	d, err := verifier.Diff("a", "b", out[0].Scan, out[1].Scan, out[0].Spill, out[1].Spill)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("localising one changed point: %d bytes", n.Total())
	if len(d.Changed) != 1 || d.Changed[0].ID != pts[12345].ID.S {
		t.Errorf("diff %+v", d)
	}
	if n.Total() > 128<<10 || n.Total() == 0 {
		t.Errorf("localising moved %d bytes, want at most 128 KB", n.Total())
	}
	// Between two agent regions: no full leaf set (4096 x 32 bytes) moves,
	// only both trees' nodes, the differing subtree and records.
	aa := startAgent(t, "a2", ref, nil, nil)
	cfg2 := parseConfig(t, fmt.Sprintf("release: r1\nregions:\n  - name: a2\n%s  - name: b\n%s", aa.yaml(""), ab.yaml("")))
	n.Reset()
	d, err = gate.DiffRegions(context.Background(), cfg2, "a2", "b", gate.ScanOptions{AgentCounter: &n})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("diff between two agent regions, one changed point: %d bytes", n.Total())
	if len(d.Changed) != 1 || d.Changed[0].ID != pts[12345].ID.S || d.Equal {
		t.Errorf("agent-to-agent diff %+v", d)
	}
	if n.Total() > 128<<10 || n.Total() == 0 {
		t.Errorf("agent-to-agent diff moved %d bytes, want at most 128 KB", n.Total())
	}
	// A subtree that does not match its signed node: that agent's region
	// is named.
	liar := startAgent(t, "liar", ub, func(key ed25519.PrivateKey, h http.Handler) http.Handler {
		return resign(key, h, func(a *agent.Answer) {
			if a.Leaves != nil && len(a.Leaves.Sums) > 0 {
				a.Leaves.Sums[0] ^= 1
			}
		})
	}, nil)
	cfg3 := parseConfig(t, fmt.Sprintf("release: r1\nregions:\n  - name: a2\n%s  - name: liar\n%s", aa.yaml(""), liar.yaml("")))
	if _, err := gate.DiffRegions(context.Background(), cfg3, "a2", "liar", gate.ScanOptions{}); err == nil ||
		!strings.Contains(err.Error(), "region liar: agent "+liar.URL) || !strings.Contains(err.Error(), "do not match the signed tree node") || strings.Contains(err.Error(), "region a2") {
		t.Errorf("agent-to-agent diff against a lying agent: %v", err)
	}
	// Two equal agent regions: nodes only, and equal.
	n.Reset()
	if d, err := gate.DiffRegions(context.Background(), cfg2, "a2", "a2", gate.ScanOptions{AgentCounter: &n}); err != nil || !d.Equal || n.Total() > 32<<10 {
		t.Errorf("agent diff with itself: %v, equal %v, %d bytes", err, d != nil && d.Equal, n.Total())
	}
}

// TestAgentBlobManifest: a region's blob manifest through its agent has
// the direct manifest's hash, moving only the signed summary; a diff
// fetches its leaves and differing buckets and names the same keys as a
// direct diff; leaves or entries that do not match the signed hash are
// refused, naming the agent.
func TestAgentBlobManifest(t *testing.T) {
	files := map[string]string{"a.txt": "alpha", "docs/b.pdf": "bravo", "docs/c.md": "charlie"}
	for i := 0; i < 2000; i++ { // their entries alone would be about 100 KB
		files[fmt.Sprintf("chunks/%04d.txt", i)] = fmt.Sprint(i)
	}
	ref := blobDir(t, files)
	files["docs/b.pdf"] = "BRAVO"
	delete(files, "a.txt")
	files["new.txt"] = "new"
	other := blobDir(t, files)
	vec := newFixture(t, "us").vectors["us"]
	good := startAgentBlobs(t, "eu", vec, other, nil)
	lying := startAgentBlobs(t, "liar", vec, other, func(key ed25519.PrivateKey, h http.Handler) http.Handler {
		return resign(key, h, func(a *agent.Answer) {
			if a.Manifest != nil && len(a.Manifest.Entries) > 0 {
				a.Manifest.Entries[len(a.Manifest.Entries)-1] ^= 1
			}
		})
	})
	leafLiar := startAgentBlobs(t, "leafliar", vec, other, func(key ed25519.PrivateKey, h http.Handler) http.Handler {
		return resign(key, h, func(a *agent.Answer) {
			if a.Manifest != nil && a.Manifest.Leaves != nil {
				a.Manifest.Leaves.Sums[0] ^= 1
			}
		})
	})
	cfg := parseConfig(t, fmt.Sprintf("release: r1\nregions:\n  - name: ref\n    blobs: %q\n  - name: direct\n    blobs: %q\n  - name: eu\n%s  - name: liar\n%s  - name: leafliar\n%s",
		ref, other, good.yaml(""), lying.yaml(""), leafLiar.yaml("")))
	regions, _ := gate.SelectRegions(cfg, nil)
	var moved agent.Counter
	ms := gate.BuildManifests(context.Background(), cfg, regions, gate.BlobOptions{Mode: blob.ModeContent, CacheDir: t.TempDir(), AgentCounter: &moved})
	for _, m := range ms {
		if m.Err != nil {
			t.Fatalf("%s: %v", m.Region.Name, m.Err)
		}
	}
	if ms[1].M.Hash() != ms[2].M.Hash() || ms[1].M.Objects != ms[2].M.Objects || ms[1].M.Bytes != ms[2].M.Bytes {
		t.Errorf("through the agent: manifest %s (%d objects), direct %s (%d)", ms[2].M.Hash(), ms[2].M.Objects, ms[1].M.Hash(), ms[1].M.Objects)
	}
	if !strings.HasPrefix(ms[2].M.Location, "agent "+good.URL) {
		t.Errorf("location %q does not name the agent", ms[2].M.Location)
	}
	// Three agents' summaries, not their 4096 leaves (4096 x 32 bytes).
	if n := moved.Total(); n <= 0 || n > 3*4096 {
		t.Errorf("three agents' manifest summaries moved %d bytes", n)
	}
	d1, err1 := blob.Diff(t.Context(), "ref", "x", ms[0].M, ms[1].M)
	d2, err2 := blob.Diff(t.Context(), "ref", "x", ms[0].M, ms[2].M)
	j1, _ := json.Marshal(d1)
	j2, _ := json.Marshal(d2)
	if err1 != nil || err2 != nil || string(j1) != string(j2) || len(d1.Changed) != 1 || len(d1.OnlyInFrom) != 1 || len(d1.OnlyInTo) != 1 {
		t.Errorf("diff through the agent %s (%v), direct %s (%v)", j2, err2, j1, err1)
	}
	// Agent against agent, and the diff command's path.
	if d, _, err := gate.DiffBlobs(t.Context(), cfg, "ref", "eu", gate.BlobOptions{Mode: blob.ModeContent, CacheDir: t.TempDir()}); err != nil || len(d.Changed) != 1 {
		t.Errorf("DiffBlobs ref -> eu: %v, %+v", err, d)
	}
	if d, _, err := gate.DiffBlobs(t.Context(), cfg, "eu", "leafliar", gate.BlobOptions{Mode: blob.ModeContent, CacheDir: t.TempDir()}); err == nil {
		t.Errorf("DiffBlobs eu -> leafliar: no error, %+v", d)
	}
	for name, want := range map[string]string{"liar": "do not match its leaf", "leafliar": "not the manifest hash"} {
		_, _, err := gate.DiffBlobs(t.Context(), cfg, "ref", name, gate.BlobOptions{Mode: blob.ModeContent, CacheDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "agent ") {
			t.Errorf("diff against %s: %v, want an error naming the agent and saying %q", name, err, want)
		}
	}
	etag := gate.BuildManifests(context.Background(), cfg, regions[2:3], gate.BlobOptions{Mode: blob.ModeETag})
	if etag[0].Err == nil || !strings.Contains(etag[0].Err.Error(), "content-mode manifests only") {
		t.Errorf("ETag mode through an agent: %v", etag[0].Err)
	}
}

// TestAgentBlobCheck: the gate's blob check with a region behind its
// agent: an equal manifest passes on the signed summary alone; a
// different one fails only that region, naming its differing keys (its
// leaves and differing buckets fetched for the diff).
func TestAgentBlobCheck(t *testing.T) {
	files := map[string]string{"a.txt": "alpha", "b.txt": "bravo"}
	ref, same := blobDir(t, files), blobDir(t, files)
	files["b.txt"] = "BRAVO"
	other := blobDir(t, files)
	vec := newFixture(t, "us").vectors["us"]
	eq := startAgentBlobs(t, "eq", vec, same, nil)
	ne := startAgentBlobs(t, "ne", vec, other, nil)
	cfg := parseConfig(t, fmt.Sprintf("release: r1\ngate:\n  skip: [health, probes, dedupe_kv]\nregions:\n  - name: ref\n    vectors: %q\n    blobs: %q\n  - name: eq\n%s  - name: ne\n%s",
		vec, ref, eq.yaml(""), ne.yaml("")))
	v := run(t, cfg)
	c := check(v, "blobs")
	if fmt.Sprint(c.FailedRegions) != "[ne]" || !strings.Contains(strings.Join(c.Evidence, "\n"), `key "b.txt" differs`) {
		t.Errorf("blob check: status %s, failed %v, evidence %q", c.Status, c.FailedRegions, c.Evidence)
	}
	for _, r := range c.Regions {
		if want := r.Name != "ne"; (r.Status == gate.Pass) != want {
			t.Errorf("region %s: blob check %s", r.Name, r.Status)
		}
	}
}

// TestAgentBlobDiffHangs: an agent that answers the manifest summary and
// then hangs on its leaves holds the blob check no longer than the
// config's timeout, and fails only its own region.
func TestAgentBlobDiffHangs(t *testing.T) {
	ref := blobDir(t, map[string]string{"a.txt": "alpha"})
	other := blobDir(t, map[string]string{"a.txt": "ALPHA"})
	vec := newFixture(t, "us").vectors["us"]
	hang := startAgentBlobs(t, "hang", vec, other, func(key ed25519.PrivateKey, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/manifest" && r.URL.Query().Get("view") == "leaves" {
				<-r.Context().Done()
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	cfg := parseConfig(t, fmt.Sprintf("release: r1\ntimeout: 2s\ngate:\n  skip: [health, probes, dedupe_kv]\nregions:\n  - name: ref\n    vectors: %q\n    blobs: %q\n  - name: ref2\n    vectors: %q\n    blobs: %q\n  - name: hang\n%s",
		vec, ref, vec, ref, hang.yaml("")))
	done := make(chan *gate.Verdict, 1)
	go func() { done <- run(t, cfg) }()
	select {
	case v := <-done:
		c := check(v, "blobs")
		if fmt.Sprint(c.FailedRegions) != "[hang]" {
			t.Errorf("blob check: failed %v, status %s, evidence %q", c.FailedRegions, c.Status, c.Evidence)
		}
		for _, r := range v.Regions {
			if r.Name != "hang" && !r.Admit {
				t.Errorf("region %s not admitted", r.Name)
			}
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the gate waited on a hanging agent for 20 s (timeout: 2s)")
	}
	// `manifest` and `diff --blobs` give up after the timeout too.
	regions, _ := gate.SelectRegions(cfg, nil)
	t0 := time.Now()
	ms := gate.BuildManifests(t.Context(), cfg, regions, gate.BlobOptions{Mode: blob.ModeContent, CacheDir: t.TempDir()})
	out := gate.CompareManifests(t.Context(), cfg, blob.ModeContent, []gate.RegionManifest{ms[0], ms[2]})
	if out.Verdict != blob.VerdictInconclusive || !strings.Contains(out.Error, "within 2s (timeout)") || time.Since(t0) > 10*time.Second {
		t.Errorf("manifest with a hanging agent: %s, %q after %v", out.Verdict, out.Error, time.Since(t0))
	}
	if _, _, err := gate.DiffBlobs(t.Context(), cfg, "ref", "hang", gate.BlobOptions{Mode: blob.ModeContent, CacheDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("diff --blobs with a hanging agent: %v", err)
	}
}

// TestAgentRecordsHang: an agent whose region differs and that hangs when
// its records are asked for (to name the differing ids) holds the gate no
// longer than the config's timeout, and only its region is refused; a
// diff against it gives up too.
func TestAgentRecordsHang(t *testing.T) {
	pts := vectortest.Points(parity.IDString, 300, 4)
	ua := loadStore(t, "embedded", pts, parity.IDString)
	changed := append([]parity.Point(nil), pts...)
	changed[7].Text = "changed"
	ub := loadStore(t, "embedded", changed, parity.IDString)
	hang := startAgent(t, "hang", ub, func(key ed25519.PrivateKey, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/buckets" {
				select { // until the client gives up (or the test would hang in cleanup)
				case <-r.Context().Done():
				case <-time.After(45 * time.Second):
				}
				return
			}
			h.ServeHTTP(w, r)
		})
	}, nil)
	cfg := parseConfig(t, fmt.Sprintf("release: r1\ntimeout: 2s\ngate:\n  skip: [blobs, health, probes, dedupe_kv]\nregions:\n  - name: a\n    vectors: %q\n  - name: a2\n    vectors: %q\n  - name: hang\n%s",
		ua, ua, hang.yaml("")))
	done := make(chan *gate.Verdict, 1)
	go func() { done <- run(t, cfg) }()
	select {
	case v := <-done:
		for _, r := range v.Regions {
			if (r.Name != "hang") != r.Admit {
				t.Errorf("region %s: admit %v (%s, %q)", r.Name, r.Admit, r.Status, r.Reasons)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the gate waited on an agent hanging on its records for 30 s (timeout: 2s)")
	}
	errc := make(chan error, 1)
	go func() {
		_, err := gate.DiffRegions(context.Background(), cfg, "a", "hang", gate.ScanOptions{})
		errc <- err
	}()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "agent "+hang.URL) {
			t.Errorf("diff against an agent hanging on its records: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("diff waited on an agent hanging on its records for 30 s (timeout: 2s)")
	}
}
