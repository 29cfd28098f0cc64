package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/ragparity/ragparity/gate"
)

// ---------------------------------------------------------------- verification loop

// Trigger queues a verification (joining one already queued but not yet
// started) and returns it; its done channel closes when it has run.
func (s *Server) trigger(reason string) *verifyRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = &verifyRun{reason: reason, done: make(chan struct{})}
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return s.pending
}

// VerifyNow queues a verification and waits for it.
func (s *Server) VerifyNow(ctx context.Context, reason string) (*gate.Verdict, error) {
	r := s.trigger(reason)
	select {
	case <-r.done:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// nextDue returns when the next scheduled verification is due (ok=false:
// none is).
func (s *Server) nextDue() (time.Time, bool) {
	v := s.state.Load().v
	s.mu.Lock()
	defer s.mu.Unlock()
	var due time.Time
	switch {
	case s.o.Schedule > 0 && v != nil:
		due = v.CreatedAt.Add(s.o.Schedule)
	case s.o.Schedule > 0:
		due = s.now()
	case !s.startDone:
		due = s.now()
	default:
		return time.Time{}, false
	}
	if due.Before(s.retryAt) {
		due = s.retryAt
	}
	return due, true
}

// Run verifies (at start unless a fresh verdict is stored, on schedule,
// on request) and polls the store, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if s.o.Store != nil {
		s.poll(ctx)
		// Without a schedule, a fresh verdict in the store (another
		// replica's) stands in for the start-up verification.
		if v := s.state.Load().v; s.o.Schedule == 0 && v != nil && !v.Expired(s.now()) {
			s.mu.Lock()
			s.startDone = true
			s.mu.Unlock()
		}
		go func() {
			t := time.NewTicker(s.o.PollInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					s.poll(ctx)
				}
			}
		}()
	}
	// Replicas that start together, or share a store, should not all
	// verify at the same instant.
	jitter := time.Duration(0)
	if s.o.Schedule > 0 {
		jitter = time.Duration(mrand.Int64N(int64(min(s.o.Schedule/20, 15*time.Second)) + 1))
	}
	for {
		var timer *time.Timer
		var fire <-chan time.Time
		if due, ok := s.nextDue(); ok {
			timer = time.NewTimer(max(due.Add(jitter).Sub(s.now()), 0))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			s.mu.Lock()
			if r := s.pending; r != nil {
				r.err = ctx.Err()
				close(r.done)
				s.pending = nil
			}
			s.mu.Unlock()
			return nil
		case <-s.wake:
		case <-fire:
			// A newer verdict may have come from the store meanwhile.
			if due, ok := s.nextDue(); !ok || s.now().Before(due) {
				continue
			}
			s.trigger("schedule")
		}
		if timer != nil {
			timer.Stop()
		}
		s.mu.Lock()
		r := s.pending
		s.pending = nil
		s.startDone = true
		s.mu.Unlock()
		if r != nil {
			s.execute(ctx, r)
		}
	}
}

func (s *Server) execute(ctx context.Context, r *verifyRun) {
	defer close(r.done)
	s.log.Info("verifying", "reason", r.reason)
	t0 := time.Now()
	v, det, err := s.o.Verify(ctx)
	if err == nil && v == nil {
		err = errors.New("verification returned no verdict")
	}
	if err == nil {
		err = s.prepare(v)
	}
	s.m.observeVerify(s.o.Release, v, err, time.Since(t0))
	if err != nil {
		s.mu.Lock()
		s.retryAt = s.now().Add(s.o.RetryDelay)
		s.mu.Unlock()
		s.log.Error("verification failed", "reason", r.reason, "err", err)
		r.err = err
		return
	}
	if s.o.Store != nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		if err := s.o.Store.Put(pctx, v); err != nil {
			s.m.storeErrors.WithLabelValues("put").Inc()
			s.log.Error("storing verdict", "id", v.ID, "err", err)
		} else if ds, ok := s.o.Store.(DetailStore); ok && det != nil {
			if err := ds.PutDetail(pctx, v.ID, det); err != nil {
				s.m.storeErrors.WithLabelValues("put").Inc()
				s.log.Error("storing verdict detail", "id", v.ID, "err", err)
			}
		}
		cancel()
	}
	s.Install(v, "local")
	r.v = v
	if s.o.Published != nil {
		s.o.Published(v, det)
	}
}

// prepare makes sure a verdict is signed exactly once: one that Verify
// signed (gate.Run does) is checked against our key; an unsigned one (a
// VerifyFunc of the library's user) gets an id and our signature.
func (s *Server) prepare(v *gate.Verdict) error {
	if v.Signature != "" {
		if s.o.Signer != nil {
			if err := v.Verify(s.o.Signer.Public()); err != nil {
				return fmt.Errorf("verdict %s: %w (signed by key %s, this server signs with %s)", v.ID, err, v.KeyID, s.o.Signer.KeyID())
			}
		}
		return nil
	}
	if v.ID == "" {
		b := make([]byte, 6)
		rand.Read(b)
		v.ID = "v" + v.CreatedAt.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b)
	}
	if s.o.Signer != nil {
		return s.o.Signer.Sign(v)
	}
	return nil
}

// poll serves the store's newest verdict if it is newer than ours.
func (s *Server) poll(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, max(s.o.PollInterval, 2*time.Second))
	defer cancel()
	v, err := s.o.Store.Latest(c, s.o.Release)
	if errors.Is(err, ErrNotFound) || ctx.Err() != nil {
		return
	}
	if err != nil {
		s.m.storeErrors.WithLabelValues("latest").Inc()
		s.log.Warn("reading the verdict store", "err", err)
		return
	}
	if cur := s.state.Load().v; cur != nil && !newer(v, cur) {
		return
	}
	if s.o.Inputs != "" && v.InputsDigest != s.o.Inputs {
		s.mu.Lock()
		first := s.otherInputs != v.ID
		s.otherInputs = v.ID
		s.mu.Unlock()
		if first {
			s.log.Warn("ignoring stored verdict: computed over other inputs (config, baseline or gold set changed)", "id", v.ID,
				"inputs", v.InputsDigest, "want", s.o.Inputs)
		}
		return
	}
	if s.o.TrustedKey != nil {
		if err := v.Verify(s.o.TrustedKey); err != nil {
			s.mu.Lock()
			first := s.rejected != v.ID
			s.rejected = v.ID
			s.mu.Unlock()
			if first {
				s.m.badSignature.Inc()
				s.log.Error("ignoring stored verdict", "id", v.ID, "err", err)
			}
			return
		}
	}
	s.Install(v, "store")
}
