package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/ragparity/ragparity/gate"
)

// pgStoreURL returns the PostgreSQL URL with a unique table; the table is
// dropped when the test ends. It fails (not skips) when PostgreSQL is
// down: a suite that silently skips its only shared backend proves nothing.
func pgStoreURL(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	table := "rp_verdicts_test_" + hex.EncodeToString(b)
	u := pgtest.TableURL(table)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := OpenStore(ctx, u, "")
	if err != nil {
		t.Fatalf("PostgreSQL at %s is not reachable (run make services): %v", pgtest.URL(), err)
	}
	t.Cleanup(func() {
		if err := dropTable(context.Background(), s); err != nil {
			t.Errorf("drop %s: %v", table, err)
		}
		s.Close()
	})
	t.Logf("verdict store: PostgreSQL table %s", table)
	return u
}

func dropTable(ctx context.Context, s Store) error {
	switch st := s.(type) {
	case *pgStore:
		_, err := st.pool.Exec(ctx, "DROP TABLE IF EXISTS "+st.table)
		return err
	case *sqliteStore:
		_, err := st.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+st.table)
		return err
	}
	return nil
}

func openTestStore(t *testing.T, u string) Store {
	t.Helper()
	s, err := OpenStore(context.Background(), u, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// storeSuite is the contract every Store meets.
func storeSuite(t *testing.T, open func(t *testing.T) Store) {
	ctx := context.Background()
	signer, _ := gate.LoadSigner("")
	t.Run("EmptyStore", func(t *testing.T) {
		s := open(t)
		if _, err := s.Latest(ctx, ""); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Latest on an empty store: %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get of a missing id: %v, want ErrNotFound", err)
		}
		vs, err := s.List(ctx, "", 10)
		if err != nil || len(vs) != 0 {
			t.Fatalf("List = %d, %v", len(vs), err)
		}
	})
	t.Run("HistoryAndLatest", func(t *testing.T) {
		s := open(t)
		var ids []string
		for i, rel := range []string{"r1", "r1", "r2", "r1"} {
			v := testVerdict("", t0.Add(time.Duration(i)*time.Minute+123456789), region("a"), region("b"))
			v.ID = "v" + string(rune('0'+i))
			v.Release = rel
			if err := signer.Sign(v); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, v); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, v.ID)
		}
		got, err := s.Latest(ctx, "r1")
		if err != nil || got.ID != "v3" {
			t.Fatalf("Latest(r1) = %v, %v; want v3", got, err)
		}
		if err := got.Verify(signer.Public()); err != nil {
			t.Fatalf("stored verdict no longer verifies: %v", err)
		}
		if !got.CreatedAt.Equal(t0.Add(3*time.Minute + 123456789)) {
			t.Fatalf("created_at %v lost precision", got.CreatedAt)
		}
		if got, _ := s.Latest(ctx, "r2"); got == nil || got.ID != "v2" {
			t.Fatalf("Latest(r2) = %v", got)
		}
		if got, _ := s.Latest(ctx, ""); got == nil || got.ID != "v3" {
			t.Fatalf("Latest(any) = %v", got)
		}
		if _, err := s.Latest(ctx, "r9"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Latest(r9) = %v", err)
		}
		vs, err := s.List(ctx, "r1", 2)
		if err != nil || len(vs) != 2 || vs[0].ID != "v3" || vs[1].ID != "v1" {
			t.Fatalf("List(r1, 2) = %v, %v", vs, err)
		}
		vs, _ = s.List(ctx, "", 10)
		if len(vs) != 4 {
			t.Fatalf("List(any) = %d verdicts, want 4", len(vs))
		}
		g, err := s.Get(ctx, "v1")
		if err != nil || g.ID != "v1" || g.Release != "r1" || len(g.Regions) != 2 || len(g.Checks[1].Measures) != 5 {
			t.Fatalf("Get(v1) = %+v, %v", g, err)
		}
	})
	t.Run("PutIsIdempotentAndConflicts", func(t *testing.T) {
		s := open(t)
		v := testVerdict("same", t0, region("a"))
		if err := s.Put(ctx, v); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, v); err != nil {
			t.Fatalf("second Put of the same verdict: %v", err)
		}
		w := testVerdict("same", t0, blocked(region("a"), "x"))
		if err := s.Put(ctx, w); !errors.Is(err, ErrConflict) {
			t.Fatalf("Put of another verdict under the same id: %v, want ErrConflict", err)
		}
	})
	t.Run("ConcurrentPuts", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := testVerdict("", t0.Add(time.Duration(i)*time.Second), region("a"))
				v.ID = "c" + hex.EncodeToString([]byte{byte(i)})
				errs <- s.Put(ctx, v)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := s.Latest(ctx, "r1"); got == nil || got.ID != "c13" {
			t.Fatalf("Latest after concurrent puts = %v, want c13", got)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		s := open(t)
		c, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Latest(c, ""); err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("Latest with a cancelled context: %v, want an error", err)
		}
	})
}

