package blob

import (
	"context"
	"sync"

	"github.com/ragparity/ragparity/parity"
)

type blobJob struct {
	idx  int
	key  string
	size int64
	ck   CacheKey
}

type blobResult struct {
	idx  int
	sha  parity.Digest
	info parity.ObjectInfo
}

// runBlobPool runs do on every job feed sends, on at most workers
// goroutines. The first error (from feed or do) stops everything.
func runBlobPool(ctx context.Context, workers int, feed func(send func(blobJob) error) error, do func(context.Context, blobJob) (blobResult, error)) ([]blobResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if do == nil {
		if err := feed(func(blobJob) error { return nil }); err != nil {
			return nil, err
		}
		return nil, nil
	}
	jobs := make(chan blobJob, workers*4)
	var (
		mu      sync.Mutex
		results []blobResult
		wg      sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				res, err := do(ctx, j)
				if err != nil {
					cancel(err)
					continue
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
			}
		}()
	}
	send := func(j blobJob) error {
		select {
		case jobs <- j:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	ferr := feed(send)
	close(jobs)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		return nil, cause
	}
	if ferr != nil {
		return nil, ferr
	}
	return results, nil
}
