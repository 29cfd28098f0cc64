package probe

import (
	"fmt"

	"github.com/ragparity/ragparity/adapters"
)

// metricSearcher is implemented by stores that can rank by a declared
// metric when they cannot read it themselves (pgvector without an index).
type metricSearcher interface {
	WithMetric(metric string) adapters.Searcher
}

// RegionFromStore makes a Region of an opened store: its Searcher (with
// the declared vector.metric when the store takes one) and the model tag
// its declared settings name (model_tag).
func RegionFromStore(name string, store any, declared map[string]any) (Region, error) {
	s, ok := store.(adapters.Searcher)
	if !ok {
		return Region{}, fmt.Errorf("probe: region %s: its store (%T) cannot search", name, store)
	}
	if m, ok := declared["vector.metric"].(string); ok && m != "" {
		if ms, ok := store.(metricSearcher); ok {
			s = ms.WithMetric(m)
		}
	}
	tag := ""
	if v, ok := declared["model_tag"]; ok && v != nil {
		tag = fmt.Sprint(v)
	}
	return Region{Name: name, Searcher: s, ModelTag: tag}, nil
}