// detailSuite: a verdict's detail is kept beside it and read back.
func detailSuite(t *testing.T, s Store) {
	ds, ok := s.(DetailStore)
	if !ok {
		t.Fatalf("%T keeps no detail", s)
	}
	ctx := context.Background()
	if _, err := ds.GetDetail(ctx, "none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetDetail of a missing id: %v, want ErrNotFound", err)
	}
	d := &gate.Detail{Probes: &gate.ProbeDetail{DriftThreshold: 0.03, Questions: []gate.QuestionDetail{{ID: "q1", DeltaS: map[string]float64{"a": 0.2}, Drift: 0.01}}},
		BucketMaps: []gate.BucketMap{{From: "a", To: "b", Buckets: 4096, Differing: []int{7}}}}
	v := testVerdict("vd", time.Now().UTC().Truncate(time.Millisecond), region("a"))
	if err := Record(ctx, s, v, d); err != nil {
		t.Fatal(err)
	}
	got, err := ds.GetDetail(ctx, "vd")
	if err != nil || got.Probes == nil || got.Probes.Questions[0].DeltaS["a"] != 0.2 || len(got.BucketMaps) != 1 || got.BucketMaps[0].Differing[0] != 7 {
		t.Fatalf("GetDetail = %+v, %v", got, err)
	}
}

func TestStoresKeepDetail(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		detailSuite(t, openTestStore(t, "sqlite://"+filepath.ToSlash(filepath.Join(t.TempDir(), "v.db"))))
	})
	t.Run("Postgres", func(t *testing.T) { detailSuite(t, openTestStore(t, pgStoreURL(t))) })
}

func TestSQLiteStore(t *testing.T) {
	storeSuite(t, func(t *testing.T) Store {
		return openTestStore(t, "sqlite://"+filepath.ToSlash(filepath.Join(t.TempDir(), "v.db")))
	})
}

func TestPostgresStore(t *testing.T) {
	storeSuite(t, func(t *testing.T) Store { return openTestStore(t, pgStoreURL(t)) })
}

func TestOpenStoreURLs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Run("DefaultUnderCacheRoot", func(t *testing.T) {
		s, err := OpenStore(ctx, "", dir)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := os.Stat(filepath.Join(dir, "verdicts.db")); err != nil {
			t.Fatalf("default store not at cache_dir/verdicts.db: %v", err)
		}
	})
	t.Run("SQLiteTableParam", func(t *testing.T) {
		s, err := OpenStore(ctx, "sqlite://"+filepath.ToSlash(filepath.Join(dir, "x.db"))+"?table=other_verdicts", "")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := s.(*sqliteStore).table; got != "other_verdicts" {
			t.Fatalf("table = %q", got)
		}
	})
	for _, bad := range []string{"redis://x", "sqlite://" + dir + "/y.db?table=Robert')%3B+DROP", "sqlite://" + dir + "/y.db?a=1;b=2", "sqlite:"} {
		if s, err := OpenStore(ctx, bad, dir); err == nil {
			s.Close()
			t.Errorf("OpenStore(%q) succeeded", bad)
		} else if !strings.Contains(err.Error(), "verdict store") {
			t.Errorf("OpenStore(%q): %v does not name the verdict store", bad, err)
		}
	}
	t.Run("SQLiteSurvivesReopen", func(t *testing.T) {
		u := "sqlite://" + filepath.ToSlash(filepath.Join(dir, "reopen.db"))
		s := openTestStore(t, u)
		if err := s.Put(ctx, testVerdict("keep", t0, region("a"))); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s2 := openTestStore(t, u)
		if v, err := s2.Latest(ctx, "r1"); err != nil || v.ID != "keep" {
			t.Fatalf("after reopen: %v, %v", v, err)
		}
	})
}

