package blob

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ragparity/ragparity/parity"
)

// BlobCache remembers the SHA-256 of objects' content, keyed by the store's
// location (endpoint, bucket, prefix) and, per object, by the strongest
// identity the store's listing offers (CacheKey): key, size, ETag,
// last-modified, and the store's own identity (a local file's inode, device
// and ctime; an S3 object's version id when listed; full-object checksums
// when reported). A nightly re-run reads only objects whose identity changed.
//
// One file per location under the cache folder. The file carries a format
// tag, the location it belongs to, a record count and a SHA-256 trailer
// over everything before it; a file that fails any check (truncated,
// edited, another format version, another location) is reported as
// Rebuilt and ignored, never trusted, and is replaced on Save.
//
// What a cache hit proves: the object's listing identity is the one it had
// when ragparity last read and hashed its bytes, at most RehashEvery ago.
// It does not prove the bytes are unchanged when the store changed them
// without changing that identity (an S3 server whose backing files were
// edited in place keeps ETag and Last-Modified): RehashEvery bounds how
// long such a change can go unseen, and `--no-cache` reads everything.
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
	// Due counts entries whose identity matched but whose periodic
	// re-hash was due (counted in Misses too).
	Due int64
	// RehashEvery, when > 0, makes every entry a miss at least once per
	// period: each key has its own phase in the period (from a hash of the
	// key), and an entry hashed before the key's latest phase boundary is
	// due. Keys' boundaries spread over the period, so a run re-reads about
	// (time since the last run / RehashEvery) of the objects.
	RehashEvery time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// CacheKey is what identifies an object's content to the cache.
type CacheKey struct {
	Key  string
	Size int64
	ETag string
	LM   time.Time
	// Identity is the store's own identity (parity.ObjectInfo.Identity)
	// with the full-object checksums the listing reported.
	Identity string
}

// KeyOf is the cache key of a listed object.
func KeyOf(oi parity.ObjectInfo) CacheKey {
	id := oi.Identity
	if oi.ChecksumSHA256 != "" || oi.ChecksumCRC64NVME != "" {
		id += ";sha256=" + oi.ChecksumSHA256 + ";crc64nvme=" + oi.ChecksumCRC64NVME
	}
	return CacheKey{Key: oi.Key, Size: oi.Size, ETag: oi.ETag, LM: oi.LastModified, Identity: id}
}

type cacheRec struct {
	size     int64
	etag     string
	lm       int64 // unix nanoseconds
	identity string
	hashedAt int64 // unix nanoseconds
	sha      parity.Digest
}

const (
	cacheMagic = "ragparity/blobcache/v2\n"
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

func (c *BlobCache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Get returns the cached content hash of an object if every part of its
// identity is the one recorded and its periodic re-hash is not due. An
// object the store gives no identity beyond its mtime (an empty Identity
// where the store should have one) still matches on the rest; the stores
// that can, set it (localfs: inode, device, ctime).
func (c *BlobCache) Get(k CacheKey) (parity.Digest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.old[k.Key]
	if ok && r.size == k.Size && r.etag == k.ETag && r.lm == k.LM.UnixNano() && r.identity == k.Identity {
		if rehashDue(k.Key, r.hashedAt, c.now().UnixNano(), c.RehashEvery) {
			c.Due++
		} else {
			c.seen[k.Key] = r
			c.Hits++
			return r.sha, true
		}
	}
	c.Misses++
	return parity.Digest{}, false
}

// rehashDue: the key's phase boundaries are phase + n*period; an entry
// hashed before the latest boundary at or before now is due. A hash time
// in the future (a clock set back) is due too.
func rehashDue(key string, hashedAt, now int64, period time.Duration) bool {
	if period <= 0 {
		return false
	}
	if hashedAt > now {
		return true
	}
	p := int64(period)
	h := fnv.New64a()
	h.Write([]byte(key))
	phase := int64(h.Sum64() % uint64(p))
	epoch := func(t int64) int64 {
		x := t - phase
		if x < 0 {
			return -1 - (-x-1)/p
		}
		return x / p
	}
	return epoch(hashedAt) != epoch(now)
}

// Put records an object's content hash, read now.
func (c *BlobCache) Put(k CacheKey, sha parity.Digest) {
	c.mu.Lock()
	c.seen[k.Key] = cacheRec{size: k.Size, etag: k.ETag, lm: k.LM.UnixNano(), identity: k.Identity, hashedAt: c.now().UnixNano(), sha: sha}
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
// A record is lp(key), u64 size, lp(etag), i64 last-modified ns,
// lp(identity), i64 hashed-at ns, sha256.
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
		b = parity.AppendLP(b, r.identity)
		b = binary.BigEndian.AppendUint64(b, uint64(r.hashedAt))
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
		rec.identity = p.lp()
		rec.hashedAt = int64(p.u64())
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
