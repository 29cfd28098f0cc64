// Package openai embeds texts through an OpenAI-compatible /v1/embeddings
// API: OpenAI itself, Azure OpenAI, Ollama, vLLM, Hugging Face TEI, ...
// (github.com/sashabaranov/go-openai does the HTTP).
//
// Spec (every parameter optional except where noted):
//
//	openai://?model=text-embedding-3-small   model (deployment name on Azure); default text-embedding-3-small
//	  &base_url=http://127.0.0.1:11434/v1    API base including /v1; default https://api.openai.com/v1
//	  &key_env=NAME                          environment variable holding the API key; default OPENAI_API_KEY
//	  &batch=64                              texts per request (1..2048); default 64
//	  &rps=5                                 client-side limit on requests per second (0 = none); default 0
//	  &dimensions=256                        ask the model for shorter vectors (text-embedding-3 only)
//	  &dim=768                               the dimension to expect, for models not known here
//	  &timeout=60s                           per-request timeout; default 60s
//	  &attempts=6                            tries per request, first included; default 6
//	  &backoff=500ms                         first retry delay, doubled per retry, capped at 30s; default 500ms
//	  &max_wait=2m                           longest Retry-After honoured; longer fails the call; default 2m
//	  &api_type=azure&api_version=2024-02-01 Azure OpenAI (api-key header, deployment URLs)
//
// The API key is read from the environment when the spec is opened and is
// never printed: it is removed from every error message. Without a key no
// Authorization header is sent (fine for local servers); the default
// base URL (api.openai.com) requires one.
//
// Requests are sent one batch at a time, in order. Each waits for the rate
// limiter, and is retried on 408, 429, 5xx, timeouts and transport errors
// with jittered exponential backoff, or after the server's Retry-After
// (seconds or HTTP date; retry-after-ms too) when it sends one. Other
// statuses fail at once; 401 and 403 wrap ErrUnauthorized. Vectors are
// placed by the response's index field, checked (count, dimension, finite,
// non-zero) and L2-normalised.
package openai

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goopenai "github.com/sashabaranov/go-openai"
	"golang.org/x/time/rate"

	"github.com/ragparity/ragparity/embed"
)

// ErrUnauthorized is wrapped when the server answers 401 or 403.
var ErrUnauthorized = errors.New("unauthorized")

// DefaultBaseURL is OpenAI's API.
const DefaultBaseURL = "https://api.openai.com/v1"

// knownDims are the native dimensions of OpenAI's embedding models.
var knownDims = map[string]int{
	"text-embedding-3-small": 1536,
	"text-embedding-3-large": 3072,
	"text-embedding-ada-002": 1536,
}

// Config configures an Embedder. Zero values take the defaults listed in
// the package doc.
type Config struct {
	Model      string
	BaseURL    string
	APIKey     string // never printed
	KeyEnv     string // where APIKey came from, for messages only
	Batch      int
	RPS        float64
	Dimensions int // request parameter
	Dim        int // expected dimension, 0 = known model or learn
	Timeout    time.Duration
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	MaxWait    time.Duration
	APIType    string // "" / "openai" or "azure"
	APIVersion string // Azure only
	HTTPClient *http.Client
	Logger     *slog.Logger
	RequireKey bool
	// sleep waits between attempts (tests replace it).
	sleep func(context.Context, time.Duration) error
}

// Embedder calls an OpenAI-compatible embeddings API.
type Embedder struct {
	cfg     Config
	client  *goopenai.Client
	limiter *rate.Limiter
	log     *slog.Logger
	dim     atomic.Int64
	tag     string
}

var _ embed.Embedder = (*Embedder)(nil)

func init() {
	embed.Register("openai", open)
}

