package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragparity/ragparity/gate"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// region returns an admitted region with the common identity.
func region(name string) gate.RegionVerdict {
	return gate.RegionVerdict{Name: name, Admit: true, IndexHash: "h1", SchemaRev: "s1", ModelTag: "m1", SecretsRev: "k1"}
}

func blocked(r gate.RegionVerdict, why string) gate.RegionVerdict {
	r.Admit = false
	r.Reasons = []string{why}
	return r
}

// testVerdict is a pass verdict for release r1 made at created, valid 15 minutes.
func testVerdict(id string, created time.Time, regions ...gate.RegionVerdict) *gate.Verdict {
	v := &gate.Verdict{
		ID: id, Release: "r1", CreatedAt: created, ExpiresAt: created.Add(15 * time.Minute),
		Decision: gate.Pass, Regions: regions, InputsDigest: "d",
		Checks: []gate.Check{
			{Name: gate.CheckIndexHash, Status: gate.Pass, Figure: "equal", Evidence: []string{}, ElapsedMS: 1200},
			{Name: gate.CheckProbes, Status: gate.Pass, Evidence: []string{}, Measures: []gate.Measure{
				{Name: gate.MeasureDeltaSDrift, Value: 0.012},
				{Name: gate.MeasureDeltaS, Region: "a", Value: 0.31},
				{Name: "lambda_convergent", Region: "a", Value: 19},
				{Name: "lambda_chaotic", Region: "a", Value: 0},
				{Name: "recall_at_10", Region: "a", Value: 0.9},
			}},
			{Name: gate.CheckDedupeKV, Status: gate.Pass, Evidence: []string{}, Measures: []gate.Measure{
				{Name: gate.MeasureDedupeHits, Region: "a", Value: 1000},
				{Name: gate.MeasureDedupeMisses, Region: "a", Value: 0},
			}},
		},
	}
	for _, r := range regions {
		if !r.Admit && v.Decision == gate.Pass {
			v.Decision = gate.Fail
			v.Checks[0].Status = gate.Fail
		}
		if !r.Admit {
			v.Checks[0].FailedRegions = append(v.Checks[0].FailedRegions, r.Name)
		}
	}
	return v
}

// fakeVerifier returns the verdicts set with next, counting calls.
type fakeVerifier struct {
	mu    sync.Mutex
	next  *gate.Verdict
	err   error
	calls atomic.Int64
	block chan struct{} // when set, Verify waits on it
	// step advances created_at by this much per call, so that each
	// verification is newer than the last.
	step time.Duration
}

func (f *fakeVerifier) set(v *gate.Verdict) { f.mu.Lock(); f.next = v; f.mu.Unlock() }

func (f *fakeVerifier) Verify(ctx context.Context) (*gate.Verdict, *gate.Detail, error) {
	v, err := f.verdict(ctx)
	return v, nil, err
}

func (f *fakeVerifier) verdict(ctx context.Context) (*gate.Verdict, error) {
	n := f.calls.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if f.next == nil {
		return nil, fmt.Errorf("fake: no verdict set")
	}
	c := *f.next // a copy: the server signs it
	c.CreatedAt = c.CreatedAt.Add(time.Duration(n) * f.step)
	c.ExpiresAt = c.ExpiresAt.Add(time.Duration(n) * f.step)
	c.Regions = append([]gate.RegionVerdict(nil), f.next.Regions...)
	return &c, nil
}

type clock struct{ t atomic.Int64 }

func (c *clock) Now() time.Time         { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) Set(t time.Time)        { c.t.Store(t.UnixNano()) }
func newClock(t time.Time) *clock       { c := &clock{}; c.Set(t); return c }
func (c *clock) Add(d time.Duration)    { c.t.Add(int64(d)) }
func (c *clock) Since(t time.Time) bool { return c.Now().After(t) }

