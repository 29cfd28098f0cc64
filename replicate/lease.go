package replicate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ragparity/ragparity/fence"
)

// ErrLeaseLost is the cause of a rebuild's cancellation when a region's
// lease could not be renewed (the fence was unreachable for longer than
// the lease, or another run took the region over).
var ErrLeaseLost = errors.New("the region lease was lost")

// leaseRegions takes every target region's rebuild lease (in its fence
// store) for the run and renews it until the returned release is called;
// ctx is cancelled if a lease is lost. A region leased by another run is a
// *LeaseError, or with o.Wait, waited for.
func leaseRegions(ctx context.Context, targets []Target, o Options) (context.Context, func(), error) {
	h := fence.Holder{Owner: o.Owner, RunID: o.RunID, Host: o.Host, Since: time.Now().UTC()}
	release := func(held []Target) {
		for _, t := range held {
			// Best effort: an unreleased lease expires.
			t.Fence.Unlease(context.WithoutCancel(ctx), leaseName(t.Region), o.Owner)
		}
	}
	for {
		var held []Target
		var busy *LeaseError
		for _, t := range targets {
			cur, ok, err := t.Fence.Acquire(ctx, leaseName(t.Region), h, o.Lease)
			if err != nil {
				release(held)
				return ctx, nil, fmt.Errorf("region %s: %w", t.Region, err)
			}
			if !ok {
				busy = &LeaseError{Region: t.Region, Holder: cur}
				break
			}
			held = append(held, t)
		}
		if busy == nil {
			break
		}
		release(held)
		if !o.Wait {
			return ctx, nil, busy
		}
		select {
		case <-ctx.Done():
			return ctx, nil, fmt.Errorf("waiting: %w: %w", busy, context.Cause(ctx))
		case <-time.After(min(max(o.Lease/4, 100*time.Millisecond), 2*time.Second)):
		}
	}
	cctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(max(o.Lease/3, 10*time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-cctx.Done():
				return
			case <-tick.C:
			}
			for _, t := range targets {
				cur, ok, err := t.Fence.Acquire(cctx, leaseName(t.Region), h, o.Lease)
				if err == nil && !ok {
					cancel(fmt.Errorf("%w: %w", ErrLeaseLost, &LeaseError{Region: t.Region, Holder: cur}))
					return
				}
			}
		}
	}()
	return cctx, func() {
		close(stop)
		<-done
		cancel(nil)
		release(targets)
	}, nil
}

// Busy returns a *LeaseError when a run other than owner holds the
// rebuild lease of one of the target regions.
func Busy(ctx context.Context, targets []Target, owner string) error {
	for _, t := range targets {
		h, ok, err := t.Fence.Leased(ctx, leaseName(t.Region))
		if err != nil {
			return fmt.Errorf("region %s: %w", t.Region, err)
		}
		if ok && h.Owner != owner {
			return &LeaseError{Region: t.Region, Holder: h}
		}
	}
	return nil
}
