package blob

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ragparity/ragparity/parity"
)

// BlobCache remembers the SHA-256 of objects' content, keyed by the store's
// location (endpoint, bucket, prefix) and, per object, by (key, size, ETag,
// last-modified): a nightly re-run reads only objects whose listing changed.
//
// One file per location under the cache folder. The file carries a format
// tag, the location it belongs to, a record count and a SHA-256 trailer
// over everything before it; a file that fails any check (truncated,
// edited, another format version, another location) is reported as
// Rebuilt and ignored, never trusted, and is replaced on Save.
//
// What the cache cannot see: an object rewritten with the same size, ETag
// and last-modified time (e.g. bytes edited under a server's storage folder
// within the same second). `--no-cache` reads everything.
type BlobCache struct {
	path     string
	location string

	mu   sync.Mutex
	old  map[string]cacheRec
	seen map[string]cacheRec
	// Rebuilt says why an existing file was not used ("" when it was used
	// or there was none).
	Rebuilt string
	Hits    int64
	Misses  int64
}

type cacheRec struct {
	size int64
	etag string
	lm   int64 // unix nanoseconds
	sha  parity.Digest
}

const (
	cacheMagic = "ragparity/blobcache/v1\n"
	// maxCacheRecords bounds what a (corrupt) count field can make Load
	// allocate.
	maxCacheRecords = 1 << 28
)

// DefaultBlobCacheDir is $XDG_CACHE_HOME/ragparity/blobs (or the OS's user
// cache folder).
func DefaultBlobCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("blob cache: no user cache folder (set XDG_CACHE_HOME or use --cache-dir): %w", err)
	}
	return filepath.Join(d, "ragparity", "blobs"), nil
}

// BlobCacheFile is the file that holds a location's cache under dir.
func BlobCacheFile(dir, location string) string {
	h := sha256.Sum256([]byte(location))
	return filepath.Join(dir, fmt.Sprintf("%x.cache", h[:12]))
}

// OpenBlobCache loads the location's cache file under dir. A missing file
// is an empty cache; an unusable one is an empty cache with Rebuilt set.
// Only an unreadable folder is an error.
func OpenBlobCache(dir, location string) (*BlobCache, error) {
	c := &BlobCache{path: BlobCacheFile(dir, location), location: location,
		old: map[string]cacheRec{}, seen: map[string]cacheRec{}}
	f, err := os.Open(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blob cache %s: %w", c.path, err)
	}
	defer f.Close()
	recs, err := readCache(f, location)
	if err != nil {
		c.Rebuilt = err.Error()
		return c, nil
	}
	c.old = recs
	return c, nil
}

// Path is the cache file.
func (c *BlobCache) Path() string { return c.path }

// Get returns the cached content hash of an object if its size, ETag and
// last-modified time are those recorded.
func (c *BlobCache) Get(key string, size int64, etag string, lm time.Time) (parity.Digest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.old[key]
	if ok && r.size == size && r.etag == etag && r.lm == lm.UnixNano() {
		c.seen[key] = r
		c.Hits++
		return r.sha, true
	}
	c.Misses++
	return parity.Digest{}, false
}

// Put records an object's content hash.
func (c *BlobCache) Put(key string, size int64, etag string, lm time.Time, sha parity.Digest) {
	c.mu.Lock()
	c.seen[key] = cacheRec{size: size, etag: etag, lm: lm.UnixNano(), sha: sha}
	c.mu.Unlock()
}

// Save writes the cache atomically. complete says the run listed the whole
// location: then only objects seen in it are kept (deleted objects drop
// out); otherwise the old records are kept beside the new ones.
func (c *BlobCache) Save(complete bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	recs := c.seen
	if !complete {
		recs = make(map[string]cacheRec, len(c.old)+len(c.seen))
		for k, v := range c.old {
			recs[k] = v
		}
		for k, v := range c.seen {
			recs[k] = v
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("blob cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("blob cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = writeCache(tmp, c.location, recs)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.path)
	}
	if err != nil {
		return fmt.Errorf("blob cache %s: %w", c.path, err)
	}
	return nil
}

// writeCache: magic, lp(location), u64 count, records, sha256 trailer.
// A record is lp(key), u64 size, lp(etag), i64 last-modified ns, sha256.
func writeCache(w io.Writer, location string, recs map[string]cacheRec) error {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 64<<10)
	b := parity.AppendLP([]byte(cacheMagic), location)
	b = binary.BigEndian.AppendUint64(b, uint64(len(recs)))
	bw.Write(b)
	for k, r := range recs {
		b = parity.AppendLP(b[:0], k)
		b = binary.BigEndian.AppendUint64(b, uint64(r.size))
		b = parity.AppendLP(b, r.etag)
		b = binary.BigEndian.AppendUint64(b, uint64(r.lm))
		b = append(b, r.sha[:]...)
		if _, err := bw.Write(b); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(h.Sum(nil))
	return err
}

func readCache(r io.Reader, location string) (map[string]cacheRec, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("unreadable: %v", err)
	}
	if !bytes.HasPrefix(data, []byte(cacheMagic)) {
		return nil, errors.New("not a ragparity blob cache of this version")
	}
	if len(data) < len(cacheMagic)+sha256.Size {
		return nil, errors.New("truncated")
	}
	body, trailer := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], trailer) {
		return nil, errors.New("checksum mismatch (corrupt or truncated)")
	}
	p := cacheParser{b: body[len(cacheMagic):]}
	loc := p.lp()
	n := p.u64()
	if p.err != nil {
		return nil, p.err
	}
	if loc != location {
		return nil, fmt.Errorf("belongs to another location (%q)", loc)
	}
	if n > maxCacheRecords {
		return nil, fmt.Errorf("implausible record count %d", n)
	}
	recs := make(map[string]cacheRec, min(n, 1<<20))
	for i := uint64(0); i < n; i++ {
		k := p.lp()
		var rec cacheRec
		rec.size = int64(p.u64())
		rec.etag = p.lp()
		rec.lm = int64(p.u64())
		copy(rec.sha[:], p.take(32))
		if p.err != nil {
			return nil, p.err
		}
		if _, dup := recs[k]; dup || rec.size < 0 {
			return nil, fmt.Errorf("invalid record %d", i)
		}
		recs[k] = rec
	}
	if len(p.b) != 0 {
		return nil, fmt.Errorf("%d stray bytes after the records", len(p.b))
	}
	return recs, nil
}

type cacheParser struct {
	b   []byte
	err error
}

func (p *cacheParser) take(n int) []byte {
	if p.err != nil || n < 0 || len(p.b) < n {
		if p.err == nil {
			p.err = errors.New("truncated record")
		}
		return make([]byte, max(n, 0))
	}
	out := p.b[:n]
	p.b = p.b[n:]
	return out
}

func (p *cacheParser) u64() uint64 { return binary.BigEndian.Uint64(p.take(8)) }
func (p *cacheParser) lp() string {
	n := binary.BigEndian.Uint32(p.take(4))
	if uint64(n) > uint64(len(p.b)) {
		if p.err == nil {
			p.err = errors.New("truncated record")
		}
		return ""
	}
	return string(p.take(int(n)))
}
