// Package embed defines the Embedder interface that turns texts into
// vectors, a registry that opens an embedder from a spec ("glove", "hash",
// "hash://?dim=64", "openai://?model=...&base_url=..."), and wrappers that
// count calls (Counting) and cache vectors on disk (Cached).
//
// Backends live in sub-packages and register their scheme in init():
//
//	glove      embed/glove      the offline default (real GloVe vectors)
//	hash       embed/hashembed  feature hashing, for unit tests only
//	openai     embed/openai     any OpenAI-compatible /v1/embeddings API
//
// embed/all blank-imports all of them.
package embed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/ragparity/ragparity/internal/registry"
	"github.com/ragparity/ragparity/internal/urlsafe"
)

// Embedder turns texts into vectors.
//
// Implementations are safe for concurrent use. Embed takes ctx first and
// returns promptly with ctx.Err() (wrapped) once ctx is done.
type Embedder interface {
	// ModelTag identifies model + version + dimension, e.g.
	// "glove-wink-sg-100d@1.1.0/q8" or "openai:text-embedding-3-small"; it
	// goes into settings digests, so it changes whenever the vectors for the
	// same text could change.
	ModelTag() string
	// Dim is the vector dimension. An embedder that learns it from its
	// server (openai without a known model or dim= parameter) returns 0
	// until the first successful Embed.
	Dim() int
	// Embed returns one L2-normalised float32 vector per text, in order.
	// An empty texts slice returns an empty result without any work.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// ConfigError is a bad spec parameter. Field is the parameter name.
type ConfigError struct {
	Field string
	Value string
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("%s=%q: %v", e.Field, e.Value, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// ErrUnknownParam is wrapped by a ConfigError for a parameter the backend
// does not know (specs are strict: a typo is an error, not ignored).
var ErrUnknownParam = errors.New("unknown parameter")

// Opener opens an embedder from a parsed spec. u.Scheme is the backend
// name; the query holds the parameters.
type Opener func(u *url.URL) (Embedder, error)

var openers registry.Registry[Opener]

// Register registers an opener for a scheme. Backends call it from init().
func Register(scheme string, o Opener) { openers.Register(scheme, o) }

// Schemes lists registered schemes, sorted.
func Schemes() []string { return openers.Schemes() }

// Open opens the embedder a spec names. A spec is either a bare backend
// name ("glove", "hash") or a URL whose scheme is the backend name and
// whose query holds its parameters ("hash://?dim=64"). Opening does no I/O
// beyond parsing: models load and servers are contacted on first use.
func Open(spec string) (Embedder, error) {
	raw := strings.TrimSpace(spec)
	if raw == "" {
		return nil, errors.New("embedder spec: empty")
	}
	if !strings.Contains(raw, "://") {
		if strings.ContainsAny(raw, ":/?#") {
			return nil, fmt.Errorf("embedder spec %q: want a name (glove) or a URL (hash://?dim=64)", redact(raw))
		}
		raw += "://"
	}
	u, err := urlsafe.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("embedder spec: %w", err)
	}
	o, ok := openers.Lookup(u.Scheme)
	if !ok {
		return nil, fmt.Errorf("embedder spec %q: unknown backend %q (known: %s)", redact(spec), u.Scheme, strings.Join(Schemes(), ", "))
	}
	return o(u)
}

// redact hides secret-looking query values in a spec for messages.
func redact(spec string) string {
	u, err := url.Parse(spec)
	if err != nil {
		return "<unparseable spec>"
	}
	q := u.Query()
	for k := range q {
		lk := strings.ToLower(k)
		secret := strings.Contains(lk, "token") || strings.Contains(lk, "secret") ||
			(strings.Contains(lk, "key") && lk != "key_env")
		if secret {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// Params reads a spec's query strictly: every parameter must be consumed
// with Get before Done, which reports any left over as unknown.
type Params struct {
	backend string
	q       url.Values
	seen    map[string]bool
}

// NewParams wraps u's query. backend prefixes errors.
func NewParams(backend string, u *url.URL) *Params {
	return &Params{backend: backend, q: u.Query(), seen: map[string]bool{}}
}

// Get returns the last value of name, or def when it is absent.
func (p *Params) Get(name, def string) string {
	p.seen[name] = true
	v := p.q[name]
	if len(v) == 0 {
		return def
	}
	return v[len(v)-1]
}

// Int parses name as an integer in [lo, hi], def when absent.
func (p *Params) Int(name string, def, lo, hi int) (int, error) {
	s := p.Get(name, "")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.backend, &ConfigError{Field: name, Value: s, Err: errors.New("not an integer")})
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%s: %w", p.backend, &ConfigError{Field: name, Value: s, Err: fmt.Errorf("out of range [%d, %d]", lo, hi)})
	}
	return n, nil
}

// Float parses name as a finite number >= lo, def when absent.
func (p *Params) Float(name string, def, lo float64) (float64, error) {
	s := p.Get(name, "")
	if s == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s: %w", p.backend, &ConfigError{Field: name, Value: s, Err: errors.New("not a number")})
	}
	if f < lo {
		return 0, fmt.Errorf("%s: %w", p.backend, &ConfigError{Field: name, Value: s, Err: fmt.Errorf("below %g", lo)})
	}
	return f, nil
}

// Done reports the first parameter (sorted by name) that no Get asked for.
func (p *Params) Done() error {
	var unknown []string
	for k := range p.q {
		if !p.seen[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("%s: %w", p.backend, &ConfigError{Field: unknown[0], Value: "", Err: ErrUnknownParam})
}

// NoHost checks that a spec URL carries parameters only (scheme://?k=v).
func NoHost(backend string, u *url.URL) error {
	if u.Host != "" || (u.Path != "" && u.Path != "/") || u.Opaque != "" || u.User != nil {
		return fmt.Errorf("%s: spec takes no host or path, only ?parameters (got %q)", backend, redact(u.String()))
	}
	return nil
}

// Normalize scales v to unit L2 norm in place and reports whether it could
// (false for a zero or non-finite vector, which is left unchanged).
func Normalize(v []float32) bool {
	var s float64
	for _, x := range v {
		s += float64(float64(x) * float64(x)) // no fused multiply-add: same bits everywhere
	}
	if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return false
	}
	inv := 1 / math.Sqrt(s)
	for i, x := range v {
		v[i] = float32(float64(x) * inv)
	}
	return true
}

// Words splits text into lower-case word tokens: maximal runs of Unicode
// letters and digits. Everything else separates tokens. The glove and hash
// embedders both use it.
func Words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}
