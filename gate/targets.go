package gate

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/replicate"
)

// OpenFence opens a region's dedupe_kv as rebuilds do: the embedded bbolt
// file under the cache when it names none.
func OpenFence(cfg *config.Config, r *config.Region) (fence.Fence, error) {
	f, err := fence.Open(r.DedupeKV, filepath.Join(cfg.CacheRoot(), "fence", r.Name+".db"))
	if err != nil {
		return nil, fmt.Errorf("region %s: %w", r.Name, err)
	}
	return f, nil
}

// Targets opens the store and the fence of every selected region with a
// vectors URL (all of them when names is empty; a named region without
// one is an error), with the declared settings and analyzer a rebuild
// hashes and chunks with. close releases them.
func Targets(ctx context.Context, cfg *config.Config, names []string) (ts []replicate.Target, close func(), err error) {
	var closers []func() error
	close = func() {
		for _, c := range closers {
			c()
		}
	}
	sel, err := SelectRegions(cfg, names)
	if err != nil {
		return nil, close, err
	}
	for _, r := range sel {
		if r.Vectors == "" {
			if len(names) > 0 {
				return nil, close, fmt.Errorf("region %s has no vectors URL in %s", r.Name, cfg.File)
			}
			continue
		}
		declared, err := DeclaredSettings(cfg, r)
		if err != nil {
			return nil, close, err
		}
		store, err := adapters.OpenVector(ctx, r.Vectors)
		if err != nil {
			return nil, close, fmt.Errorf("region %s: %w", r.Name, err)
		}
		closers = append(closers, store.Close)
		f, err := OpenFence(cfg, r)
		if err != nil {
			return nil, close, err
		}
		closers = append(closers, f.Close)
		a, _ := AnalyzerFor(cfg, r)
		ts = append(ts, replicate.Target{Region: r.Name, Store: store, Fence: f, Declared: declared, Analyzer: a})
	}
	if len(ts) == 0 {
		return nil, close, fmt.Errorf("%s: no region has a vectors URL", cfg.File)
	}
	return ts, close, nil
}

// CollectionSpec is the collection a rebuild creates: the embedder's
// dimension and the config's index (cosine HNSW by default), keyed by UUID.
func CollectionSpec(cfg *config.Config, dim int) adapters.CollectionSpec {
	metric := cfg.Index.Metric
	if metric == "" {
		metric = "cosine"
	}
	return adapters.CollectionSpec{Vectors: map[string]int{"": dim}, Metric: metric, HNSWM: cfg.Index.M,
		HNSWEfConstruction: cfg.Index.EfConstruction, IDKind: parity.IDUUID}
}
