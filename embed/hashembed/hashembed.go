// Package hashembed is a deterministic feature-hashing embedder. It is for
// unit tests only: it needs no model and no network, and it is fast, but
// it only matches words literally (no synonyms, no meaning) and its buckets
// collide. Use glove (embed/glove) for anything that is measured.
//
// Spec: "hash" or "hash://?dim=64" (dim 8..65536, default 256;
// bigrams=false turns off word bigrams).
//
// Each lower-case word token (embed.Words) and, by default, each pair of
// adjacent tokens is hashed with FNV-1a 64; the low bits pick a bucket, bit
// 63 picks the sign (+1 or -1) that is added to it. The vector is then
// L2-normalised. A text with no token (or whose features cancel out) gets
// the fixed vector whose components are all 1/sqrt(dim).
package hashembed

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"net/url"

	"github.com/ragparity/ragparity/embed"
)

// DefaultDim is the dimension when the spec gives none.
const DefaultDim = 256

// Embedder hashes word features into Dim buckets.
type Embedder struct {
	dim     int
	bigrams bool
}

var _ embed.Embedder = (*Embedder)(nil)

func init() {
	embed.Register("hash", open)
}

func open(u *url.URL) (embed.Embedder, error) {
	if err := embed.NoHost("hash", u); err != nil {
		return nil, err
	}
	p := embed.NewParams("hash", u)
	dim, err := p.Int("dim", DefaultDim, 8, 1<<16)
	if err != nil {
		return nil, err
	}
	bigrams := true
	switch s := p.Get("bigrams", "true"); s {
	case "true", "1":
	case "false", "0":
		bigrams = false
	default:
		return nil, fmt.Errorf("hash: %w", &embed.ConfigError{Field: "bigrams", Value: s, Err: fmt.Errorf("want true or false")})
	}
	if err := p.Done(); err != nil {
		return nil, err
	}
	return &Embedder{dim: dim, bigrams: bigrams}, nil
}

// New returns a hash embedder of dimension dim (8..65536) with bigrams.
func New(dim int) (*Embedder, error) {
	if dim < 8 || dim > 1<<16 {
		return nil, fmt.Errorf("hash: %w", &embed.ConfigError{Field: "dim", Value: fmt.Sprint(dim), Err: fmt.Errorf("out of range [8, 65536]")})
	}
	return &Embedder{dim: dim, bigrams: true}, nil
}

// ModelTag is "hash-fnv1a-v1/<dim>" (plus "/unigram" without bigrams).
func (e *Embedder) ModelTag() string {
	t := fmt.Sprintf("hash-fnv1a-v1/%d", e.dim)
	if !e.bigrams {
		t += "/unigram"
	}
	return t
}

// Dim is the number of buckets.
func (e *Embedder) Dim() int { return e.dim }

// Embed hashes each text. It never fails except on a done ctx.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("hash: %w", err)
			}
		}
		out[i] = e.one(t)
	}
	return out, nil
}

func (e *Embedder) one(text string) []float32 {
	v := make([]float32, e.dim)
	words := embed.Words(text)
	h := fnv.New64a()
	add := func(parts ...string) {
		h.Reset()
		for n, p := range parts {
			if n > 0 {
				h.Write([]byte{' '})
			}
			h.Write([]byte(p))
		}
		x := h.Sum64()
		b := int(x % uint64(e.dim))
		if x>>63 == 1 {
			v[b]--
		} else {
			v[b]++
		}
	}
	for i, w := range words {
		add(w)
		if e.bigrams && i > 0 {
			add(words[i-1], w)
		}
	}
	if !embed.Normalize(v) {
		c := float32(1 / math.Sqrt(float64(e.dim)))
		for i := range v {
			v[i] = c
		}
	}
	return v
}
