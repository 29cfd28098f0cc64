package s3

import (
	"context"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
	"github.com/ragparity/ragparity/parity"
)

// List lists the prefix: first its top level with the "/" delimiter, then
// each top-level common prefix recursively, up to SetListWorkers of them at
// once (S3 listing is sequential within one prefix, so the fan-out is what
// makes it parallel). Past fanoutMax common prefixes one flat listing is
// used instead. An object whose key equals the prefix (a folder marker) is
// not listed.
func (s *Store) List(ctx context.Context, fn func(parity.ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var prefixes []string
	for oi := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix}) {
		if oi.Err != nil {
			return s.mapErr("list", "", oi.Err)
		}
		if strings.HasSuffix(oi.Key, "/") && oi.Key != s.prefix && oi.ETag == "" && oi.LastModified.IsZero() {
			prefixes = append(prefixes, oi.Key)
			continue
		}
		if oi.Key == s.prefix {
			continue
		}
		if err := fn(info(strings.TrimPrefix(oi.Key, s.prefix), oi, false)); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return s.mapErr("list", "", err)
	}
	switch {
	case len(prefixes) == 0:
		return nil
	case len(prefixes) > fanoutMax || s.workers <= 1:
		// One flat listing; the top level was already reported.
		for oi := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
			if oi.Err != nil {
				return s.mapErr("list", "", oi.Err)
			}
			rel := strings.TrimPrefix(oi.Key, s.prefix)
			if !strings.Contains(rel, "/") {
				continue
			}
			if err := fn(info(rel, oi, false)); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return s.mapErr("list", "", err)
		}
		return nil
	}
	return s.listParallel(ctx, cancel, prefixes, fn)
}

func (s *Store) listParallel(ctx context.Context, cancel context.CancelFunc, prefixes []string, fn func(parity.ObjectInfo) error) error {
	todo := make(chan string, len(prefixes))
	for _, p := range prefixes {
		todo <- p
	}
	close(todo)
	out := make(chan []minio.ObjectInfo, s.workers)
	errc := make(chan error, s.workers)
	var wg sync.WaitGroup
	for range min(s.workers, len(prefixes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range todo {
				batch := make([]minio.ObjectInfo, 0, 256)
				for oi := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: p, Recursive: true}) {
					if oi.Err != nil {
						errc <- oi.Err
						cancel()
						return
					}
					batch = append(batch, oi)
					if len(batch) == cap(batch) {
						select {
						case out <- batch:
						case <-ctx.Done():
							return
						}
						batch = make([]minio.ObjectInfo, 0, 256)
					}
				}
				if len(batch) > 0 {
					select {
					case out <- batch:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	var fnErr error
	for batch := range out {
		if fnErr != nil {
			continue
		}
		for _, oi := range batch {
			if err := fn(info(strings.TrimPrefix(oi.Key, s.prefix), oi, false)); err != nil {
				fnErr = err
				cancel()
				break
			}
		}
	}
	if fnErr != nil {
		return fnErr
	}
	select {
	case err := <-errc:
		return s.mapErr("list", "", err)
	default:
	}
	if err := ctx.Err(); err != nil {
		return s.mapErr("list", "", err)
	}
	return nil
}
