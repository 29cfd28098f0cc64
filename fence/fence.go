// Package fence is the idempotency fence of metrics.md: one key per
// (source_id, revision, index_hash, partition), claimed set-if-absent with
// a lease, marked done with a TTL, in Redis or an embedded bbolt file.
package fence

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"

	"github.com/ragparity/ragparity/internal/urlsafe"
)

// ClaimState is the answer of a fence claim.
type ClaimState int

const (
	// Acquired: the caller should write, then call Done.
	Acquired ClaimState = iota
	// AlreadyDone: the write happened before; skip it (a dedupe hit).
	AlreadyDone
	// HeldByOther: another live writer holds the claim; skip it.
	HeldByOther
)

// Fence is the idempotency fence of metrics.md: a key per (source_id,
// revision, index_hash, partition), set-if-absent with a TTL of
// failover_window + 24 h. A claim is first "pending" under a short lease
// (so a writer that dies does not block others for a day) and becomes
// "done" once the write is acknowledged.
type Fence interface {
	Claim(ctx context.Context, key, owner string, lease time.Duration) (ClaimState, error)
	Done(ctx context.Context, key string, ttl time.Duration) error
	// MarkWarm sets the warm marker the gate checks, once a rebuild has
	// finished against this KV, and adds that rebuild's dedupe hits and
	// misses to the KV's running totals. Warm reads both back.
	MarkWarm(ctx context.Context, st DedupeStat) error
	Warm(ctx context.Context) (WarmState, error)

	// Release gives up owner's pending claim on key (the write was not
	// made): another writer may claim it at once. A claim that is done, or
	// held by someone else, is left alone.
	Release(ctx context.Context, key, owner string) error
	// Complete is Done that also says whether key was already done: a
	// write applied twice (a duplicate the fence failed to prevent, e.g.
	// after a lease expired under a slow writer).
	Complete(ctx context.Context, key string, ttl time.Duration) (already bool, err error)
	// Count adds to the dedupe counters of region's current window (see
	// WindowStat); Window reads them.
	Count(ctx context.Context, region string, window time.Duration, c Counts) error
	Window(ctx context.Context, region string, window time.Duration) (WindowStat, error)

	// Acquire takes (or, for the same Holder.Owner, renews) the lease
	// called name for ttl. When another owner holds it, ok is false and
	// cur says who.
	Acquire(ctx context.Context, name string, h Holder, ttl time.Duration) (cur Holder, ok bool, err error)
	// Leased says who holds the lease called name (ok false when nobody).
	Leased(ctx context.Context, name string) (h Holder, ok bool, err error)
	// Unlease releases owner's lease on name; someone else's is left alone.
	Unlease(ctx context.Context, name, owner string) error

	// Generation returns the token stored under name, creating a random
	// one when there is none or when fresh is set (a new generation voids
	// everything keyed by the old one). It is kept for ttl.
	Generation(ctx context.Context, name string, fresh bool, ttl time.Duration) (string, error)
	// SetNote stores a small value under name for ttl; Note reads it back
	// (ok false when there is none or it expired).
	SetNote(ctx context.Context, name, value string, ttl time.Duration) error
	Note(ctx context.Context, name string) (value string, ok bool, err error)
	Close() error
}

// Key = sha256(source_id + revision + index_hash + partition), with
// NUL separators so that no two tuples share a key.
func Key(sourceID, revision, indexHash, partition string) string {
	h := sha256.Sum256([]byte(sourceID + "\x00" + revision + "\x00" + indexHash + "\x00" + partition))
	return hex.EncodeToString(h[:])
}

