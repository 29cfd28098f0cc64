package fence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	bolt "go.etcd.io/bbolt"
)

// Counts are dedupe counter increments.
type Counts struct {
	// Hits are writes skipped because the fence said they were done.
	Hits int64 `json:"hits"`
	// Misses are writes claimed and made (first writes).
	Misses int64 `json:"misses"`
	// Duplicates are writes made for a key that was already done: replays
	// the fence failed to stop.
	Duplicates int64 `json:"duplicates"`
}

// WindowStat is a region's dedupe counters over one window: windows are
// consecutive spans of the given length aligned on the Unix epoch, and the
// current window is the one holding now.
type WindowStat struct {
	Region string        `json:"region"`
	Start  time.Time     `json:"window_start"`
	Length time.Duration `json:"window_ns"`
	Counts
	// Replayed are the writes that were replays of an earlier one: hits
	// plus duplicates.
	Replayed int64 `json:"replayed"`
	// Rate is the dedupe rate over the window: hits / replayed, the share
	// of replayed writes the fence stopped (1 when nothing was replayed;
	// check Replayed before reading much into it). The playbook's target
	// is >= 0.999.
	Rate float64 `json:"rate"`
}

// DefaultWindow is the counting window when none is configured (a zero
// failover_window).
const DefaultWindow = time.Hour

func normWindow(w time.Duration) time.Duration {
	if w <= 0 {
		return DefaultWindow
	}
	return w
}

func windowStart(now time.Time, window time.Duration) time.Time {
	window = normWindow(window)
	return time.Unix(0, now.UnixNano()-now.UnixNano()%int64(window)).UTC()
}

func (w *WindowStat) finish() {
	w.Replayed = w.Hits + w.Duplicates
	w.Rate = 1
	if w.Replayed > 0 {
		w.Rate = float64(w.Hits) / float64(w.Replayed)
	}
}

func windowKey(region string, start time.Time) string {
	return fencePrefix + "win:" + region + ":" + strconv.FormatInt(start.UnixNano(), 10)
}

// Holder says who holds a lease.
type Holder struct {
	Owner string    `json:"owner"`
	RunID string    `json:"run_id,omitempty"`
	Host  string    `json:"host,omitempty"`
	Since time.Time `json:"since"`
}

const leasePrefix = fencePrefix + "lease:"
const genPrefix = fencePrefix + "gen:"

func randomToken() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// completeScript sets the key done and returns its previous value.
var completeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if v == false then return '' end
return v
`)

func (f *redisFence) Complete(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	v, err := completeScript.Run(ctx, f.c, []string{fencePrefix + key}, donePrefix, ttl.Milliseconds()).Text()
	if err != nil {
		return false, fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	return v == donePrefix, nil
}

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

func (f *redisFence) Release(ctx context.Context, key, owner string) error {
	if err := releaseScript.Run(ctx, f.c, []string{fencePrefix + key}, "pending:"+owner).Err(); err != nil {
		return fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	return nil
}

func (f *redisFence) Count(ctx context.Context, region string, window time.Duration, c Counts) error {
	window = normWindow(window)
	k := windowKey(region, windowStart(time.Now(), window))
	_, err := f.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		if c.Hits != 0 {
			p.HIncrBy(ctx, k, "hits", c.Hits)
		}
		if c.Misses != 0 {
			p.HIncrBy(ctx, k, "misses", c.Misses)
		}
		if c.Duplicates != 0 {
			p.HIncrBy(ctx, k, "duplicates", c.Duplicates)
		}
		p.PExpire(ctx, k, 2*window+time.Hour)
		return nil
	})
	if err != nil {
		return fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	return nil
}

func (f *redisFence) Window(ctx context.Context, region string, window time.Duration) (WindowStat, error) {
	window = normWindow(window)
	ws := WindowStat{Region: region, Start: windowStart(time.Now(), window), Length: window}
	vals, err := f.c.HMGet(ctx, windowKey(region, ws.Start), "hits", "misses", "duplicates").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return ws, fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	if len(vals) == 3 {
		ws.Hits, ws.Misses, ws.Duplicates = redisInt(vals[0]), redisInt(vals[1]), redisInt(vals[2])
	}
	ws.finish()
	return ws, nil
}

// acquireScript: the value is "<owner>\n<holder JSON>".
var acquireScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, ARGV[1]}
end
if string.sub(v, 1, #ARGV[3] + 1) == ARGV[3] .. '\n' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, v}
end
return {0, v}
`)

