package embedded

import (
	"context"
	"fmt"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

var _ adapters.Searcher = (*Store)(nil)

// Search is chromem-go's exact cosine search (QueryEmbedding) over the
// physical collection the sidecar names, as Scan reads it. chromem-go's
// search is exhaustive, so every search is exact: SearchParams (Exact
// included) change nothing. It keeps its top n in a
// heap filled concurrently, so which of several equal scores survives at
// the cut is arbitrary; Search asks for one more than k and, when that one
// ties with the k-th, for more, then orders ties by id.
func (s *Store) Search(ctx context.Context, vector []float32, k int, _ adapters.SearchParams) ([]adapters.Hit, error) {
	if k < 1 {
		return nil, fmt.Errorf("embedded: search %s: k must be at least 1 (got %d)", s.collection, k)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: search %s: %w", s.collection, err)
	}
	c, dim, err := s.resolve()
	if err != nil {
		return nil, err
	}
	if len(vector) != dim {
		return nil, fmt.Errorf("embedded: search %s: query vector has %d dimensions, collection %d", s.collection, len(vector), dim)
	}
	n := c.Count()
	if n == 0 {
		return nil, nil
	}
	for limit := min(k+1, n); ; limit = min(2*limit, n) {
		res, err := c.QueryEmbedding(ctx, vector, limit, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("embedded: search %s: %w", s.collection, err)
		}
		hits := make([]adapters.Hit, len(res))
		for i := range res {
			r := &res[i]
			h := adapters.Hit{ID: parity.ID{Kind: kindOf(r.Metadata[keyKind]), S: r.ID}, Score: float64(r.Similarity)}
			if pl, ok := r.Metadata[keyPayload]; ok {
				h.Payload = []byte(pl)
			}
			if s.text {
				h.Text, h.HasText = r.Content, true
			}
			hits[i] = h
		}
		adapters.SortHits(hits)
		if len(hits) <= k {
			return hits, nil
		}
		if limit >= n || len(hits) < limit || hits[k].Score != hits[k-1].Score {
			return hits[:k], nil
		}
	}
}
