package qdrant

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/qdrant/go-client/qdrant"

	"github.com/ragparity/ragparity/adapters"
)

var _ adapters.Searcher = (*Store)(nil)

// Search runs a nearest query (the Query API) on the collection's unnamed
// vector, or on its only named vector, with hnsw_ef pinned when p.EfSearch
// is set (p.Probes does not apply to Qdrant), or exact=true with p.Exact. Payloads come back with the
// hit; the text key is taken out of them into Hit.Text. Qdrant reports
// Euclid and Manhattan results as distances: their scores are negated so
// that higher is better, as for Cosine and Dot.
func (s *Store) Search(ctx context.Context, vector []float32, k int, p adapters.SearchParams) ([]adapters.Hit, error) {
	if k < 1 {
		return nil, fmt.Errorf("qdrant: search collection %q: k must be at least 1 (got %d)", s.coll, k)
	}
	if len(vector) == 0 {
		return nil, fmt.Errorf("qdrant: search collection %q: empty query vector", s.coll)
	}
	if p.EfSearch < 0 {
		return nil, fmt.Errorf("qdrant: search collection %q: ef_search must not be negative", s.coll)
	}
	info, err := s.client.GetCollectionsClient().Get(ctx, &qdrant.GetCollectionInfoRequest{CollectionName: s.coll})
	if err != nil {
		return nil, s.fail(ctx, "search", err)
	}
	using, dist, err := searchVector(info.GetResult().GetConfig().GetParams().GetVectorsConfig())
	if err != nil {
		return nil, fmt.Errorf("qdrant: search collection %q: %w", s.coll, err)
	}
	negate := dist == qdrant.Distance_Euclid || dist == qdrant.Distance_Manhattan
	// One more than k: when it ties with the k-th, ask for more, so that
	// ties at the cut are broken by id.
	for limit := k + 1; ; limit *= 2 {
		resp, err := s.client.GetPointsClient().Query(ctx, queryRequest(s.coll, using, vector, limit, p))
		if err != nil {
			return nil, s.fail(ctx, "search", err)
		}
		hits := make([]adapters.Hit, 0, len(resp.GetResult()))
		for _, sp := range resp.GetResult() {
			h, err := s.toHit(sp, negate)
			if err != nil {
				return nil, err
			}
			hits = append(hits, h)
		}
		adapters.SortHits(hits)
		if len(hits) <= k {
			return hits, nil
		}
		if len(hits) < limit || hits[k].Score != hits[k-1].Score {
			return hits[:k], nil
		}
	}
}

// queryRequest builds the Query call of a search.
func queryRequest(coll, using string, vector []float32, limit int, p adapters.SearchParams) *qdrant.QueryPoints {
	lim := uint64(limit)
	req := &qdrant.QueryPoints{
		CollectionName: coll,
		Query:          qdrant.NewQueryDense(vector),
		Limit:          &lim,
		WithPayload:    qdrant.NewWithPayload(true),
	}
	if using != "" {
		req.Using = &using
	}
	switch {
	case p.Exact:
		exact := true
		req.Params = &qdrant.SearchParams{Exact: &exact}
	case p.EfSearch > 0:
		ef := uint64(p.EfSearch)
		req.Params = &qdrant.SearchParams{HnswEf: &ef}
	}
	return req
}

// searchVector picks the vector a search uses: the unnamed one, or the
// only named one.
func searchVector(vc *qdrant.VectorsConfig) (string, qdrant.Distance, error) {
	if p := vc.GetParams(); p != nil {
		return "", p.GetDistance(), nil
	}
	m := vc.GetParamsMap().GetMap()
	switch len(m) {
	case 0:
		return "", 0, fmt.Errorf("the collection has no dense vector to search")
	case 1:
		for name, p := range m {
			return name, p.GetDistance(), nil
		}
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return "", 0, fmt.Errorf("the collection has several named vectors (%s) and the search cannot tell which one the probe's embedder fills", strings.Join(names, ", "))
}

func (s *Store) toHit(sp *qdrant.ScoredPoint, negate bool) (adapters.Hit, error) {
	id, err := idFromProto(sp.GetId())
	if err != nil {
		return adapters.Hit{}, fmt.Errorf("qdrant: search collection %q: %w", s.coll, err)
	}
	h := adapters.Hit{ID: id, Score: float64(sp.GetScore())}
	if negate {
		h.Score = -h.Score
	}
	skip := ""
	if s.textKey != "" {
		if v, ok := sp.GetPayload()[s.textKey]; ok {
			if sv, ok := v.GetKind().(*qdrant.Value_StringValue); ok {
				h.Text, h.HasText = sv.StringValue, true
				skip = s.textKey
			}
		}
	}
	js, err := payloadJSON(nil, sp.GetPayload(), skip)
	if err != nil {
		return adapters.Hit{}, fmt.Errorf("qdrant: search collection %q: point %s: %w", s.coll, id.S, err)
	}
	h.Payload = js
	return h, nil
}