func open(u *url.URL) (embed.Embedder, error) {
	if err := embed.NoHost("openai", u); err != nil {
		return nil, err
	}
	p := embed.NewParams("openai", u)
	var cfg Config
	var err error
	cfg.Model = p.Get("model", "text-embedding-3-small")
	cfg.BaseURL = p.Get("base_url", DefaultBaseURL)
	cfg.KeyEnv = p.Get("key_env", "OPENAI_API_KEY")
	explicitKeyEnv := u.Query().Has("key_env")
	cfg.APIType = p.Get("api_type", "openai")
	cfg.APIVersion = p.Get("api_version", "")
	if cfg.Batch, err = p.Int("batch", 64, 1, 2048); err != nil {
		return nil, err
	}
	if cfg.RPS, err = p.Float("rps", 0, 0); err != nil {
		return nil, err
	}
	if cfg.Dimensions, err = p.Int("dimensions", 0, 1, 1<<16); err != nil {
		return nil, err
	}
	if cfg.Dim, err = p.Int("dim", 0, 1, 1<<16); err != nil {
		return nil, err
	}
	if cfg.Attempts, err = p.Int("attempts", 6, 1, 100); err != nil {
		return nil, err
	}
	for _, d := range []struct {
		name string
		def  time.Duration
		dst  *time.Duration
	}{{"timeout", 60 * time.Second, &cfg.Timeout}, {"backoff", 500 * time.Millisecond, &cfg.Backoff}, {"max_wait", 2 * time.Minute, &cfg.MaxWait}} {
		if *d.dst, err = duration(p, d.name, d.def); err != nil {
			return nil, err
		}
	}
	if err := p.Done(); err != nil {
		return nil, err
	}
	cfg.APIKey = os.Getenv(cfg.KeyEnv)
	if cfg.APIKey == "" && explicitKeyEnv {
		return nil, fmt.Errorf("openai: %w", &embed.ConfigError{Field: "key_env", Value: cfg.KeyEnv, Err: errors.New("environment variable is empty or unset")})
	}
	cfg.RequireKey = strings.HasPrefix(cfg.BaseURL, "https://api.openai.com")
	return New(cfg)
}

func duration(p *embed.Params, name string, def time.Duration) (time.Duration, error) {
	s := p.Get(name, "")
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("openai: %w", &embed.ConfigError{Field: name, Value: s, Err: errors.New("want a positive duration such as 500ms or 2m")})
	}
	return d, nil
}

