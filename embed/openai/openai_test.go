package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragparity/ragparity/embed"
)

const testKey = "sk-test-0123456789abcdef"

// fakeServer is an OpenAI-compatible /v1/embeddings endpoint that checks
// every request and answers from a script: the n-th request (0-based) gets
// script[n] if present, else a success.
type fakeServer struct {
	t      *testing.T
	model  string
	dims   int    // expected "dimensions" request field (0: absent)
	auth   string // expected Authorization header
	script []func(w http.ResponseWriter)
	delay  map[int]time.Duration

	mu      sync.Mutex
	batches []int // input sizes, one per request, in arrival order
	bad     []string
}

type embReq struct {
	Model      string   `json:"model"`
	Input      []string `json:"input"`
	Dimensions int      `json:"dimensions"`
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	n := len(f.batches)
	f.mu.Unlock()
	complain := func(format string, args ...any) {
		f.mu.Lock()
		f.bad = append(f.bad, fmt.Sprintf(format, args...))
		f.mu.Unlock()
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v1/embeddings" {
		complain("request %d: %s %s, want POST /v1/embeddings", n, r.Method, r.URL.Path)
	}
	if got := r.Header.Get("Authorization"); got != f.auth {
		complain("request %d: Authorization %q, want %q", n, got, f.auth)
	}
	var req embReq
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		complain("request %d: body: %v", n, err)
	}
	if req.Model != f.model {
		complain("request %d: model %q, want %q", n, req.Model, f.model)
	}
	if req.Dimensions != f.dims {
		complain("request %d: dimensions %d, want %d", n, req.Dimensions, f.dims)
	}
	f.mu.Lock()
	f.batches = append(f.batches, len(req.Input))
	f.mu.Unlock()
	if d := f.delay[n]; d > 0 {
		time.Sleep(d)
	}
	if n < len(f.script) && f.script[n] != nil {
		f.script[n](w)
		return
	}
	// Success: vectors in reverse order, unnormalised, encoding the text
	// ("t<k>" -> [k+1, 2, 0, ...]) so order and normalisation can be checked.
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	var data []item
	for i := len(req.Input) - 1; i >= 0; i-- {
		var k int
		fmt.Sscanf(req.Input[i], "t%d", &k)
		v := make([]float32, 8)
		v[0], v[1] = float32(k+1), 2
		data = append(data, item{"embedding", i, v})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "model": req.Model, "data": data,
		"usage": map[string]int{"prompt_tokens": 1, "total_tokens": 1}})
}

func (f *fakeServer) check() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.bad {
		f.t.Error(b)
	}
}

