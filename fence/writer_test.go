package fence

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// httpClaimer drives the HTTP API as a non-Go writer would.
type httpClaimer struct {
	url, token, region, owner string
}

func (c httpClaimer) post(t testing.TB, path string, body any, out any) int {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", c.url+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// TestTwoWritersReplayExactlyOnce: two application writers, one through
// the Go API and one through the HTTP API, replay the same 10,000 writes
// at the same time against the real Redis: every write is applied exactly
// once and the window's dedupe rate is 100 %.
func TestTwoWritersReplayExactlyOnce(t *testing.T) {
	for name, f := range fences(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var n int64 = 10000
			if name == "bbolt" {
				n = 2000 // an fsync per write; the 10,000 run on the real Redis
			}
			region := fmt.Sprintf("app-%d", rand.Uint64())
			run := fmt.Sprint(rand.Uint64())
			// A window no test run straddles (an hour's did at hh:00 on a
			// loaded machine, splitting the counts between two windows).
			const window = time.Duration(1 << 60) // ~36.5 years
			wGo, err := NewWriter(f, WriterOptions{Region: region, Lease: 30 * time.Second, Window: window})
			if err != nil {
				t.Fatal(err)
			}
			wHTTP, _ := NewWriter(f, WriterOptions{Region: region, Lease: 30 * time.Second, Window: window})
			h, err := NewHTTPHandler(HTTPOptions{Writers: map[string]*Writer{region: wHTTP}, Token: "s3cret"})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			hc := httpClaimer{url: srv.URL, token: "s3cret", region: region, owner: "http-writer"}
			applied := make([]atomic.Int32, n)
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { // Go API
				defer wg.Done()
				for i := 0; i < int(n); i++ {
					key := Key("doc"+fmt.Sprint(i), "rev1", "ih", run)
					for {
						st, err := wGo.Claim(ctx, key)
						if err != nil {
							t.Error(err)
							return
						}
						if st == HeldByOther {
							time.Sleep(time.Millisecond)
							continue
						}
						if st == Acquired {
							applied[i].Add(1)
							if _, err := wGo.Done(ctx, key); err != nil {
								t.Error(err)
								return
							}
						}
						break
					}
				}
			}()
			go func() { // HTTP API
				defer wg.Done()
				for i := 0; i < int(n); i++ {
					for {
						var cr struct{ Key, State string }
						code := hc.post(t, "/v1/fence/claim", map[string]any{"region": region, "source_id": "doc" + fmt.Sprint(i),
							"revision": "rev1", "index_hash": "ih", "partition": run, "owner": hc.owner}, &cr)
						if code != 200 {
							t.Errorf("claim: HTTP %d", code)
							return
						}
						if cr.State == "held" {
							time.Sleep(time.Millisecond)
							continue
						}
						if cr.State == "acquired" {
							applied[i].Add(1)
							var dr struct{ Duplicate bool }
							if code := hc.post(t, "/v1/fence/done", map[string]any{"region": region, "key": cr.Key, "owner": hc.owner}, &dr); code != 200 || dr.Duplicate {
								t.Errorf("done: HTTP %d duplicate %v", code, dr.Duplicate)
								return
							}
						}
						break
					}
				}
			}()
			wg.Wait()
			for i := range applied {
				if got := applied[i].Load(); got != 1 {
					t.Fatalf("write %d applied %d times, want exactly once", i, got)
				}
			}
			st, err := wGo.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Misses != n || st.Hits != n || st.Duplicates != 0 || st.Replayed != n || st.Rate != 1 {
				t.Errorf("window stats = %+v, want %d misses, %d hits, 0 duplicates, rate 1", st, n, n)
			}
			// The rate is a measure that can fail: a write applied twice
			// (Done on a done key) lowers it.
			k := Key("doc0", "rev1", "ih", run)
			if dup, _ := wGo.Done(ctx, k); !dup {
				t.Errorf("Done on a done key did not report a duplicate")
			}
			if st, _ := wGo.Stats(ctx); st.Duplicates != 1 || st.Rate >= 1 {
				t.Errorf("after a duplicate: %+v, want 1 duplicate and a rate below 1", st)
			}
		})
	}
}