// New returns an Embedder for cfg.
func New(cfg Config) (*Embedder, error) {
	if cfg.Model == "" {
		cfg.Model = "text-embedding-3-small"
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.KeyEnv == "" {
		cfg.KeyEnv = "OPENAI_API_KEY"
	}
	bu, err := url.Parse(cfg.BaseURL)
	if err != nil || (bu.Scheme != "http" && bu.Scheme != "https") || bu.Host == "" || bu.User != nil {
		return nil, fmt.Errorf("openai: %w", &embed.ConfigError{Field: "base_url", Value: cfg.BaseURL, Err: errors.New("want http(s)://host[:port]/path without credentials")})
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.RequireKey && cfg.APIKey == "" {
		return nil, fmt.Errorf("openai: no API key: set %s (or name another variable with key_env=)", cfg.KeyEnv)
	}
	setDefault(&cfg.Batch, 64)
	setDefault(&cfg.Attempts, 6)
	setDefault(&cfg.Timeout, 60*time.Second)
	setDefault(&cfg.Backoff, 500*time.Millisecond)
	setDefault(&cfg.MaxBackoff, 30*time.Second)
	setDefault(&cfg.MaxWait, 2*time.Minute)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.sleep == nil {
		cfg.sleep = sleep
	}

	var gc goopenai.ClientConfig
	switch strings.ToLower(cfg.APIType) {
	case "", "openai":
		gc = goopenai.DefaultConfig(cfg.APIKey)
		gc.BaseURL = cfg.BaseURL
	case "azure":
		gc = goopenai.DefaultAzureConfig(cfg.APIKey, cfg.BaseURL)
		if cfg.APIVersion != "" {
			gc.APIVersion = cfg.APIVersion
		}
		gc.AzureModelMapperFunc = func(model string) string { return model }
	default:
		return nil, fmt.Errorf("openai: %w", &embed.ConfigError{Field: "api_type", Value: cfg.APIType, Err: errors.New("want openai or azure")})
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	hcCopy := *hc
	base := hcCopy.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hcCopy.Transport = captureTransport{base: base}
	gc.HTTPClient = &hcCopy

	lim := rate.NewLimiter(rate.Inf, 1)
	if cfg.RPS > 0 {
		lim = rate.NewLimiter(rate.Limit(cfg.RPS), 1)
	}
	e := &Embedder{
		cfg:     cfg,
		client:  goopenai.NewClientWithConfig(gc),
		limiter: lim,
		log:     cfg.Logger.WithGroup("openai"),
		tag:     "openai:" + cfg.Model,
	}
	if cfg.Dimensions > 0 {
		e.tag += "?dimensions=" + strconv.Itoa(cfg.Dimensions)
	}
	switch {
	case cfg.Dimensions > 0:
		e.dim.Store(int64(cfg.Dimensions))
	case cfg.Dim > 0:
		e.dim.Store(int64(cfg.Dim))
	default:
		e.dim.Store(int64(knownDims[cfg.Model]))
	}
	return e, nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// ModelTag is "openai:<model>", plus "?dimensions=N" when shortened.
func (e *Embedder) ModelTag() string { return e.tag }

// Dim is the expected dimension, or the learned one (0 before the first
// successful call for a model not known here and no dim= parameter).
func (e *Embedder) Dim() int { return int(e.dim.Load()) }

// Embed sends texts in batches, in order, and returns their unit vectors.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for lo := 0; lo < len(texts); lo += e.cfg.Batch {
		vs, err := e.embedBatch(ctx, texts[lo:min(lo+e.cfg.Batch, len(texts))])
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	return out, nil
}

func (e *Embedder) embedBatch(ctx context.Context, batch []string) ([][]float32, error) {
	req := goopenai.EmbeddingRequest{
		Input:      batch,
		Model:      goopenai.EmbeddingModel(e.cfg.Model),
		Dimensions: e.cfg.Dimensions,
	}
	for attempt := 1; ; attempt++ {
		if err := e.limiter.Wait(ctx); err != nil {
			return nil, fmt.Errorf("openai: rate limiter: %w", ctxErr(ctx, err))
		}
		var got captured
		actx, cancel := context.WithTimeout(context.WithValue(ctx, captureKey{}, &got), e.cfg.Timeout)
		resp, err := e.client.CreateEmbeddings(actx, req)
		cancel()
		if err == nil {
			return e.decode(resp, len(batch))
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("openai: embeddings %s: %w", e.cfg.Model, ctx.Err())
		}
		retry, what := classify(err, got.status)
		if !retry {
			return nil, e.fail(err, what, got.status, len(batch), attempt)
		}
		if attempt >= e.cfg.Attempts {
			return nil, e.fail(err, what+", giving up", got.status, len(batch), attempt)
		}
		wait := e.backoff(attempt)
		if got.retryAfter > 0 {
			if got.retryAfter > e.cfg.MaxWait {
				return nil, e.fail(err, fmt.Sprintf("server asks to retry after %s, more than max_wait=%s", got.retryAfter, e.cfg.MaxWait), got.status, len(batch), attempt)
			}
			wait = got.retryAfter + time.Duration(rand.Int64N(int64(got.retryAfter)/10+1))
		}
		e.log.Warn("retrying embeddings request", "model", e.cfg.Model, "reason", what, "attempt", attempt, "wait", wait)
		if err := e.cfg.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("openai: embeddings %s: %w", e.cfg.Model, err)
		}
	}
}

// fail builds the returned error with the key removed from its text.
func (e *Embedder) fail(err error, what string, status, n, attempt int) error {
	msg := fmt.Sprintf("openai: embeddings %s at %s (batch of %d, attempt %d/%d): %s",
		e.cfg.Model, e.cfg.BaseURL, n, attempt, e.cfg.Attempts, what)
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		msg += fmt.Sprintf(" (check the key in $%s)", e.cfg.KeyEnv)
		return &apiError{msg: msg, err: err, key: e.cfg.APIKey, sentinel: ErrUnauthorized}
	}
	return &apiError{msg: msg, err: err, key: e.cfg.APIKey}
}

// apiError carries the underlying error for errors.As but prints it with
// the API key replaced.
type apiError struct {
	msg      string
	err      error
	key      string
	sentinel error
}

func (a *apiError) Error() string {
	s := a.msg + ": " + a.err.Error()
	if a.key != "" {
		s = strings.ReplaceAll(s, a.key, "[redacted]")
	}
	return s
}

func (a *apiError) Unwrap() []error {
	if a.sentinel != nil {
		return []error{a.sentinel, a.err}
	}
	return []error{a.err}
}

// decode places vectors by index and normalises them.
func (e *Embedder) decode(resp goopenai.EmbeddingResponse, n int) ([][]float32, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("openai: embeddings %s: malformed response: "+format, append([]any{e.cfg.Model}, args...)...)
	}
	if len(resp.Data) != n {
		return nil, bad("%d vectors for %d texts", len(resp.Data), n)
	}
	out := make([][]float32, n)
	want := e.Dim()
	for _, d := range resp.Data {
		if d.Index < 0 || d.Index >= n {
			return nil, bad("index %d out of range [0, %d)", d.Index, n)
		}
		if out[d.Index] != nil {
			return nil, bad("index %d twice", d.Index)
		}
		if want == 0 {
			want = len(d.Embedding)
		}
		if len(d.Embedding) != want || want == 0 {
			return nil, bad("vector %d has dimension %d, want %d", d.Index, len(d.Embedding), want)
		}
		v := append([]float32(nil), d.Embedding...)
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, bad("vector %d is not finite", d.Index)
			}
		}
		if !embed.Normalize(v) {
			return nil, bad("vector %d is zero", d.Index)
		}
		out[d.Index] = v
	}
	e.dim.CompareAndSwap(0, int64(want))
	return out, nil
}
