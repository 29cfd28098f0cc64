package gate

import (
	"fmt"
	"path/filepath"
	"sync"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/embed"
	"github.com/ragparity/ragparity/replicate"
)

// embedders memoises opened embedders by spec (opening glove loads a model).
var (
	embMu     sync.Mutex
	embedders = map[string]embed.Embedder{}
)

// OpenEmbedder opens the embedder of a spec once per process and shares it.
func OpenEmbedder(spec string) (embed.Embedder, error) {
	embMu.Lock()
	defer embMu.Unlock()
	if e, ok := embedders[spec]; ok {
		return e, nil
	}
	e, err := embed.Open(spec)
	if err != nil {
		return nil, fmt.Errorf("embedder: %w", err)
	}
	embedders[spec] = e
	return e, nil
}

// EmbeddingCache wraps e in the host's embedding cache under the config's
// cache root (one file shared by probes, baselines and rebuilds); the
// caller closes it.
func EmbeddingCache(cfg *config.Config, e embed.Embedder) (*embed.Cache, error) {
	return embed.Cached(e, filepath.Join(cfg.CacheRoot(), "embeddings"))
}

// AnalyzerFor returns the region's analyzer, the default when the config
// names an embedder but no analyzer, and ok=false when neither is set.
func AnalyzerFor(cfg *config.Config, r *config.Region) (replicate.Analyzer, bool) {
	if a := cfg.AnalyzerFor(r); a != nil {
		return replicate.Analyzer{ChunkSize: a.ChunkSize, Overlap: a.Overlap, Normalize: a.Normalize, Lowercase: a.Lowercase}, true
	}
	if cfg.Embedder != "" {
		return replicate.DefaultAnalyzer, true
	}
	return replicate.Analyzer{}, false
}

// DeclaredSettings are the settings hashed for a region besides what its
// store reports: the config's settings, plus model_tag from the embedder
// and analyzer from the analyzer, so that hash, verify and rebuild agree
// and two regions chunked or embedded differently never hash equal.
func DeclaredSettings(cfg *config.Config, r *config.Region) (map[string]any, error) {
	d := cfg.DeclaredSettings(r)
	if cfg.Embedder != "" {
		e, err := OpenEmbedder(cfg.Embedder)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.File, err)
		}
		if v, ok := d["model_tag"]; ok && fmt.Sprint(v) != e.ModelTag() {
			return nil, fmt.Errorf("%s: region %s: settings.model_tag %q contradicts the embedder's model tag %q (comparing regions embedded with different models is meaningless)", cfg.File, r.Name, v, e.ModelTag())
		}
		d["model_tag"] = e.ModelTag()
	}
	if a, ok := AnalyzerFor(cfg, r); ok {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("%s: region %s: analyzer: %w", cfg.File, r.Name, err)
		}
		if v, ok := d["analyzer"]; ok && fmt.Sprint(v) != a.Version() {
			return nil, fmt.Errorf("%s: region %s: settings.analyzer %q contradicts the analyzer %q", cfg.File, r.Name, v, a.Version())
		}
		d["analyzer"] = a.Version()
	}
	return d, nil
}