// ValidKey says whether k is a key as Key makes it: 64 lower-case hex
// digits.
func ValidKey(k string) bool {
	if len(k) != 64 {
		return false
	}
	for _, c := range k {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// WarmState is what a fence store says of itself: whether a rebuild has
// warmed it (and when), and the dedupe hits (writes skipped) and misses
// (writes done) that rebuilds against it have counted.
type WarmState struct {
	Warm         bool
	At           time.Time
	Hits, Misses int64
}

// Open opens redis://host:port/db or, for "" , an embedded bbolt file
// at fallback.
func Open(raw, fallback string) (Fence, error) {
	if raw == "" {
		return openBoltFence(fallback)
	}
	u, err := urlsafe.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("dedupe_kv: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss":
		quietRedis.Do(func() { redis.SetLogger(quietLogger{}) })
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("dedupe_kv %s: %v", u.Redacted(), err)
		}
		opt.DialTimeout = 3 * time.Second
		return &redisFence{c: redis.NewClient(opt), where: u.Redacted()}, nil
	case "bolt", "file":
		return openBoltFence(u.Path)
	}
	return nil, fmt.Errorf("dedupe_kv %s: unknown scheme %q (want redis:// or file:///path)", u.Redacted(), u.Scheme)
}

// quietLogger drops go-redis's own log lines (a dial failure is logged on
// stderr once per retry round, around the error ragparity reports): the
// caller reports each failure once, from the returned error, redacted.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

var quietRedis sync.Once

const (
	fencePrefix = "ragparity:fence:"
	warmKey     = "ragparity:fence:warm"
	statsKey    = "ragparity:fence:stats"
	donePrefix  = "done"
)

type redisFence struct {
	c     *redis.Client
	where string
}

// claimScript: SET NX the pending marker; if the key exists, report its
// value so the caller can tell done from pending, and let the same owner
// re-take its own pending claim (a resumed run).
var claimScript = redis.NewScript(`
local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if ok then return 'acquired' end
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 'acquired'
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 'acquired'
end
return v
`)

func (f *redisFence) Claim(ctx context.Context, key, owner string, lease time.Duration) (ClaimState, error) {
	v, err := claimScript.Run(ctx, f.c, []string{fencePrefix + key}, "pending:"+owner, lease.Milliseconds()).Text()
	if err != nil {
		return 0, fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	switch {
	case v == "acquired":
		return Acquired, nil
	case v == donePrefix:
		return AlreadyDone, nil
	}
	return HeldByOther, nil
}

func (f *redisFence) Done(ctx context.Context, key string, ttl time.Duration) error {
	_, err := f.Complete(ctx, key, ttl)
	return err
}

func (f *redisFence) MarkWarm(ctx context.Context, st DedupeStat) error {
	_, err := f.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HIncrBy(ctx, statsKey, "hits", int64(st.Hits))
		p.HIncrBy(ctx, statsKey, "misses", int64(st.Misses))
		p.Set(ctx, warmKey, time.Now().UTC().Format(time.RFC3339Nano), 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	return nil
}

func (f *redisFence) Warm(ctx context.Context) (WarmState, error) {
	var at *redis.StringCmd
	var counts *redis.SliceCmd
	_, err := f.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		at = p.Get(ctx, warmKey)
		counts = p.HMGet(ctx, statsKey, "hits", "misses")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return WarmState{}, fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	var ws WarmState
	if v, err := at.Result(); err == nil {
		ws.Warm = true
		ws.At, _ = time.Parse(time.RFC3339Nano, v)
	}
	if vals, err := counts.Result(); err == nil && len(vals) == 2 {
		ws.Hits, ws.Misses = redisInt(vals[0]), redisInt(vals[1])
	}
	return ws, nil
}

func redisInt(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func (f *redisFence) Close() error { return f.c.Close() }

// boltFence is the embedded fallback: one bbolt file, values carry their
// expiry.
type boltFence struct {
	db *bolt.DB
}

var (
	boltMu   sync.Mutex
	boltOpen = map[string]*boltShared{}
)

type boltShared struct {
	db   *bolt.DB
	refs int
}

var fenceBucket = []byte("fence")

func openBoltFence(path string) (Fence, error) {
	if path == "" {
		return nil, errors.New("dedupe_kv: no Redis configured and no fallback path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("dedupe_kv %s: %w", path, err)
	}
	boltMu.Lock()
	defer boltMu.Unlock()
	if s, ok := boltOpen[path]; ok {
		s.refs++
		return &boltFence{db: s.db}, nil
	}
	// A second process waits up to 10 s for the file lock.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("dedupe_kv %s: the file is in use by another process (another ragparity run on this host?) and was not released within 10 s; configure a Redis dedupe_kv for concurrent writers", path)
	}
	if err != nil {
		return nil, fmt.Errorf("dedupe_kv %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(fenceBucket); return err }); err != nil {
		db.Close()
		return nil, fmt.Errorf("dedupe_kv %s: %w", path, err)
	}
	boltOpen[path] = &boltShared{db: db, refs: 1}
	return &boltFence{db: db}, nil
}

func encodeVal(v string, exp time.Time) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(exp.UnixNano()))
	return append(b, v...)
}

func decodeVal(b []byte) (string, time.Time) {
	if len(b) < 8 {
		return "", time.Time{}
	}
	return string(b[8:]), time.Unix(0, int64(binary.BigEndian.Uint64(b)))
}

func (f *boltFence) Claim(_ context.Context, key, owner string, lease time.Duration) (ClaimState, error) {
	st := Acquired
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(fenceBucket)
		now := time.Now()
		if cur := b.Get([]byte(key)); cur != nil {
			v, exp := decodeVal(cur)
			if now.Before(exp) {
				switch {
				case v == donePrefix:
					st = AlreadyDone
					return nil
				case v != "pending:"+owner:
					st = HeldByOther
					return nil
				}
			}
		}
		return b.Put([]byte(key), encodeVal("pending:"+owner, now.Add(lease)))
	})
	if err != nil {
		return 0, fmt.Errorf("dedupe_kv: %w", err)
	}
	return st, nil
}

func (f *boltFence) Done(ctx context.Context, key string, ttl time.Duration) error {
	_, err := f.Complete(ctx, key, ttl)
	return err
}

// The bolt fence keeps its warm marker and counters beside the keys, with
// an expiry a century out.
const boltForever = 100 * 365 * 24 * time.Hour

func (f *boltFence) MarkWarm(_ context.Context, st DedupeStat) error {
	return f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(fenceBucket)
		exp := time.Now().Add(boltForever)
		for _, c := range []struct {
			field string
			n     int
		}{{"hits", st.Hits}, {"misses", st.Misses}} {
			k := []byte(statsKey + ":" + c.field)
			v, _ := decodeVal(b.Get(k))
			n, _ := strconv.ParseInt(v, 10, 64)
			if err := b.Put(k, encodeVal(strconv.FormatInt(n+int64(c.n), 10), exp)); err != nil {
				return err
			}
		}
		return b.Put([]byte(warmKey), encodeVal(time.Now().UTC().Format(time.RFC3339Nano), exp))
	})
}

