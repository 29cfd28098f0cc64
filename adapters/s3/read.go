package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
)

// Open streams an object. minio-go retries a failed request (5xx, network
// errors, a response header later than the timeout) with jittered backoff;
// the reader Open returns also survives a body that stalls for longer than
// the timeout or breaks off: it resumes with a ranged GET pinned to the
// object's ETag (If-Match), so a changed object is an error, never a
// splice of two versions.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	r := &reader{s: s, ctx: ctx, key: key, size: -1}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

type reader struct {
	s       *Store
	ctx     context.Context
	key     string
	etag    string
	size    int64
	off     int64
	cur     *attempt // nil between a failed attempt and the retry
	retries int
	lastErr error
}

// attempt is one GET: its body, its context and the watchdog that cancels
// it when no byte arrives for the timeout.
type attempt struct {
	body     io.ReadCloser
	cancel   context.CancelFunc
	watchdog *time.Timer
	stalled  atomic.Bool
}

func (r *reader) open() error {
	actx, cancel := context.WithCancel(r.ctx)
	opts := minio.GetObjectOptions{}
	if r.off > 0 {
		if err := opts.SetRange(r.off, 0); err != nil {
			cancel()
			return err
		}
		if r.etag != "" {
			if err := opts.SetMatchETag(r.etag); err != nil {
				cancel()
				return err
			}
		}
	}
	body, oi, _, err := r.s.core.GetObject(actx, r.s.bucket, r.s.prefix+r.key, opts)
	if err != nil {
		cancel()
		if minio.ToErrorResponse(err).StatusCode == http.StatusPreconditionFailed {
			return fmt.Errorf("s3: read bucket %s key %q: the object changed while it was read (ETag no longer %s)", r.s.bucket, r.key, r.etag)
		}
		return r.s.mapErr("get", r.key, err)
	}
	if r.off == 0 {
		r.etag, r.size = trimETag(oi.ETag), oi.Size
	} else if oi.Size != r.size-r.off {
		body.Close()
		cancel()
		return fmt.Errorf("s3: read bucket %s key %q: resuming at byte %d, the server sent %d bytes, want %d (range ignored?)", r.s.bucket, r.key, r.off, oi.Size, r.size-r.off)
	}
	a := &attempt{body: body, cancel: cancel}
	a.watchdog = time.AfterFunc(r.s.timeout, func() {
		a.stalled.Store(true)
		cancel()
	})
	a.watchdog.Stop()
	r.cur = a
	return nil
}

func trimETag(e string) string {
	if len(e) >= 2 && e[0] == '"' && e[len(e)-1] == '"' {
		return e[1 : len(e)-1]
	}
	return e
}

func (r *reader) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			if err := r.retry(); err != nil {
				return 0, err
			}
		}
		a := r.cur
		a.watchdog.Reset(r.s.timeout)
		n, err := a.body.Read(p)
		a.watchdog.Stop()
		r.off += int64(n)
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF) && (r.size < 0 || r.off == r.size):
			return n, io.EOF
		case r.ctx.Err() != nil:
			return n, fmt.Errorf("s3: read bucket %s key %q: %w", r.s.bucket, r.key, r.ctx.Err())
		}
		// Transient: a stall, a broken connection, a short body.
		switch {
		case a.stalled.Load():
			r.lastErr = fmt.Errorf("no data for %v", r.s.timeout)
		case errors.Is(err, io.EOF):
			r.lastErr = fmt.Errorf("body ended at byte %d of %d", r.off, r.size)
		default:
			r.lastErr = err
		}
		r.drop()
		if n > 0 {
			return n, nil
		}
	}
}

// retry waits a jittered, growing delay and reopens at the current offset.
func (r *reader) retry() error {
	if r.retries+1 >= r.s.retries {
		return fmt.Errorf("s3: read bucket %s key %q: gave up after %d attempts: %v", r.s.bucket, r.key, r.retries+1, r.lastErr)
	}
	r.retries++
	d := backoff(r.retries)
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-r.ctx.Done():
		t.Stop()
		return fmt.Errorf("s3: read bucket %s key %q: %w", r.s.bucket, r.key, r.ctx.Err())
	}
	return r.open()
}

// backoff is full jitter over 200ms * 2^(attempt-1), capped at 5s.
func backoff(attempt int) time.Duration {
	d := 200 * time.Millisecond << min(attempt-1, 5)
	d = min(d, 5*time.Second)
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond
}

func (r *reader) drop() {
	if a := r.cur; a != nil {
		a.watchdog.Stop()
		a.body.Close()
		a.cancel()
		r.cur = nil
	}
}

func (r *reader) Close() error {
	r.drop()
	return nil
}