func apiErr(status int, msg string, hdr ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Set(hdr[i], hdr[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"message":%q,"type":"test","code":null}}`, msg)
	}
}

func start(t *testing.T, f *fakeServer) string {
	f.t = t
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("t%d", i)
	}
	return out
}

func checkVectors(t *testing.T, vs [][]float32, n int) {
	t.Helper()
	if len(vs) != n {
		t.Fatalf("%d vectors, want %d", len(vs), n)
	}
	for k, v := range vs {
		a, b := float64(k+1), 2.0
		nrm := math.Hypot(a, b)
		if math.Abs(float64(v[0])-a/nrm) > 1e-6 || math.Abs(float64(v[1])-b/nrm) > 1e-6 {
			t.Fatalf("vector %d = %v, want the normalised [%v, %v, 0...] (wrong order or not normalised)", k, v[:2], a/nrm, b/nrm)
		}
	}
}

// TestRetriesAndOrder: batches of 4 over 10 texts; the first request gets
// 429 with Retry-After: 1, the second 500; the first batch then succeeds on
// its third try. Vectors come back reversed and unnormalised.
func TestRetriesAndOrder(t *testing.T) {
	f := &fakeServer{
		model: "text-embedding-3-small",
		dims:  8,
		auth:  "Bearer " + testKey,
		script: []func(http.ResponseWriter){
			apiErr(429, "Rate limit reached", "Retry-After", "1"),
			apiErr(500, "The server had an error"),
		},
	}
	base := start(t, f)
	t.Setenv("OPENAI_API_KEY", testKey)
	e, err := embed.Open("openai://?model=text-embedding-3-small&dimensions=8&batch=4&backoff=10ms&base_url=" + base)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	vs, err := e.Embed(context.Background(), texts(10))
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(begin)
	f.check()
	checkVectors(t, vs, 10)
	if got, want := fmt.Sprint(f.batches), "[4 4 4 4 2]"; got != want {
		t.Errorf("request batch sizes %s, want %s", got, want)
	}
	if elapsed < time.Second {
		t.Errorf("took %s; Retry-After: 1 was not honoured", elapsed)
	}
	if got, want := e.Dim(), 8; got != want {
		t.Errorf("Dim() = %d, want %d", got, want)
	}
	if got, want := e.ModelTag(), "openai:text-embedding-3-small?dimensions=8"; got != want {
		t.Errorf("ModelTag() = %q, want %q", got, want)
	}
}

func TestUnauthorizedFailsFast(t *testing.T) {
	f := &fakeServer{
		model:  "m",
		auth:   "Bearer " + testKey,
		script: []func(http.ResponseWriter){apiErr(401, "Incorrect API key provided: "+testKey+".")},
	}
	base := start(t, f)
	t.Setenv("MY_EMBED_KEY", testKey)
	e, err := embed.Open("openai://?model=m&key_env=MY_EMBED_KEY&dim=8&base_url=" + base)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	_, err = e.Embed(context.Background(), texts(3))
	f.check()
	if err == nil {
		t.Fatal("Embed succeeded with a rejected key")
	}
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("err = %v, want it to wrap ErrUnauthorized", err)
	}
	msg := err.Error()
	for _, want := range []string{"openai: ", "401", "MY_EMBED_KEY", "attempt 1/"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	t.Logf("401 error: %s", msg)
	if strings.Contains(msg, testKey) {
		t.Errorf("error prints the API key: %q", msg)
	}
	if got := len(f.batches); got != 1 {
		t.Errorf("%d requests, want 1 (no retry on 401)", got)
	}
	if time.Since(begin) > 2*time.Second {
		t.Error("401 took too long to fail")
	}
}

func TestOtherFailures(t *testing.T) {
	t.Run("GivesUpAfterAttempts", func(t *testing.T) {
		f := &fakeServer{model: "m", script: []func(http.ResponseWriter){
			apiErr(503, "busy"), apiErr(503, "busy"), apiErr(503, "busy"),
		}}
		e, err := New(Config{Model: "m", BaseURL: start(t, f), Attempts: 3, Backoff: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Embed(context.Background(), texts(2))
		if err == nil || !strings.Contains(err.Error(), "attempt 3/3") || !strings.Contains(err.Error(), "503") {
			t.Fatalf("err = %v, want a 503 after 3 attempts", err)
		}
		f.check() // no key: no Authorization header
	})
	t.Run("BadRequestNotRetried", func(t *testing.T) {
		f := &fakeServer{model: "m", script: []func(http.ResponseWriter){apiErr(400, "input too long")}}
		e, _ := New(Config{Model: "m", BaseURL: start(t, f), Backoff: time.Millisecond})
		if _, err := e.Embed(context.Background(), texts(2)); err == nil || len(f.batches) != 1 {
			t.Fatalf("err = %v after %d requests, want a failure after 1", err, len(f.batches))
		}
	})
	t.Run("TimeoutRetried", func(t *testing.T) {
		f := &fakeServer{model: "m", delay: map[int]time.Duration{0: 500 * time.Millisecond}}
		e, _ := New(Config{Model: "m", BaseURL: start(t, f), Timeout: 100 * time.Millisecond, Backoff: time.Millisecond})
		vs, err := e.Embed(context.Background(), texts(3))
		if err != nil {
			t.Fatal(err)
		}
		checkVectors(t, vs, 3)
		if got := len(f.batches); got != 2 {
			t.Errorf("%d requests, want 2", got)
		}
	})
	t.Run("RetryAfterTooLong", func(t *testing.T) {
		f := &fakeServer{model: "m", script: []func(http.ResponseWriter){apiErr(429, "slow down", "Retry-After", "3600")}}
		e, _ := New(Config{Model: "m", BaseURL: start(t, f)})
		_, err := e.Embed(context.Background(), texts(1))
		if err == nil || !strings.Contains(err.Error(), "max_wait") {
			t.Fatalf("err = %v, want a max_wait failure", err)
		}
	})
	t.Run("MalformedIndex", func(t *testing.T) {
		f := &fakeServer{model: "m", script: []func(http.ResponseWriter){func(w http.ResponseWriter) {
			fmt.Fprint(w, `{"data":[{"index":0,"embedding":[1,0]},{"index":0,"embedding":[0,1]}]}`)
		}}}
		e, _ := New(Config{Model: "m", BaseURL: start(t, f)})
		if _, err := e.Embed(context.Background(), texts(2)); err == nil || !strings.Contains(err.Error(), "index 0 twice") {
			t.Fatalf("err = %v, want a duplicate-index error", err)
		}
	})
	t.Run("WrongDimension", func(t *testing.T) {
		f := &fakeServer{model: "text-embedding-3-small"} // answers with 8 dimensions
		e, _ := New(Config{Model: "text-embedding-3-small", BaseURL: start(t, f)})
		if _, err := e.Embed(context.Background(), texts(2)); err == nil || !strings.Contains(err.Error(), "want 1536") {
			t.Fatalf("err = %v, want a dimension error", err)
		}
	})
	t.Run("CancelledWhileWaiting", func(t *testing.T) {
		f := &fakeServer{model: "m", script: []func(http.ResponseWriter){apiErr(429, "slow down", "Retry-After", "30")}}
		e, _ := New(Config{Model: "m", BaseURL: start(t, f)})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := e.Embed(ctx, texts(1)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestRateLimit(t *testing.T) {
	f := &fakeServer{model: "m"}
	e, err := embed.Open("openai://?model=m&dim=8&batch=1&rps=10&base_url=" + start(t, f))
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	vs, err := e.Embed(context.Background(), texts(4))
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, vs, 4)
	// Burst 1 at 10/s: requests at 0, 100, 200, 300 ms.
	if elapsed := time.Since(begin); elapsed < 250*time.Millisecond {
		t.Errorf("4 requests at rps=10 took %s, want >= 300ms", elapsed)
	}
}

func TestAzurePaths(t *testing.T) {
	var path, key, version string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, key, version = r.URL.Path, r.Header.Get("api-key"), r.URL.Query().Get("api-version")
		fmt.Fprint(w, `{"data":[{"index":0,"embedding":[3,4]}]}`)
	}))
	defer srv.Close()
	t.Setenv("AZ_KEY", testKey)
	e, err := embed.Open("openai://?api_type=azure&api_version=2024-02-01&model=my-embedder&key_env=AZ_KEY&base_url=" + srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := e.Embed(context.Background(), []string{"x"})
	if err != nil {
		t.Fatal(err)
	}
	if path != "/openai/deployments/my-embedder/embeddings" || key != testKey || version != "2024-02-01" {
		t.Errorf("Azure request: path %q, api-key set %v, api-version %q", path, key == testKey, version)
	}
	if vs[0][0] != 0.6 || e.Dim() != 2 {
		t.Errorf("vector %v, Dim %d", vs[0], e.Dim())
	}
}

func TestOpenSpec(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	for _, tc := range []struct{ spec, want string }{
		{"openai", "no API key"},
		{"openai://?model=m&base_url=http://127.0.0.1:1/v1&key_env=NOPE_NOT_SET", "key_env"},
		{"openai://?base_url=ftp://x", "base_url"},
		{"openai://?base_url=http://127.0.0.1:1/v1&batch=0", "batch"},
		{"openai://?base_url=http://127.0.0.1:1/v1&timeout=soon", "timeout"},
		{"openai://?base_url=http://127.0.0.1:1/v1&api_key=" + testKey, "api_key"},
		{"openai://?base_url=http://127.0.0.1:1/v1&api_type=gcp", "api_type"},
	} {
		_, err := embed.Open(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.spec, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), testKey) {
			t.Errorf("%s: error prints the key", tc.spec)
		}
	}
	e, err := embed.Open("openai://?model=nomic-embed-text&base_url=http://127.0.0.1:11434/v1")
	if err != nil {
		t.Fatal(err)
	}
	if e.Dim() != 0 || e.ModelTag() != "openai:nomic-embed-text" {
		t.Errorf("Dim %d, tag %q", e.Dim(), e.ModelTag())
	}
	e, err = embed.Open("openai://?model=text-embedding-3-large&dimensions=256&base_url=http://127.0.0.1:1/v1")
	if err != nil {
		t.Fatal(err)
	}
	if e.Dim() != 256 || e.ModelTag() != "openai:text-embedding-3-large?dimensions=256" {
		t.Errorf("Dim %d, tag %q", e.Dim(), e.ModelTag())
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		hdr, val string
		want     time.Duration
	}{
		{"Retry-After", "2", 2 * time.Second},
		{"Retry-After", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"Retry-After", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"Retry-After", "-3", 0},
		{"Retry-After", "soon", 0},
		{"Retry-After-Ms", "250", 250 * time.Millisecond},
		{"X-Other", "5", 0},
	} {
		h := http.Header{}
		h.Set(tc.hdr, tc.val)
		if got := RetryAfter(h, now); got != tc.want {
			t.Errorf("%s: %s -> %s, want %s", tc.hdr, tc.val, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	e, _ := New(Config{Model: "m", BaseURL: "http://127.0.0.1:1/v1", Backoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	for attempt, hi := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 10: time.Second} {
		for range 50 {
			if d := e.backoff(attempt); d < hi/2 || d > hi {
				t.Fatalf("backoff(%d) = %s, want in [%s, %s]", attempt, d, hi/2, hi)
			}
		}
	}
}
