package embed

// The bbolt side of Cache: opening, checking, rebuilding, value encoding.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openChecked opens the file, verifies it and rebuilds it when it cannot be
// trusted. Only a lock held by another process is returned as an error.
func (c *Cache) openChecked(lockTimeout time.Duration) (*bolt.DB, error) {
	db, err := c.tryOpen(lockTimeout)
	if err == nil {
		return db, nil
	}
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("embed cache: %s is locked by another process: %w", c.path, err)
	}
	c.log.Warn("cache file unusable; rebuilding", "path", c.path, "err", err)
	if err := c.quarantine(); err != nil {
		return nil, err
	}
	db, err = c.tryOpen(lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("embed cache: rebuild %s: %w", c.path, err)
	}
	return db, nil
}

// tryOpen opens and checks the file: its size against bbolt's high-water
// mark, the format marker, and a walk over every stored value (which
// touches every page of the tree and checks each value's CRC). bbolt may
// panic, or fault on a truncated mapping, on a corrupt file; both become
// errors. Values that fail their check are deleted.
func (c *Cache) tryOpen(lockTimeout time.Duration) (db *bolt.DB, err error) {
	// bbolt.Open itself panics on some corrupt files (a bad freelist page);
	// the descriptor it leaks then is for the file that is moved aside.
	err = guard(func() (err error) {
		db, err = bolt.Open(c.path, 0o600, &bolt.Options{Timeout: lockTimeout})
		return err
	})
	if err != nil {
		return nil, err
	}
	var bad [][]byte
	err = guard(func() error {
		return db.Update(func(tx *bolt.Tx) error {
			fi, err := os.Stat(c.path)
			if err != nil {
				return err
			}
			if tx.Size() > fi.Size() {
				return fmt.Errorf("file is %d bytes, its pages need %d (truncated)", fi.Size(), tx.Size())
			}
			meta := tx.Bucket(bucketMeta)
			if meta == nil {
				if tx.Bucket(bucketVectors) != nil {
					return errors.New("vectors without a format marker")
				}
				m, err := tx.CreateBucket(bucketMeta)
				if err != nil {
					return err
				}
				if err := m.Put(keyFormat, []byte(cacheFormat)); err != nil {
					return err
				}
			} else if got := string(meta.Get(keyFormat)); got != cacheFormat {
				return fmt.Errorf("format %q, want %q", got, cacheFormat)
			}
			b, err := tx.CreateBucketIfNotExists(bucketVectors)
			if err != nil {
				return err
			}
			err = b.ForEach(func(k, v []byte) error {
				if len(k) != sha256.Size || v == nil {
					return fmt.Errorf("unexpected key %x", k)
				}
				if _, err := decodeVector(v, 0); err != nil {
					bad = append(bad, append([]byte(nil), k...))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range bad {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	if len(bad) > 0 {
		c.bad.Add(int64(len(bad)))
		c.log.Warn("cached vectors failed their checksum; dropped", "path", c.path, "count", len(bad))
	}
	return db, nil
}

// guard runs fn, turning a panic or a memory fault (bbolt reading a corrupt
// or truncated mapping) into an error.
func guard(fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt panic: %v", r)
		}
	}()
	return fn()
}

// quarantine moves the untrusted file aside, replacing an older one.
func (c *Cache) quarantine() error {
	err := os.Rename(c.path, c.path+".corrupt")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		if rmErr := os.Remove(c.path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			return fmt.Errorf("embed cache: cannot move aside or remove %s: %w", c.path, err)
		}
	}
	return nil
}

// rebuild replaces a database that failed while in use (a bbolt panic on a
// corrupt page).
func (c *Cache) rebuild(cause error) {
	c.dbMu.Lock()
	defer c.dbMu.Unlock()
	c.log.Warn("cache file failed while in use; rebuilding", "path", c.path, "err", cause)
	if c.db != nil {
		_ = c.db.Close()
		c.db = nil
	}
	if err := c.quarantine(); err != nil {
		c.log.Warn("cache disabled", "err", err)
		return
	}
	db, err := c.tryOpen(5 * time.Second)
	if err != nil {
		c.log.Warn("cache disabled", "err", err)
		return
	}
	c.db = db
}

// withDB runs fn on the open database under guard.
// With no database (closed, or disabled after a failed rebuild) it fails.
func (c *Cache) withDB(fn func(*bolt.DB) error) error {
	c.dbMu.RLock()
	defer c.dbMu.RUnlock()
	if c.db == nil {
		return errors.New("cache closed or disabled")
	}
	return guard(func() error { return fn(c.db) })
}

// encodeVector is little-endian float32s followed by their CRC-32C.
func encodeVector(v []float32) []byte {
	b := make([]byte, 4*len(v)+4)
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	binary.LittleEndian.PutUint32(b[4*len(v):], crc32.Checksum(b[:4*len(v)], crcTable))
	return b
}

// decodeVector checks the checksum, the dimension (when dim > 0), that
// every value is finite and that the vector has unit norm.
func decodeVector(b []byte, dim int) ([]float32, error) {
	if len(b) < 8 || len(b)%4 != 0 {
		return nil, fmt.Errorf("value of %d bytes", len(b))
	}
	n := len(b)/4 - 1
	if dim > 0 && n != dim {
		return nil, fmt.Errorf("dimension %d, want %d", n, dim)
	}
	if crc32.Checksum(b[:4*n], crcTable) != binary.LittleEndian.Uint32(b[4*n:]) {
		return nil, errors.New("checksum mismatch")
	}
	v := make([]float32, n)
	var s float64
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		s += float64(v[i]) * float64(v[i])
	}
	if math.IsNaN(s) || math.Abs(s-1) > 1e-3 {
		return nil, fmt.Errorf("squared norm %g", s)
	}
	return v, nil
}