func (f *boltFence) Warm(_ context.Context) (WarmState, error) {
	var ws WarmState
	err := f.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(fenceBucket)
		if v := b.Get([]byte(warmKey)); v != nil {
			ws.Warm = true
			s, _ := decodeVal(v)
			ws.At, _ = time.Parse(time.RFC3339Nano, s)
		}
		h, _ := decodeVal(b.Get([]byte(statsKey + ":hits")))
		m, _ := decodeVal(b.Get([]byte(statsKey + ":misses")))
		ws.Hits, _ = strconv.ParseInt(h, 10, 64)
		ws.Misses, _ = strconv.ParseInt(m, 10, 64)
		return nil
	})
	if err != nil {
		return WarmState{}, fmt.Errorf("dedupe_kv: %w", err)
	}
	return ws, nil
}

func (f *boltFence) Close() error {
	boltMu.Lock()
	defer boltMu.Unlock()
	for p, s := range boltOpen {
		if s.db == f.db {
			s.refs--
			if s.refs == 0 {
				delete(boltOpen, p)
				return s.db.Close()
			}
		}
	}
	return nil
}

// DedupeStat counts, per region, chunk writes skipped by the fence (hits)
// and done (misses).
type DedupeStat struct {
	Hits   int `json:"hits"`
	Misses int `json:"misses"`
}