func newTestServer(t *testing.T, o ServerOptions) *Server {
	t.Helper()
	if o.Verify == nil {
		o.Verify = (&fakeVerifier{}).Verify
	}
	if o.Release == "" {
		o.Release = "r1"
	}
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runServer starts s.Run until the test ends.
func runServer(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func do(t *testing.T, h http.Handler, method, target string, body io.Reader, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const (
	hexA = "3f2a9c0d5e7b81f4a6c2d09e8b7f5a3c1d2e4f6a8b0c9d7e5f3a1b2c4d6e8f0a"
	hexB = "a71c4e9b2d0f38c6e5a4b7d1f0c2e9a8b6d4f2c0e1a3b5d7f9c8e6a4b2d0f1e3"
)

func hashed(r gate.RegionVerdict, h string) gate.RegionVerdict { r.IndexHash = h; return r }

func TestAdmitMatrix(t *testing.T) {
	routing := map[string][]string{"eu": {"a", "b", "c"}, "us": {"c", "b", "a"}}
	drifted := region("b")
	drifted.IndexHash = "h2"
	cases := []struct {
		name       string
		verdict    *gate.Verdict // nil: no verdict yet
		now        time.Time
		target     string
		hdr        map[string]string
		wantCode   int
		wantRegion string
		wantReason string
	}{
		{name: "PinAdmitted", verdict: testVerdict("v1", t0, region("a"), region("b")),
			hdr: map[string]string{"X-Region-Pin": "b", "X-Client-Region": "eu"}, wantCode: 200, wantRegion: "b"},
		{name: "PinAdmittedAllHeadersMatch", verdict: testVerdict("v1", t0, region("a"), region("b")),
			hdr:      map[string]string{"X-Region-Pin": "a", "X-Release": "r1", "X-Index-Hash": "h1", "X-Schema-Rev": "s1", "X-Model-Tag": "m1"},
			wantCode: 200, wantRegion: "a"},
		{name: "PinNotAdmittedIs421NamingTheAlternative", verdict: testVerdict("v1", t0, blocked(region("a"), "failed index_hash"), region("b"), region("c")),
			target: "/v1/admit?client_region=eu", hdr: map[string]string{"X-Region-Pin": "a"}, wantCode: 421, wantRegion: "b",
			wantReason: "region a not admitted for this request; X-Route-Region names an admitted alternative"},
		{name: "PinUnknownRegionIs421", verdict: testVerdict("v1", t0, region("a"), region("b")),
			hdr: map[string]string{"X-Region-Pin": "zz"}, wantCode: 421, wantRegion: "a", wantReason: "region zz not admitted"},
		{name: "PinNotAdmittedFallsBackWhenTheRouterFollows", verdict: testVerdict("v1", t0, blocked(region("a"), "failed index_hash"), region("b"), region("c")),
			target: "/v1/admit?client_region=eu", hdr: map[string]string{"X-Region-Pin": "a", "X-Ragparity-Fallback": "route"}, wantCode: 200, wantRegion: "b"},
		{name: "FallbackHeaderIsCaseInsensitive", verdict: testVerdict("v1", t0, blocked(region("a"), "x"), region("b")),
			hdr: map[string]string{"X-Region-Pin": "a", "X-Ragparity-Fallback": "Route"}, wantCode: 200, wantRegion: "b"},
		{name: "FallbackHeaderOtherValueIs400", verdict: testVerdict("v1", t0, region("a")),
			hdr: map[string]string{"X-Region-Pin": "a", "X-Ragparity-Fallback": "yes"}, wantCode: 400, wantReason: `X-Ragparity-Fallback must be "route"`},
		{name: "ClientRegionQueryBeatsHeader", verdict: testVerdict("v1", t0, blocked(region("a"), "x"), region("b"), region("c")),
			target: "/v1/admit?client_region=us", hdr: map[string]string{"X-Region-Pin": "a", "X-Client-Region": "eu", "X-Ragparity-Fallback": "route"}, wantCode: 200, wantRegion: "c"},
		{name: "HashPrefixOf12HexMatches", verdict: testVerdict("v1", t0, hashed(region("a"), hexA), hashed(region("b"), hexB)),
			hdr: map[string]string{"X-Region-Pin": "b", "X-Index-Hash": hexB[:12]}, wantCode: 200, wantRegion: "b"},
		{name: "HashPrefixUpperCaseMatches", verdict: testVerdict("v1", t0, hashed(region("a"), hexA), hashed(region("b"), hexB)),
			hdr: map[string]string{"X-Region-Pin": "b", "X-Index-Hash": strings.ToUpper(hexB[:20])}, wantCode: 200, wantRegion: "b"},
		{name: "HashPrefixPicksTheMatchingRegion", verdict: testVerdict("v1", t0, hashed(region("a"), hexA), hashed(region("b"), hexB)),
			hdr: map[string]string{"X-Index-Hash": hexB[:16]}, wantCode: 200, wantRegion: "b"},
		{name: "HashPrefixShorterThan12DoesNotMatch", verdict: testVerdict("v1", t0, hashed(region("a"), hexA)),
			hdr: map[string]string{"X-Index-Hash": hexA[:11]}, wantCode: 503, wantReason: "no admitted region matches"},
		{name: "HashPrefixOfNoHashDoesNotMatch", verdict: testVerdict("v1", t0, hashed(region("a"), hexA)),
			hdr: map[string]string{"X-Index-Hash": "0123456789ab"}, wantCode: 503, wantReason: "no admitted region matches"},
		{name: "HashPrefixAmbiguousIs400", verdict: testVerdict("v1", t0, hashed(region("a"), hexA), hashed(region("b"), hexA[:14]+"ffff"+hexA[18:])),
			hdr: map[string]string{"X-Index-Hash": hexA[:12]}, wantCode: 400, wantReason: "starts several index hashes"},
		{name: "NoPinNearest", verdict: testVerdict("v1", t0, region("a"), region("b"), region("c")),
			hdr: map[string]string{"X-Client-Region": "us"}, wantCode: 200, wantRegion: "c"},
		{name: "PinNotAdmittedNoFallback", verdict: testVerdict("v1", t0, blocked(region("a"), "x"), blocked(region("b"), "x")),
			hdr: map[string]string{"X-Region-Pin": "a"}, wantCode: 503, wantReason: "region a not admitted and no admitted fallback matches"},
		{name: "PinHashMismatchFallsBackToMatchingRegion", verdict: testVerdict("v1", t0, region("a"), drifted),
			hdr: map[string]string{"X-Region-Pin": "b", "X-Index-Hash": "h1", "X-Ragparity-Fallback": "route"}, wantCode: 200, wantRegion: "a"},
		{name: "PinHashMismatchIs421WithoutFallback", verdict: testVerdict("v1", t0, region("a"), drifted),
			hdr: map[string]string{"X-Region-Pin": "b", "X-Index-Hash": "h1"}, wantCode: 421, wantRegion: "a", wantReason: "region b not admitted for this request"},
		{name: "HashMismatchNowhere", verdict: testVerdict("v1", t0, region("a"), region("b")),
			hdr: map[string]string{"X-Region-Pin": "a", "X-Index-Hash": "h9"}, wantCode: 503, wantReason: "no admitted fallback matches"},
		{name: "SchemaMismatch", verdict: testVerdict("v1", t0, region("a")),
			hdr: map[string]string{"X-Schema-Rev": "s2"}, wantCode: 503, wantReason: "no admitted region matches"},
		{name: "OtherRelease409", verdict: testVerdict("v1", t0, region("a")),
			hdr: map[string]string{"X-Region-Pin": "a", "X-Release": "r0"}, wantCode: 409, wantReason: "verdict is for release r1"},
		{name: "Expired", verdict: testVerdict("v1", t0, region("a")), now: t0.Add(15 * time.Minute),
			hdr: map[string]string{"X-Region-Pin": "a"}, wantCode: 503, wantReason: "verdict expired"},
		{name: "Inconclusive", verdict: func() *gate.Verdict {
			v := testVerdict("v1", t0, region("a"), region("b"))
			v.Decision = gate.Inconclusive
			return v
		}(), hdr: map[string]string{"X-Region-Pin": "a"}, wantCode: 503, wantReason: "verdict inconclusive"},
		{name: "NoVerdict", hdr: map[string]string{"X-Region-Pin": "a"}, wantCode: 503, wantReason: "no verdict yet"},
		{name: "EnvoyPathPrefixAndMethod", verdict: testVerdict("v1", t0, region("a")),
			target: "/v1/admit/api/search?q=x", hdr: map[string]string{"X-Region-Pin": "a"}, wantCode: 200, wantRegion: "a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock(t0.Add(time.Minute))
			if !tc.now.IsZero() {
				clk.Set(tc.now)
			}
			s := newTestServer(t, ServerOptions{Routing: routing, Now: clk.Now})
			if tc.verdict != nil {
				s.Install(tc.verdict, "local")
			}
			target, method := tc.target, http.MethodGet
			if target == "" {
				target = "/v1/admit"
			}
			if strings.HasPrefix(target, "/v1/admit/") {
				method = http.MethodPost
			}
			rec := do(t, s.Handler(), method, target, nil, tc.hdr)
			if got, want := rec.Code, tc.wantCode; got != want {
				t.Fatalf("code = %d, want %d (reason %q)", got, want, rec.Header().Get("X-Ragparity-Reason"))
			}
			if got, want := rec.Header().Get("X-Route-Region"), tc.wantRegion; got != want {
				t.Errorf("X-Route-Region = %q, want %q", got, want)
			}
			if got := rec.Header().Get("X-Ragparity-Reason"); !strings.Contains(got, tc.wantReason) || (tc.wantReason == "") != (got == "") {
				t.Errorf("X-Ragparity-Reason = %q, want it to contain %q", got, tc.wantReason)
			}
			if tc.verdict != nil && tc.wantCode != 200 && rec.Header().Get("X-Ragparity-Verdict") != tc.verdict.ID {
				t.Errorf("X-Ragparity-Verdict = %q, want %q", rec.Header().Get("X-Ragparity-Verdict"), tc.verdict.ID)
			}
		})
	}
}

// headerWriter is a ResponseWriter that reuses its header map, to count
// the allocations of the admit handler alone.
type headerWriter struct {
	h    http.Header
	code int
}

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *headerWriter) WriteHeader(c int)           { w.code = c }

func TestAdmitDoesNotAllocate(t *testing.T) {
	s := newTestServer(t, ServerOptions{Routing: map[string][]string{"eu": {"a", "b"}}})
	s.Install(testVerdict("v1", time.Now(), blocked(region("a"), "x"), region("b")), "local")
	req := httptest.NewRequest("GET", "/v1/admit", nil)
	req.Header.Set("X-Region-Pin", "a")
	req.Header.Set("X-Client-Region", "eu")
	req.Header.Set("X-Release", "r1")
	req.Header.Set("X-Index-Hash", "h1")
	req.Header.Set("X-Ragparity-Fallback", "route")
	w := &headerWriter{h: http.Header{}}
	s.handleAdmit(w, req)
	if w.code != 200 || w.h.Get("X-Route-Region") != "b" {
		t.Fatalf("code %d region %q", w.code, w.h.Get("X-Route-Region"))
	}
	if n := testing.AllocsPerRun(1000, func() { s.handleAdmit(w, req) }); n != 0 {
		t.Errorf("admit allocates %.1f times per request, want 0", n)
	}
	t.Run("HashPrefix", func(t *testing.T) {
		s.Install(testVerdict("v2", time.Now().Add(time.Second), hashed(region("a"), hexA), hashed(region("b"), hexB)), "local")
		req.Header.Set("X-Index-Hash", strings.ToUpper(hexB[:12]))
		req.Header.Set("X-Region-Pin", "b")
		s.handleAdmit(w, req)
		if w.code != 200 || w.h.Get("X-Route-Region") != "b" {
			t.Fatalf("code %d region %q", w.code, w.h.Get("X-Route-Region"))
		}
		if n := testing.AllocsPerRun(1000, func() { s.handleAdmit(w, req) }); n != 0 {
			t.Errorf("admit with a hash prefix allocates %.1f times per request, want 0", n)
		}
	})
}

func BenchmarkAdmitHandler(b *testing.B) {
	s, _ := NewServer(ServerOptions{Verify: (&fakeVerifier{}).Verify, Release: "r1"})
	s.Install(testVerdict("v1", time.Now(), region("a"), region("b")), "local")
	req := httptest.NewRequest("GET", "/v1/admit", nil)
	req.Header.Set("X-Region-Pin", "a")
	req.Header.Set("X-Release", "r1")
	w := &headerWriter{h: http.Header{}}
	h := s.Handler()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

func TestVerifyEndpoint(t *testing.T) {
	fv := &fakeVerifier{step: time.Second}
	fv.set(testVerdict("", t0, region("a"), region("b")))
	signer, err := gate.LoadSigner("")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, ServerOptions{Verify: fv.Verify, Token: "s3cret-token", Signer: signer, MaxBodyBytes: 1024})
	runServer(t, s)
	h := s.Handler()
	auth := map[string]string{"Authorization": "Bearer s3cret-token"}
	// With no verdict and no schedule, the server verifies once at start.
	waitFor(t, "the start-up verification", func() bool { return s.Current() != nil })
	started := fv.calls.Load()

	t.Run("TokenRequired", func(t *testing.T) {
		for _, hdr := range []map[string]string{
			nil,
			{"Authorization": "Bearer wrong-token!"},
			{"Authorization": "Bearer s3cret-toke"},
			{"Authorization": "Bearer s3cret-token-and-more"},
			{"Authorization": "Basic s3cret-token"},
			{"Authorization": "s3cret-token"},
			{"Authorization": "Bearer "},
		} {
			rec := do(t, h, "POST", "/v1/verify", nil, hdr)
			if got, want := rec.Code, http.StatusUnauthorized; got != want {
				t.Errorf("%v: code = %d, want %d", hdr, got, want)
			}
			if rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%v: no WWW-Authenticate", hdr)
			}
		}
		if got := fv.calls.Load(); got != started {
			t.Fatalf("verifier ran %d times without a token", got-started)
		}
	})
	t.Run("TokenComparedByHash", func(t *testing.T) {
		// Whatever the length of the candidate, the compared values are
		// fixed-size digests (subtle.ConstantTimeCompare returns early on
		// a length difference otherwise).
		for _, tok := range []string{"", "s", "s3cret-token", strings.Repeat("x", 4096)} {
			req := httptest.NewRequest("POST", "/v1/verify", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if got, want := s.authorized(req), tok == "s3cret-token"; got != want {
				t.Errorf("authorized(%.10q) = %v, want %v", tok, got, want)
			}
		}
	})
	t.Run("BodyLimit", func(t *testing.T) {
		body := `{"reason": "` + strings.Repeat("x", 2000) + `"}`
		rec := do(t, h, "POST", "/v1/verify", strings.NewReader(body), auth)
		if got, want := rec.Code, http.StatusRequestEntityTooLarge; got != want {
			t.Fatalf("code = %d, want %d: %s", got, want, rec.Body)
		}
	})
	t.Run("UnknownFieldRejected", func(t *testing.T) {
		rec := do(t, h, "POST", "/v1/verify", strings.NewReader(`{"reason": "x", "force": true}`), auth)
		if got, want := rec.Code, http.StatusBadRequest; got != want || !strings.Contains(rec.Body.String(), "force") {
			t.Fatalf("code = %d, want %d: %s", got, want, rec.Body)
		}
	})
	t.Run("TrailingDataRejected", func(t *testing.T) {
		rec := do(t, h, "POST", "/v1/verify", strings.NewReader(`{"reason": "x"} {}`), auth)
		if got, want := rec.Code, http.StatusBadRequest; got != want {
			t.Fatalf("code = %d, want %d: %s", got, want, rec.Body)
		}
	})
	t.Run("NotJSONRejected", func(t *testing.T) {
		rec := do(t, h, "POST", "/v1/verify", strings.NewReader(`reason=x`), auth)
		if got, want := rec.Code, http.StatusBadRequest; got != want {
			t.Fatalf("code = %d, want %d: %s", got, want, rec.Body)
		}
	})
	t.Run("WrongMethod", func(t *testing.T) {
		rec := do(t, h, "GET", "/v1/verify", nil, auth)
		if got, want := rec.Code, http.StatusMethodNotAllowed; got != want {
			t.Fatalf("code = %d, want %d", got, want)
		}
	})
	t.Run("VerifiesSignsAndServes", func(t *testing.T) {
		before := fv.calls.Load()
		rec := do(t, h, "POST", "/v1/verify", strings.NewReader(`{"reason": "index rebuilt"}`), auth)
		if got, want := rec.Code, http.StatusOK; got != want {
			t.Fatalf("code = %d, want %d: %s", got, want, rec.Body)
		}
		var v gate.Verdict
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		if fv.calls.Load() <= before {
			t.Fatal("verifier did not run")
		}
		if v.ID == "" || !strings.HasPrefix(v.KeyID, gate.EphemeralKeyPrefix) {
			t.Fatalf("id %q key_id %q: want an id and an ephemeral key id", v.ID, v.KeyID)
		}
		if err := v.Verify(signer.Public()); err != nil {
			t.Fatal(err)
		}
		if got := s.Current(); got == nil || got.ID != v.ID {
			t.Fatalf("serving %v, want %s", got, v.ID)
		}
		latest := do(t, h, "GET", "/v1/verdicts/latest", nil, nil)
		var lv gate.Verdict
		json.Unmarshal(latest.Body.Bytes(), &lv)
		if latest.Code != 200 || lv.ID != v.ID || lv.Signature != v.Signature {
			t.Fatalf("latest = %d %s", latest.Code, latest.Body)
		}
		byID := do(t, h, "GET", "/v1/verdicts/"+v.ID, nil, nil)
		if byID.Code != 200 {
			t.Fatalf("/v1/verdicts/%s = %d", v.ID, byID.Code)
		}
		if c := do(t, h, "GET", "/v1/verdicts/nope", nil, nil).Code; c != 404 {
			t.Fatalf("unknown id: %d, want 404", c)
		}
	})
	t.Run("NoWait", func(t *testing.T) {
		rec := do(t, h, "POST", "/v1/verify?wait=false", nil, auth)
		if got, want := rec.Code, http.StatusAccepted; got != want {
			t.Fatalf("code = %d, want %d", got, want)
		}
	})
	t.Run("VerifyError", func(t *testing.T) {
		// Let the queued verification of NoWait finish first.
		if _, err := s.VerifyNow(context.Background(), "settle"); err != nil {
			t.Fatal(err)
		}
		fv.mu.Lock()
		fv.err = fmt.Errorf("qdrant unreachable")
		fv.mu.Unlock()
		defer func() { fv.mu.Lock(); fv.err = nil; fv.mu.Unlock() }()
		cur := s.Current()
		rec := do(t, h, "POST", "/v1/verify", nil, auth)
		if rec.Code != 500 || !strings.Contains(rec.Body.String(), "qdrant unreachable") {
			t.Fatalf("code = %d: %s", rec.Code, rec.Body)
		}
		if s.Current() != cur {
			t.Fatal("a failed verification replaced the verdict")
		}
	})
}

func TestVerifyRequestsCoalesce(t *testing.T) {
	fv := &fakeVerifier{block: make(chan struct{})}
	fv.set(testVerdict("", t0, region("a")))
	s := newTestServer(t, ServerOptions{Verify: fv.Verify})
	runServer(t, s)
	// The start-up verification (no verdict yet) is running and blocked.
	for fv.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Ten requests while it runs share one queued verification.
	first := s.trigger("test")
	for range 9 {
		if r := s.trigger("test"); r != first {
			t.Fatal("a request made while one was queued queued another")
		}
	}
	close(fv.block)
	<-first.done
	if first.err != nil || first.v == nil {
		t.Fatalf("queued verification: %v", first.err)
	}
	// One at start, one for all ten requests made while it ran.
	if got, want := fv.calls.Load(), int64(2); got != want {
		t.Fatalf("verifier ran %d times, want %d", got, want)
	}
}

func TestSchedule(t *testing.T) {
	fv := &fakeVerifier{}
	var n atomic.Int64
	verify := func(ctx context.Context) (*gate.Verdict, *gate.Detail, error) {
		fv.set(testVerdict("", time.Now().Add(time.Duration(n.Add(1))), region("a")))
		return fv.Verify(ctx)
	}
	t.Run("EveryInterval", func(t *testing.T) {
		s := newTestServer(t, ServerOptions{Verify: verify, Schedule: 30 * time.Millisecond})
		runServer(t, s)
		deadline := time.Now().Add(5 * time.Second)
		for fv.calls.Load() < 4 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := fv.calls.Load(); got < 4 {
			t.Fatalf("verified %d times in 5s with a 30ms schedule", got)
		}
	})
	t.Run("ZeroVerifiesOnceAtStart", func(t *testing.T) {
		fv.calls.Store(0)
		s := newTestServer(t, ServerOptions{Verify: verify})
		runServer(t, s)
		time.Sleep(100 * time.Millisecond)
		if got, want := fv.calls.Load(), int64(1); got != want {
			t.Fatalf("verified %d times, want %d", got, want)
		}
	})
	t.Run("ErrorsBackOff", func(t *testing.T) {
		bad := &fakeVerifier{err: fmt.Errorf("down")}
		s := newTestServer(t, ServerOptions{Verify: bad.Verify, Schedule: time.Millisecond, RetryDelay: 40 * time.Millisecond})
		runServer(t, s)
		time.Sleep(200 * time.Millisecond)
		if got := bad.calls.Load(); got < 2 || got > 8 {
			t.Fatalf("failing verifier ran %d times in 200ms with a 40ms retry delay", got)
		}
	})
}

func TestReadyz(t *testing.T) {
	clk := newClock(t0)
	s := newTestServer(t, ServerOptions{Now: clk.Now})
	h := s.Handler()
	if rec := do(t, h, "GET", "/readyz", nil, nil); rec.Code != 503 || !strings.Contains(rec.Body.String(), "no verdict yet") {
		t.Fatalf("before a verdict: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, h, "GET", "/healthz", nil, nil); rec.Code != 200 {
		t.Fatalf("healthz: %d", rec.Code)
	}
	if rec := do(t, h, "GET", "/v1/verdicts/latest", nil, nil); rec.Code != 404 {
		t.Fatalf("latest before a verdict: %d", rec.Code)
	}
	s.Install(testVerdict("v1", t0, region("a")), "local")
	rec := do(t, h, "GET", "/readyz", nil, nil)
	var r ReadyState
	json.Unmarshal(rec.Body.Bytes(), &r)
	if rec.Code != 200 || !r.Ready || r.Verdict != "v1" || r.Expired {
		t.Fatalf("after a verdict: %d %s", rec.Code, rec.Body)
	}
	clk.Add(time.Hour)
	rec = do(t, h, "GET", "/readyz", nil, nil)
	json.Unmarshal(rec.Body.Bytes(), &r)
	if rec.Code != 200 || !r.Expired {
		t.Fatalf("expired verdict: %d %s (want still ready, expired)", rec.Code, rec.Body)
	}
}

func TestInstallKeepsNewest(t *testing.T) {
	s := newTestServer(t, ServerOptions{})
	if !s.Install(testVerdict("v2", t0.Add(time.Second), region("a")), "local") {
		t.Fatal("first verdict not installed")
	}
	if s.Install(testVerdict("v1", t0, region("a")), "store") {
		t.Fatal("an older verdict replaced a newer one")
	}
	if s.Install(testVerdict("v2", t0.Add(time.Second), region("a")), "store") {
		t.Fatal("the same verdict was installed twice")
	}
	if !s.Install(testVerdict("v3", t0.Add(time.Second), region("a")), "store") {
		t.Fatal("same time, greater id: not installed")
	}
}

func TestMetricsExposition(t *testing.T) {
	clk := newClock(t0.Add(90 * time.Second))
	fv := &fakeVerifier{}
	fv.set(testVerdict("v1", t0, blocked(region("a"), "failed index_hash"), region("b")))
	s := newTestServer(t, ServerOptions{Verify: fv.Verify, Now: clk.Now, Routing: map[string][]string{"eu": {"a", "b"}}})
	runServer(t, s)
	if _, err := s.VerifyNow(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for range 3 {
		do(t, h, "GET", "/v1/admit", nil, map[string]string{"X-Region-Pin": "a", "X-Client-Region": "eu", "X-Ragparity-Fallback": "route"})
	}
	do(t, h, "GET", "/v1/admit", nil, map[string]string{"X-Region-Pin": "a"})
	do(t, h, "GET", "/v1/admit", nil, map[string]string{"X-Ragparity-Fallback": "maybe"})
	do(t, h, "GET", "/v1/admit", nil, map[string]string{"X-Region-Pin": "b"})
	do(t, h, "GET", "/v1/admit", nil, map[string]string{"X-Release": "r0"})
	do(t, h, "GET", "/v1/admit", nil, map[string]string{"X-Index-Hash": "nope"})
	rec := do(t, h, "GET", "/metrics", nil, nil)
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`ragparity_gate_verdict_info{decision="fail",key_id="",release_id="r1",revision="v1",source="local"} 1`,
		`ragparity_gate_verdict_status{release_id="r1",revision="v1",status="fail"} 1`,
		`ragparity_gate_verdict_age_seconds{release_id="r1",revision="v1"} 90`,
		`ragparity_gate_check_status{check="index_hash",release_id="r1",revision="v1",status="fail"} 1`,
		`ragparity_gate_check_status{check="index_hash",release_id="r1",revision="v1",status="pass"} 0`,
		`ragparity_gate_check_duration_seconds{check="index_hash",release_id="r1",revision="v1"} 1.2`,
		`ragparity_gate_region_check_status{check="index_hash",region="a",release_id="r1",revision="v1",status="fail"} 1`,
		`ragparity_gate_region_check_status{check="index_hash",region="b",release_id="r1",revision="v1",status="pass"} 1`,
		`ragparity_gate_region_admitted{region="a",release_id="r1",revision="v1"} 0`,
		`ragparity_gate_region_admitted{region="b",release_id="r1",revision="v1"} 1`,
		`ragparity_gate_hash_age_seconds{region="b",release_id="r1",revision="v1"} 90`,
		`ragparity_gate_delta_s{region="a",release_id="r1",revision="v1"} 0.31`,
		`ragparity_gate_delta_s_drift{release_id="r1",revision="v1"} 0.012`,
		`ragparity_gate_lambda_runs{region="a",release_id="r1",revision="v1",state="convergent"} 19`,
		`ragparity_gate_dedupe_probes{region="a",release_id="r1",result="hit",revision="v1"} 1000`,
		`ragparity_gate_dedupe_probes{region="a",release_id="r1",result="miss",revision="v1"} 0`,
		`ragparity_gate_check_measure{check="probes",name="recall_at_10",region="a",release_id="r1",revision="v1"} 0.9`,
		`ragparity_gate_admit_decisions_total{code="200",decision="route_fallback",region="b",release_id="r1",revision="v1"} 3`,
		`ragparity_gate_admit_decisions_total{code="200",decision="route_pin",region="b",release_id="r1",revision="v1"} 1`,
		`ragparity_gate_admit_decisions_total{code="409",decision="conflict",region="none",release_id="r1",revision="v1"} 1`,
		`ragparity_gate_admit_decisions_total{code="421",decision="misdirected",region="b",release_id="r1",revision="v1"} 1`,
		`ragparity_gate_admit_decisions_total{code="400",decision="bad_request",region="none",release_id="r1",revision="v1"} 1`,
		`ragparity_gate_admit_decisions_total{code="503",decision="refuse_no_match",region="none",release_id="r1",revision="v1"} 1`,
		`ragparity_gate_verification_duration_seconds_count{release_id="r1",result="fail"} 1`,
		`ragparity_gate_verdicts_installed_total{source="local"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", body)
	}
	// The next verdict's admissions count under its own revision; v1's
	// series go, so the label set stays bounded however often it verifies.
	fv.set(testVerdict("v2", t0.Add(time.Second), region("a"), region("b")))
	if _, err := s.VerifyNow(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	do(t, h, "GET", "/v1/admit", nil, map[string]string{"X-Region-Pin": "a"})
	body = do(t, h, "GET", "/metrics", nil, nil).Body.String()
	if !strings.Contains(body, `ragparity_gate_admit_decisions_total{code="200",decision="route_pin",region="a",release_id="r1",revision="v2"} 1`) {
		t.Errorf("no v2 admission counted:\n%s", body)
	}
	if strings.Contains(body, `revision="v1"`) {
		t.Errorf("series of the superseded revision v1 are still exported")
	}
}

func TestCheckExposure(t *testing.T) {
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true},
		{"127.0.0.2:8080", "", true},
		{"[::1]:8080", "", true},
		{"localhost:8080", "", true},
		{":8080", "", false},
		{"0.0.0.0:8080", "", false},
		{"10.1.2.3:8080", "", false},
		{":8080", "tok", true},
		{"nonsense", "", false},
	} {
		err := CheckExposure(tc.addr, tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("CheckExposure(%q, %q) = %v, want ok=%v", tc.addr, tc.token, err, tc.ok)
		}
	}
}

func BenchmarkBareHandler(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	req := httptest.NewRequest("GET", "/v1/admit", nil)
	w := &headerWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// benchLoopback sends keep-alive requests over one loopback connection
// to a real net/http server and reads each response: the whole server
// path per request, without a client library's cost.
func benchLoopback(b *testing.B, h http.Handler, req string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.WriteString(conn, req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

const loopbackReq = "GET /v1/admit HTTP/1.1\r\nHost: x\r\nX-Region-Pin: eu-west\r\nX-Client-Region: eu\r\nX-Release: r1\r\nX-Index-Hash: h1\r\n\r\n"

func BenchmarkLoopbackAdmit(b *testing.B) {
	s, _ := NewServer(ServerOptions{Verify: (&fakeVerifier{}).Verify, Release: "r1", Routing: map[string][]string{"eu": {"eu-west", "eu-central"}}})
	s.Install(testVerdict("v1", time.Now(), blocked(region("eu-west"), "x"), region("eu-central")), "local")
	benchLoopback(b, s.Handler(), loopbackReq)
}

func BenchmarkLoopbackBare(b *testing.B) {
	benchLoopback(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }), loopbackReq)
}
