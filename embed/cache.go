package embed

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CacheFile is the name of the cache file inside the cache directory.
const CacheFile = "embeddings.bolt"

// cacheFormat is stored in the meta bucket; a file with any other value is
// not trusted and is rebuilt.
const cacheFormat = "ragparity-embed-cache/1"

var (
	bucketMeta    = []byte("meta")
	bucketVectors = []byte("vectors")
	keyFormat     = []byte("format")
	crcTable      = crc32.MakeTable(crc32.Castagnoli)
)

// Cache is an Embedder that keeps every vector it returns in a bbolt file,
// content-addressed by sha256(model tag + "\x00" + text), and asks the inner
// embedder only for texts it does not hold.
//
// Nothing read from the file is trusted blindly: each value carries a
// CRC-32C and must decode to a finite unit vector of the right dimension,
// and the file must pass bbolt's consistency check when opened. A file that
// cannot be opened or checked is moved aside (embeddings.bolt.corrupt) and
// rebuilt; a bad value is re-embedded and overwritten. Both are logged as
// warnings.
//
// A Cache is safe for concurrent use within a process. Concurrent Embed
// calls that miss on the same text share one inner embedding. The file is
// locked while open: one process at a time (another waits up to the lock
// timeout and then fails), and one Cache per directory per process.
type Cache struct {
	inner Embedder
	path  string
	log   *slog.Logger

	dbMu sync.RWMutex // guards db against a rebuild while in use
	db   *bolt.DB

	mu      sync.Mutex
	flights map[[32]byte]*flight

	hits, misses, bad atomic.Int64
}

var _ Embedder = (*Cache)(nil)

type flight struct {
	done chan struct{}
	vec  []float32
	err  error
}

type cacheOptions struct {
	log         *slog.Logger
	lockTimeout time.Duration
}

// CacheOption configures Cached.
type CacheOption func(*cacheOptions)

// WithLogger sets the logger for cache warnings (default: discard).
func WithLogger(l *slog.Logger) CacheOption {
	return func(o *cacheOptions) { o.log = l }
}

// WithLockTimeout sets how long Cached waits for another process to release
// the cache file (default 5s).
func WithLockTimeout(d time.Duration) CacheOption {
	return func(o *cacheOptions) { o.lockTimeout = d }
}

// Cached wraps e with an on-disk cache in dir (created if missing). Close
// the returned Cache to release the file.
func Cached(e Embedder, dir string, opts ...CacheOption) (*Cache, error) {
	o := cacheOptions{log: slog.New(slog.DiscardHandler), lockTimeout: 5 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embed cache: %w", err)
	}
	c := &Cache{
		inner:   e,
		path:    filepath.Join(dir, CacheFile),
		log:     o.log.WithGroup("embedcache"),
		flights: map[[32]byte]*flight{},
	}
	db, err := c.openChecked(o.lockTimeout)
	if err != nil {
		return nil, err
	}
	c.db = db
	return c, nil
}

// ModelTag is the inner embedder's tag: the cache changes no vector.
func (c *Cache) ModelTag() string { return c.inner.ModelTag() }

// Dim is the inner embedder's dimension.
func (c *Cache) Dim() int { return c.inner.Dim() }

// Hits, Misses and Bad count texts served from the file, texts passed to the
// inner embedder (or joined to another call's request), and stored values
// that failed validation.
func (c *Cache) Hits() int64   { return c.hits.Load() }
func (c *Cache) Misses() int64 { return c.misses.Load() }
func (c *Cache) Bad() int64    { return c.bad.Load() }

// Path is the cache file.
func (c *Cache) Path() string { return c.path }

// Close releases the file.
func (c *Cache) Close() error {
	c.dbMu.Lock()
	defer c.dbMu.Unlock()
	if c.db == nil {
		return nil
	}
	err := c.db.Close()
	c.db = nil
	if err != nil {
		return fmt.Errorf("embed cache: close: %w", err)
	}
	return nil
}