func TestWriterReleaseAndLeaseExpiry(t *testing.T) {
	for name, f := range fences(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a, _ := NewWriter(f, WriterOptions{Region: "r", Owner: "A", Lease: 80 * time.Millisecond})
			b, _ := NewWriter(f, WriterOptions{Region: "r", Owner: "B", Lease: time.Minute})
			k := Key(fmt.Sprint(rand.Uint64()), "1", "ih", "p")
			if st, _ := a.Claim(ctx, k); st != Acquired {
				t.Fatalf("A: %v", st)
			}
			if st, _ := b.Claim(ctx, k); st != HeldByOther {
				t.Fatalf("B while A holds: %v, want held", st)
			}
			b.Release(ctx, k) // not B's: no effect
			if st, _ := b.Claim(ctx, k); st != HeldByOther {
				t.Fatalf("B released A's claim")
			}
			if err := a.Release(ctx, k); err != nil {
				t.Fatal(err)
			}
			if st, _ := b.Claim(ctx, k); st != Acquired {
				t.Fatalf("B after A released: %v, want acquired", st)
			}
			k2 := Key(fmt.Sprint(rand.Uint64()), "1", "ih", "p")
			a.Claim(ctx, k2)
			time.Sleep(150 * time.Millisecond)
			if st, _ := b.Claim(ctx, k2); st != Acquired {
				t.Fatalf("B after A's lease expired: %v, want acquired", st)
			}
		})
	}
}

func TestLeaseAndGeneration(t *testing.T) {
	for name, f := range fences(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			n := fmt.Sprint(rand.Uint64())
			since := time.Now().UTC().Truncate(time.Second)
			cur, ok, err := f.Acquire(ctx, n, Holder{Owner: "A", RunID: "r1", Host: "h1", Since: since}, time.Minute)
			if err != nil || !ok || cur.Owner != "A" {
				t.Fatalf("A acquire: %+v %v %v", cur, ok, err)
			}
			cur, ok, _ = f.Acquire(ctx, n, Holder{Owner: "B", RunID: "r2", Host: "h2", Since: time.Now()}, time.Minute)
			if ok || cur.Owner != "A" || cur.RunID != "r1" || cur.Host != "h1" || !cur.Since.Equal(since) {
				t.Fatalf("B acquire while A holds: ok=%v holder=%+v", ok, cur)
			}
			if _, ok, _ := f.Acquire(ctx, n, Holder{Owner: "A", Since: time.Now()}, 60*time.Millisecond); !ok {
				t.Fatalf("A could not renew")
			}
			time.Sleep(120 * time.Millisecond)
			if _, ok, _ := f.Acquire(ctx, n, Holder{Owner: "B"}, time.Minute); !ok {
				t.Fatalf("B could not take an expired lease")
			}
			f.Unlease(ctx, n, "A")
			if _, ok, _ := f.Acquire(ctx, n, Holder{Owner: "A"}, time.Minute); ok {
				t.Fatalf("A's Unlease released B's lease")
			}
			f.Unlease(ctx, n, "B")
			if _, ok, _ := f.Acquire(ctx, n, Holder{Owner: "A"}, time.Minute); !ok {
				t.Fatalf("B's Unlease did not release")
			}
			g1, _ := f.Generation(ctx, n, false, time.Minute)
			g2, _ := f.Generation(ctx, n, false, time.Minute)
			g3, _ := f.Generation(ctx, n, true, time.Minute)
			if g1 == "" || g1 != g2 || g3 == g1 {
				t.Fatalf("generations %q %q %q: want stable, then new when fresh", g1, g2, g3)
			}
		})
	}
}