// TestReplicasSharePostgres: two servers on one PostgreSQL store; the
// verdict one computes is served by both, and by the other only after it
// polled the store (never on the request path).
func TestReplicasSharePostgres(t *testing.T) {
	u := pgStoreURL(t)
	signer, err := gate.LoadSigner("")
	if err != nil {
		t.Fatal(err)
	}
	signer.Ephemeral = false // a configured key both replicas share
	clk := newClock(t0.Add(time.Minute))
	newReplica := func(fv *fakeVerifier) *Server {
		s := newTestServer(t, ServerOptions{
			Verify: fv.Verify, Store: openTestStore(t, u), Signer: signer, TrustedKey: signer.Public(),
			PollInterval: 50 * time.Millisecond, Now: clk.Now,
		})
		return s
	}
	fa := &fakeVerifier{step: time.Second}
	fa.set(testVerdict("", t0, region("a"), region("b")))
	fb := &fakeVerifier{step: time.Second, err: errors.New("replica b must not need to verify")}
	a, b := newReplica(fa), newReplica(fb)
	runServer(t, a)
	waitFor(t, "replica a's start-up verdict", func() bool { return a.Current() != nil })
	runServer(t, b)
	waitFor(t, "replica b to load a's verdict", func() bool { return b.Current() != nil })
	if fb.calls.Load() != 0 {
		t.Fatalf("replica b verified %d times although a fresh verdict was stored", fb.calls.Load())
	}

	// Region b drifts; replica a re-verifies on request.
	fa.set(testVerdict("", t0, region("a"), blocked(region("b"), "failed index_hash")))
	v2, err := a.VerifyNow(context.Background(), "drift")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica b to load the new verdict", func() bool { return b.Current().ID == v2.ID })
	for name, s := range map[string]*Server{"a": a, "b": b} {
		rec := do(t, s.Handler(), "GET", "/v1/verdicts/latest", nil, nil)
		if !strings.Contains(rec.Body.String(), v2.ID) {
			t.Errorf("replica %s latest: %d %s", name, rec.Code, rec.Body)
		}
		rec = do(t, s.Handler(), "GET", "/v1/admit", nil, map[string]string{"X-Region-Pin": "b", "X-Ragparity-Fallback": "route"})
		if rec.Code != 200 || rec.Header().Get("X-Route-Region") != "a" {
			t.Errorf("replica %s admit pin b: %d %q", name, rec.Code, rec.Header().Get("X-Route-Region"))
		}
		if rec := do(t, s.Handler(), "GET", "/v1/verdicts?limit=5", nil, nil); strings.Count(rec.Body.String(), `"signature"`) != 2 {
			t.Errorf("replica %s history: %s", name, rec.Body)
		}
	}
	if rec := do(t, b.Handler(), "GET", "/readyz", nil, nil); !strings.Contains(rec.Body.String(), `"source": "store"`) {
		t.Errorf("replica b readyz: %s", rec.Body)
	}

	// A verdict in the store not signed by the trusted key is ignored.
	forged := testVerdict("", t0.Add(time.Hour), region("a"), region("b"))
	forged.ID = "forged"
	other, _ := gate.LoadSigner("")
	other.Sign(forged)
	st := openTestStore(t, u)
	if err := st.Put(context.Background(), forged); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got := b.Current().ID; got != v2.ID {
		t.Fatalf("replica b serves %s, a verdict signed by another key", got)
	}
	rec := do(t, b.Handler(), "GET", "/metrics", nil, nil)
	if !strings.Contains(rec.Body.String(), "ragparity_gate_store_bad_signatures_total 1") {
		t.Errorf("bad signature not counted")
	}
}

// The history endpoints verify each stored verdict against the server's
// trusted key: a forged one (written straight into the shared store) is
// refused by id and left out of the list, with a count.
func TestHistoryMarksForgedVerdicts(t *testing.T) {
	ctx := context.Background()
	st, err := OpenStore(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	good, _ := gate.LoadSigner("")
	forger, _ := gate.LoadSigner("")
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	ok := testVerdict("v-good", t0, region("a"))
	good.Sign(ok)
	forged := testVerdict("v-forged", t0.Add(time.Second), blocked(region("a"), "x"))
	forger.Sign(forged)
	for _, v := range []*gate.Verdict{ok, forged} {
		if err := st.Put(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	s := newTestServer(t, ServerOptions{Store: st, TrustedKey: good.Public(), Signer: good})
	h := s.Handler()
	if rec := do(t, h, "GET", "/v1/verdicts/v-good", nil, nil); rec.Code != 200 {
		t.Errorf("good verdict: %d %s", rec.Code, rec.Body)
	}
	rec := do(t, h, "GET", "/v1/verdicts/v-forged", nil, nil)
	if rec.Code == 200 && !strings.Contains(rec.Body.String(), `"signature_valid":false`) {
		t.Errorf("forged verdict served unmarked: %d %s", rec.Code, rec.Body)
	}
	rec = do(t, h, "GET", "/v1/verdicts?limit=10", nil, nil)
	var list []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatalf("list: %v %s", err, rec.Body)
	}
	for _, v := range list {
		if v["id"] == "v-forged" {
			t.Errorf("forged verdict listed unmarked: %v", v)
		}
	}
	if len(list) != 1 || rec.Header().Get("X-Ragparity-Unverified-Omitted") != "1" {
		t.Errorf("list has %d verdicts, omitted header %q; want 1 and 1", len(list), rec.Header().Get("X-Ragparity-Unverified-Omitted"))
	}
}

// An unknown parameter on a postgres gate.store URL would reach PostgreSQL
// as a runtime parameter: refused, named.
func TestOpenStoreUnknownPostgresParameter(t *testing.T) {
	_, err := OpenStore(context.Background(), "postgres://u:pw@127.0.0.1:1/db?sslmode=disable&tabel=x", "")
	if err == nil || !strings.Contains(err.Error(), `"tabel"`) || !strings.Contains(err.Error(), "gate.store") {
		t.Fatalf("OpenStore: %v, want an error naming tabel", err)
	}
}
