package fence

import (
	"context"
	"errors"
	"time"
)

// Writer is the fence as an application's own write path uses it, one per
// region and writer:
//
//	key := fence.Key(sourceID, revision, indexHash, partition)
//	st, err := w.Claim(ctx, key)
//	switch st {
//	case fence.Acquired:    // write, then w.Done(ctx, key) (or w.Release on failure)
//	case fence.AlreadyDone: // skip: the write was made before
//	case fence.HeldByOther: // another writer is making it: skip, or retry later
//	}
//
// Every claim and completion is counted in the region's current window
// (Fence.Count), so Stats, and the gate through Fence.Window, report the
// dedupe rate of replayed writes.
type Writer struct {
	f Fence
	o WriterOptions
}

// WriterOptions configure a Writer.
type WriterOptions struct {
	// Region names the region whose counters the writer adds to (required).
	Region string
	// Owner identifies the writer in pending claims (default: random).
	Owner string
	// Lease bounds how long a dead writer's claim blocks others (default
	// 2 min); TTL is how long a done record is kept (failover_window +
	// 24 h; default 25 h); Window is the counting window (failover_window;
	// default 1 h).
	Lease, TTL, Window time.Duration
}

// NewWriter returns a writer on f.
func NewWriter(f Fence, o WriterOptions) (*Writer, error) {
	if f == nil {
		return nil, errors.New("fence writer: no fence")
	}
	if o.Region == "" {
		return nil, errors.New("fence writer: region is required")
	}
	if o.Owner == "" {
		o.Owner = randomToken()
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.TTL <= 0 {
		o.TTL = 25 * time.Hour
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	return &Writer{f: f, o: o}, nil
}

// Owner is the writer's identity in pending claims.
func (w *Writer) Owner() string { return w.o.Owner }

// Claim claims key for this writer (see the type's comment). A done key
// counts as a dedupe hit, an acquired one as a miss.
func (w *Writer) Claim(ctx context.Context, key string) (ClaimState, error) {
	return w.ClaimAs(ctx, key, w.o.Owner, w.o.Lease)
}

// ClaimAs is Claim for another owner and lease (the HTTP handler serves
// many writers through one Writer).
func (w *Writer) ClaimAs(ctx context.Context, key, owner string, lease time.Duration) (ClaimState, error) {
	if lease <= 0 {
		lease = w.o.Lease
	}
	st, err := w.f.Claim(ctx, key, owner, lease)
	if err != nil {
		return st, err
	}
	switch st {
	case AlreadyDone:
		err = w.f.Count(ctx, w.o.Region, w.o.Window, Counts{Hits: 1})
	case Acquired:
		err = w.f.Count(ctx, w.o.Region, w.o.Window, Counts{Misses: 1})
	}
	return st, err
}

// Done marks key written. duplicate is true when it already was: the
// write was applied twice, and counts against the dedupe rate.
func (w *Writer) Done(ctx context.Context, key string) (duplicate bool, err error) {
	dup, err := w.f.Complete(ctx, key, w.o.TTL)
	if err != nil {
		return false, err
	}
	if dup {
		err = w.f.Count(ctx, w.o.Region, w.o.Window, Counts{Duplicates: 1})
	}
	return dup, err
}

// Release gives up the writer's pending claim on key (the write failed).
func (w *Writer) Release(ctx context.Context, key string) error {
	return w.ReleaseAs(ctx, key, w.o.Owner)
}

// ReleaseAs is Release for another owner.
func (w *Writer) ReleaseAs(ctx context.Context, key, owner string) error {
	return w.f.Release(ctx, key, owner)
}

// Stats reads the region's counters over the current window.
func (w *Writer) Stats(ctx context.Context) (WindowStat, error) {
	return w.f.Window(ctx, w.o.Region, w.o.Window)
}
