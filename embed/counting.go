package embed

import (
	"context"
	"crypto/sha256"
	"sync"
	"sync/atomic"
)

// Counting wraps an Embedder and counts what reaches it: Embed calls, texts,
// and how often each distinct text was embedded. It proves, for example,
// that a pipeline embeds every chunk once (Repeated() == 0).
type Counting struct {
	inner Embedder
	calls atomic.Int64
	texts atomic.Int64

	mu   sync.Mutex
	seen map[[32]byte]int
}

var _ Embedder = (*Counting)(nil)

// NewCounting wraps e.
func NewCounting(e Embedder) *Counting {
	return &Counting{inner: e, seen: map[[32]byte]int{}}
}

// ModelTag is the inner embedder's tag: counting changes no vector.
func (c *Counting) ModelTag() string { return c.inner.ModelTag() }

// Dim is the inner embedder's dimension.
func (c *Counting) Dim() int { return c.inner.Dim() }

// Embed counts the call and its texts (also when the inner call fails),
// then delegates.
func (c *Counting) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	c.calls.Add(1)
	c.texts.Add(int64(len(texts)))
	c.mu.Lock()
	for _, t := range texts {
		c.seen[sha256.Sum256([]byte(t))]++
	}
	c.mu.Unlock()
	return c.inner.Embed(ctx, texts)
}

// Calls is the number of Embed calls so far.
func (c *Counting) Calls() int64 { return c.calls.Load() }

// Texts is the number of texts passed to Embed so far.
func (c *Counting) Texts() int64 { return c.texts.Load() }

// Distinct is the number of distinct texts passed to Embed so far.
func (c *Counting) Distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// Repeated is the number of texts embedded more than once, counting each
// extra embedding (a text embedded three times adds 2).
func (c *Counting) Repeated() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, k := range c.seen {
		n += int64(k - 1)
	}
	return n
}

// Reset sets every count to zero.
func (c *Counting) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls.Store(0)
	c.texts.Store(0)
	clear(c.seen)
}