func TestHTTPHandlerRejectsBadRequests(t *testing.T) {
	f, _ := Open("", t.TempDir()+"/f.db")
	defer f.Close()
	w, _ := NewWriter(f, WriterOptions{Region: "eu"})
	h, _ := NewHTTPHandler(HTTPOptions{Writers: map[string]*Writer{"eu": w}, Token: "tok"})
	good := `{"region":"eu","source_id":"a","revision":"1","index_hash":"ih","owner":"o"}`
	for _, c := range []struct {
		name, path, token, body string
		code                    int
		want                    string
	}{
		{"NoToken", "/v1/fence/claim", "", good, 401, "bearer token"},
		{"WrongToken", "/v1/fence/claim", "nope", good, 401, "bearer token"},
		{"Good", "/v1/fence/claim", "tok", good, 200, `"state":"acquired"`},
		{"UnknownField", "/v1/fence/claim", "tok", `{"region":"eu","source_id":"a","revision":"1","index_hash":"ih","owner":"o","extra":1}`, 400, `unknown field \"extra\"`},
		{"MissingFields", "/v1/fence/claim", "tok", `{"region":"eu","source_id":"a"}`, 400, "revision, index_hash, owner"},
		{"WrongType", "/v1/fence/claim", "tok", `{"region":"eu","source_id":5,"revision":"1","index_hash":"ih","owner":"o"}`, 400, `field \"source_id\"`},
		{"NotJSON", "/v1/fence/claim", "tok", `{region`, 400, "not JSON"},
		{"Empty", "/v1/fence/claim", "tok", ``, 400, "empty body"},
		{"Trailing", "/v1/fence/claim", "tok", good + `{}`, 400, "trailing data"},
		{"BadLease", "/v1/fence/claim", "tok", `{"region":"eu","source_id":"a","revision":"1","index_hash":"ih","owner":"o","lease_ms":-1}`, 400, "lease_ms"},
		{"UnknownRegion", "/v1/fence/claim", "tok", `{"region":"us","source_id":"a","revision":"1","index_hash":"ih","owner":"o"}`, 404, `unknown region \"us\" (known: eu)`},
		{"BadKey", "/v1/fence/done", "tok", `{"region":"eu","key":"xyz","owner":"o"}`, 400, "64 hex digits"},
		{"TooBig", "/v1/fence/claim", "tok", `{"region":"` + strings.Repeat("x", 70000) + `"}`, 413, "larger than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", c.path, strings.NewReader(c.body))
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Code; got != c.code || !strings.Contains(rec.Body.String(), c.want) {
				t.Errorf("HTTP %d %s, want %d containing %s", got, rec.Body.String(), c.code, c.want)
			}
		})
	}
	if _, err := NewHTTPHandler(HTTPOptions{Writers: map[string]*Writer{"eu": w}}); err == nil {
		t.Errorf("a handler without a token was accepted")
	}
}

// TestHTTPHandlerKVDown: a dedupe_kv that does not answer is a 503 that
// does not say where the KV lives; the scheme of the token is
// case-insensitive.
func TestHTTPHandlerKVDown(t *testing.T) {
	f, err := Open("redis://:secretpw@127.0.0.1:1/0", "")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, _ := NewWriter(f, WriterOptions{Region: "eu"})
	h, _ := NewHTTPHandler(HTTPOptions{Writers: map[string]*Writer{"eu": w}, Token: "tok"})
	req := httptest.NewRequest("POST", "/v1/fence/claim", strings.NewReader(`{"region":"eu","source_id":"a","revision":"1","index_hash":"ih","owner":"o"}`))
	req.Header.Set("Authorization", "bearer tok")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 503 || strings.Contains(rec.Body.String(), "127.0.0.1") || strings.Contains(rec.Body.String(), "secretpw") {
		t.Errorf("HTTP %d %s, want 503 naming no address or password", rec.Code, rec.Body.String())
	}
}

// TestWindowCountsPerRegionAndWindow: counts land in their region's
// current window only; the next window starts from zero.
func TestWindowCountsPerRegionAndWindow(t *testing.T) {
	for name, f := range fences(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			region := fmt.Sprintf("w-%d", rand.Uint64())
			const win = 400 * time.Millisecond
			// Start just after a window boundary, so both counts land in one.
			time.Sleep(win - time.Duration(time.Now().UnixNano()%int64(win)) + 10*time.Millisecond)
			f.Count(ctx, region, win, Counts{Hits: 999, Misses: 5})
			f.Count(ctx, region, win, Counts{Duplicates: 1})
			f.Count(ctx, region+"-other", win, Counts{Duplicates: 50})
			ws, err := f.Window(ctx, region, win)
			if err != nil {
				t.Fatal(err)
			}
			if ws.Hits != 999 || ws.Misses != 5 || ws.Duplicates != 1 || ws.Replayed != 1000 || ws.Rate != 0.999 || ws.Length != win {
				t.Errorf("window %+v, want 999 hits, 5 misses, 1 duplicate, rate 0.999", ws)
			}
			time.Sleep(win)
			if ws, _ := f.Window(ctx, region, win); ws.Hits != 0 || ws.Replayed != 0 || ws.Rate != 1 {
				t.Errorf("next window %+v, want empty (rate 1 with nothing replayed)", ws)
			}
		})
	}
}