func encodeHolder(h Holder) string {
	b, _ := json.Marshal(h)
	return h.Owner + "\n" + string(b)
}

func decodeHolder(v string) Holder {
	var h Holder
	if i := strings.IndexByte(v, '\n'); i >= 0 {
		json.Unmarshal([]byte(v[i+1:]), &h)
	}
	return h
}

func (f *redisFence) Acquire(ctx context.Context, name string, h Holder, ttl time.Duration) (Holder, bool, error) {
	if h.Owner == "" || strings.ContainsRune(h.Owner, '\n') {
		return Holder{}, false, errors.New("dedupe_kv: lease owner must be non-empty and on one line")
	}
	res, err := acquireScript.Run(ctx, f.c, []string{leasePrefix + name}, encodeHolder(h), ttl.Milliseconds(), h.Owner).Slice()
	if err != nil || len(res) != 2 {
		return Holder{}, false, fmt.Errorf("dedupe_kv %s: lease %s: %v", f.where, name, err)
	}
	ok, _ := res[0].(int64)
	v, _ := res[1].(string)
	return decodeHolder(v), ok == 1, nil
}

var unleaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. '\n' then redis.call('DEL', KEYS[1]) end
return 1
`)

func (f *redisFence) Unlease(ctx context.Context, name, owner string) error {
	if err := unleaseScript.Run(ctx, f.c, []string{leasePrefix + name}, owner).Err(); err != nil {
		return fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	return nil
}

var genScript = redis.NewScript(`
if ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return ARGV[1] end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('GET', KEYS[1])
`)

func (f *redisFence) Generation(ctx context.Context, name string, fresh bool, ttl time.Duration) (string, error) {
	fl := "0"
	if fresh {
		fl = "1"
	}
	v, err := genScript.Run(ctx, f.c, []string{genPrefix + name}, randomToken(), ttl.Milliseconds(), fl).Text()
	if err != nil {
		return "", fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	return v, nil
}

// The bbolt fence keeps everything in its one bucket, values prefixed
// with their expiry.

func (f *boltFence) Complete(_ context.Context, key string, ttl time.Duration) (bool, error) {
	var already bool
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(fenceBucket)
		if cur := b.Get([]byte(key)); cur != nil {
			v, exp := decodeVal(cur)
			already = v == donePrefix && time.Now().Before(exp)
		}
		return b.Put([]byte(key), encodeVal(donePrefix, time.Now().Add(ttl)))
	})
	if err != nil {
		return false, fmt.Errorf("dedupe_kv: %w", err)
	}
	return already, nil
}

func (f *boltFence) Release(_ context.Context, key, owner string) error {
	return f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(fenceBucket)
		if v, _ := decodeVal(b.Get([]byte(key))); v == "pending:"+owner {
			return b.Delete([]byte(key))
		}
		return nil
	})
}

func (f *boltFence) Count(_ context.Context, region string, window time.Duration, c Counts) error {
	window = normWindow(window)
	k := windowKey(region, windowStart(time.Now(), window))
	return f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(fenceBucket)
		var cur Counts
		if v, exp := decodeVal(b.Get([]byte(k))); v != "" && time.Now().Before(exp) {
			json.Unmarshal([]byte(v), &cur)
		}
		cur.Hits += c.Hits
		cur.Misses += c.Misses
		cur.Duplicates += c.Duplicates
		v, _ := json.Marshal(cur)
		return b.Put([]byte(k), encodeVal(string(v), time.Now().Add(2*window+time.Hour)))
	})
}

func (f *boltFence) Window(_ context.Context, region string, window time.Duration) (WindowStat, error) {
	window = normWindow(window)
	ws := WindowStat{Region: region, Start: windowStart(time.Now(), window), Length: window}
	err := f.db.View(func(tx *bolt.Tx) error {
		if v, exp := decodeVal(tx.Bucket(fenceBucket).Get([]byte(windowKey(region, ws.Start)))); v != "" && time.Now().Before(exp) {
			return json.Unmarshal([]byte(v), &ws.Counts)
		}
		return nil
	})
	if err != nil {
		return ws, fmt.Errorf("dedupe_kv: %w", err)
	}
	ws.finish()
	return ws, nil
}

func (f *boltFence) Acquire(_ context.Context, name string, h Holder, ttl time.Duration) (Holder, bool, error) {
	if h.Owner == "" || strings.ContainsRune(h.Owner, '\n') {
		return Holder{}, false, errors.New("dedupe_kv: lease owner must be non-empty and on one line")
	}
	var cur Holder
	ok := true
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(fenceBucket)
		k := []byte(leasePrefix + name)
		now := time.Now()
		val := encodeHolder(h)
		if v, exp := decodeVal(b.Get(k)); v != "" && now.Before(exp) {
			cur = decodeHolder(v)
			if cur.Owner != h.Owner {
				ok = false
				return nil
			}
			val = v
		} else {
			cur = h
		}
		return b.Put(k, encodeVal(val, now.Add(ttl)))
	})
	if err != nil {
		return Holder{}, false, fmt.Errorf("dedupe_kv: %w", err)
	}
	return cur, ok, nil
}

func (f *boltFence) Unlease(_ context.Context, name, owner string) error {
	return f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(fenceBucket)
		k := []byte(leasePrefix + name)
		if v, _ := decodeVal(b.Get(k)); v != "" && decodeHolder(v).Owner == owner {
			return b.Delete(k)
		}
		return nil
	})
}

func (f *boltFence) Generation(_ context.Context, name string, fresh bool, ttl time.Duration) (string, error) {
	var out string
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(fenceBucket)
		k := []byte(genPrefix + name)
		now := time.Now()
		if v, exp := decodeVal(b.Get(k)); !fresh && v != "" && now.Before(exp) {
			out = v
		} else {
			out = randomToken()
		}
		return b.Put(k, encodeVal(out, now.Add(ttl)))
	})
	if err != nil {
		return "", fmt.Errorf("dedupe_kv: %w", err)
	}
	return out, nil
}

const notePrefix = fencePrefix + "note:"

func (f *redisFence) SetNote(ctx context.Context, name, value string, ttl time.Duration) error {
	if err := f.c.Set(ctx, notePrefix+name, value, ttl).Err(); err != nil {
		return fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	return nil
}

func (f *redisFence) Note(ctx context.Context, name string) (string, bool, error) {
	v, err := f.c.Get(ctx, notePrefix+name).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	return v, true, nil
}

func (f *boltFence) SetNote(_ context.Context, name, value string, ttl time.Duration) error {
	return f.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(fenceBucket).Put([]byte(notePrefix+name), encodeVal(value, time.Now().Add(ttl)))
	})
}

func (f *boltFence) Note(_ context.Context, name string) (string, bool, error) {
	var v string
	var ok bool
	err := f.db.View(func(tx *bolt.Tx) error {
		val, exp := decodeVal(tx.Bucket(fenceBucket).Get([]byte(notePrefix + name)))
		if exp.After(time.Now()) {
			v, ok = val, true
		}
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("dedupe_kv: %w", err)
	}
	return v, ok, nil
}

func (f *redisFence) Leased(ctx context.Context, name string) (Holder, bool, error) {
	v, err := f.c.Get(ctx, leasePrefix+name).Result()
	if errors.Is(err, redis.Nil) {
		return Holder{}, false, nil
	}
	if err != nil {
		return Holder{}, false, fmt.Errorf("dedupe_kv %s: %w", f.where, err)
	}
	return decodeHolder(v), true, nil
}

func (f *boltFence) Leased(_ context.Context, name string) (Holder, bool, error) {
	var h Holder
	var ok bool
	err := f.db.View(func(tx *bolt.Tx) error {
		if v, exp := decodeVal(tx.Bucket(fenceBucket).Get([]byte(leasePrefix + name))); v != "" && time.Now().Before(exp) {
			h, ok = decodeHolder(v), true
		}
		return nil
	})
	if err != nil {
		return Holder{}, false, fmt.Errorf("dedupe_kv: %w", err)
	}
	return h, ok, nil
}