// Key is the content address of text under a model tag.
func Key(modelTag, text string) [32]byte {
	h := sha256.New()
	h.Write([]byte(modelTag))
	h.Write([]byte{0})
	h.Write([]byte(text))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// Embed serves what the file holds and embeds the rest once.
func (c *Cache) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return [][]float32{}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embed cache: %w", err)
	}
	tag := c.inner.ModelTag()
	keys := make([][32]byte, len(texts))
	first := map[[32]byte]int{} // key -> first index holding it
	var uniq []int
	for i, t := range texts {
		keys[i] = Key(tag, t)
		if _, ok := first[keys[i]]; !ok {
			first[keys[i]] = i
			uniq = append(uniq, i)
		}
	}
	found := c.lookup(keys, uniq, true)

	// Claim the misses nobody is embedding yet; join the others.
	var own []int
	joined := map[int]*flight{}
	c.mu.Lock()
	for _, i := range uniq {
		if found[i] != nil {
			continue
		}
		if f, ok := c.flights[keys[i]]; ok {
			joined[i] = f
			continue
		}
		c.flights[keys[i]] = &flight{done: make(chan struct{})}
		own = append(own, i)
	}
	c.mu.Unlock()
	// A claim can come right after another call stored the vector and
	// retired its flight (it stores first): look again.
	if len(own) > 0 {
		again := c.lookup(keys, own, false)
		rest := own[:0]
		c.mu.Lock()
		for _, i := range own {
			if again[i] == nil {
				rest = append(rest, i)
				continue
			}
			found[i] = again[i]
			f := c.flights[keys[i]]
			f.vec = again[i]
			close(f.done)
			delete(c.flights, keys[i])
		}
		c.mu.Unlock()
		own = rest
	}
	c.hits.Add(int64(len(uniq) - len(own) - len(joined)))
	c.misses.Add(int64(len(own) + len(joined)))

	if len(own) > 0 {
		vecs, err := c.embedOwn(ctx, texts, own)
		if err == nil {
			c.store(keys, own, vecs) // before the flights retire: see above
		}
		c.mu.Lock()
		for n, i := range own {
			f := c.flights[keys[i]]
			if err != nil {
				f.err = err
			} else {
				f.vec = vecs[n]
				found[i] = vecs[n]
			}
			close(f.done)
			delete(c.flights, keys[i])
		}
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	// Wait for the calls we joined. If one failed (perhaps only because
	// its caller's ctx ended), embed its texts here instead.
	var retry []int
	for i, f := range joined {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("embed cache: %w", ctx.Err())
		}
		if f.err != nil {
			retry = append(retry, i)
			continue
		}
		found[i] = f.vec
	}
	if len(retry) > 0 {
		vecs, err := c.embedOwn(ctx, texts, retry)
		if err != nil {
			return nil, err
		}
		c.store(keys, retry, vecs)
		for n, i := range retry {
			found[i] = vecs[n]
		}
	}

	out := make([][]float32, len(texts))
	for i := range texts {
		out[i] = append([]float32(nil), found[first[keys[i]]]...)
	}
	return out, nil
}

// embedOwn asks the inner embedder for texts[idx] and checks its answer.
func (c *Cache) embedOwn(ctx context.Context, texts []string, idx []int) ([][]float32, error) {
	batch := make([]string, len(idx))
	for n, i := range idx {
		batch[n] = texts[i]
	}
	vecs, err := c.inner.Embed(ctx, batch)
	if err != nil {
		return nil, err
	}
	if len(vecs) != len(batch) {
		return nil, fmt.Errorf("embed cache: %s returned %d vectors for %d texts", c.inner.ModelTag(), len(vecs), len(batch))
	}
	for n, v := range vecs {
		if _, err := decodeVector(encodeVector(v), c.inner.Dim()); err != nil {
			return nil, fmt.Errorf("embed cache: %s returned a bad vector for text %d: %w", c.inner.ModelTag(), idx[n], err)
		}
	}
	return vecs, nil
}

// lookup returns the stored vectors for keys[i], i in idx (nil where absent
// or invalid), indexed like keys. report counts and logs invalid values.
func (c *Cache) lookup(keys [][32]byte, idx []int, report bool) [][]float32 {
	found := make([][]float32, len(keys))
	var bad []int
	err := c.withDB(func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketVectors)
			if b == nil {
				return errors.New("vectors bucket missing")
			}
			for _, i := range idx {
				raw := b.Get(keys[i][:])
				if raw == nil {
					continue
				}
				v, err := decodeVector(raw, c.inner.Dim())
				if err != nil {
					bad = append(bad, i)
					continue
				}
				found[i] = v
			}
			return nil
		})
	})
	if err != nil {
		c.rebuild(err)
		return make([][]float32, len(keys))
	}
	if len(bad) > 0 && report {
		c.bad.Add(int64(len(bad)))
		c.log.Warn("cached vectors failed validation; re-embedding them", "path", c.path, "count", len(bad))
	}
	return found
}

// store writes vectors; a failure is logged, not returned: the cache is an
// optimisation and the caller already has its vectors.
func (c *Cache) store(keys [][32]byte, idx []int, vecs [][]float32) {
	err := c.withDB(func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketVectors)
			if b == nil {
				return errors.New("vectors bucket missing")
			}
			for n, i := range idx {
				if err := b.Put(keys[i][:], encodeVector(vecs[n])); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		c.log.Warn("cannot store vectors", "path", c.path, "err", err)
	}
}
