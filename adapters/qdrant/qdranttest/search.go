package qdranttest

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Scoring follows Qdrant's conventions. Internally a larger score is always
// better: Cosine (on normalised vectors) and Dot score the dot product,
// Euclid scores -sum((a-b)²) and Manhattan -sum(|a-b|). What the client
// sees for Euclid is the distance sqrt(sum((a-b)²)), for Manhattan
// sum(|a-b|); results are ordered best first (ascending distance). Ties are
// broken by id, ascending. The search is exact (brute force); hnsw_ef and
// exact in SearchParams are accepted and have no effect.

func internalScore(d qdrant.Distance, q, v []float32) float32 {
	var s float32
	switch d {
	case qdrant.Distance_Euclid:
		for i := range q {
			x := q[i] - v[i]
			s -= float32(x * x)
		}
	case qdrant.Distance_Manhattan:
		for i := range q {
			s -= float32(math.Abs(float64(q[i] - v[i])))
		}
	default: // Cosine, Dot
		for i := range q {
			s += float32(q[i] * v[i])
		}
	}
	return s
}

// clientScore converts an internal score to the one Qdrant returns.
func clientScore(d qdrant.Distance, s float32) float32 {
	switch d {
	case qdrant.Distance_Euclid:
		return float32(math.Sqrt(math.Abs(float64(s))))
	case qdrant.Distance_Manhattan:
		return float32(math.Abs(float64(s)))
	default:
		return s
	}
}

// passes applies a score threshold the way Qdrant does: a minimum score for
// similarities, a maximum distance for Euclid and Manhattan.
func passes(d qdrant.Distance, score float32, threshold *float32) bool {
	if threshold == nil {
		return true
	}
	switch d {
	case qdrant.Distance_Euclid, qdrant.Distance_Manhattan:
		return score <= *threshold
	default:
		return score >= *threshold
	}
}

type scored struct {
	p        *point
	internal float32
	score    float32
}

type nearestReq struct {
	vector    []float32
	using     string
	filter    *qdrant.Filter
	limit     int
	offset    int
	threshold *float32
	exclude   *pid
}

// nearest runs an exact nearest-neighbour search. Callers hold s.mu.
func (c *collection) nearest(r nearestReq) ([]scored, error) {
	params, ok := c.vectors[r.using]
	if !ok {
		return nil, errBadInput("Not existing vector name error: %s", r.using)
	}
	if uint64(len(r.vector)) != params.Size {
		return nil, errBadInput("Vector dimension error: expected dim: %d, got %d", params.Size, len(r.vector))
	}
	match, err := compileFilter(r.filter)
	if err != nil {
		return nil, err
	}
	q := r.vector
	if params.Distance == qdrant.Distance_Cosine {
		q = cosinePreprocess(q)
	}
	var all []scored
	for _, id := range c.sorted() {
		if r.exclude != nil && id == *r.exclude {
			continue
		}
		p := c.points[id]
		v, ok := p.vectors[r.using]
		if !ok || !match(p) {
			continue
		}
		is := internalScore(params.Distance, q, v)
		cs := clientScore(params.Distance, is)
		if !passes(params.Distance, cs, r.threshold) {
			continue
		}
		all = append(all, scored{p: p, internal: is, score: cs})
	}
	// c.sorted() is in id order, so a stable sort keeps ties by id.
	sort.SliceStable(all, func(i, j int) bool { return all[i].internal > all[j].internal })
	if r.offset >= len(all) {
		return nil, nil
	}
	all = all[r.offset:]
	if len(all) > r.limit {
		all = all[:r.limit]
	}
	return all, nil
}

func (s *Server) scoredPoints(c *collection, res []scored, pay payloadSel, vec vectorSel) []*qdrant.ScoredPoint {
	out := make([]*qdrant.ScoredPoint, 0, len(res))
	for _, r := range res {
		out = append(out, &qdrant.ScoredPoint{
			Id:      r.p.id.proto(),
			Payload: pay.apply(r.p.payload),
			Score:   r.score,
			Version: r.p.version,
			Vectors: s.vectorsOut(c, r.p, vec),
		})
	}
	return out
}

func (pss *pointsService) Search(ctx context.Context, req *qdrant.SearchPoints) (*qdrant.SearchResponse, error) {
	start := time.Now()
	if req.SparseIndices != nil {
		return nil, errUnimplemented("sparse vectors")
	}
	if req.GetLimit() == 0 {
		return nil, errValidation("limit: value 0 invalid, must be 1 or larger")
	}
	pay, vec, err := newSelectors(req.GetWithPayload(), req.GetWithVectors(), false)
	if err != nil {
		return nil, err
	}
	s := pss.s
	c, err := s.lockCollection(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	res, err := c.nearest(nearestReq{
		vector:    req.GetVector(),
		using:     req.GetVectorName(),
		filter:    req.GetFilter(),
		limit:     int(req.GetLimit()),
		offset:    int(req.GetOffset()),
		threshold: req.ScoreThreshold,
	})
	if err != nil {
		return nil, err
	}
	return &qdrant.SearchResponse{Result: s.scoredPoints(c, res, pay, vec), Time: since(start)}, nil
}

// Query supports the nearest query with a dense vector or a point id (the
// point itself is left out of the results, as Qdrant does).
func (pss *pointsService) Query(ctx context.Context, req *qdrant.QueryPoints) (*qdrant.QueryResponse, error) {
	start := time.Now()
	if len(req.GetPrefetch()) > 0 {
		return nil, errUnimplemented("prefetch")
	}
	if req.LookupFrom != nil {
		return nil, errUnimplemented("lookup_from")
	}
	nearest, ok := req.GetQuery().GetVariant().(*qdrant.Query_Nearest)
	if !ok {
		what := "a query without `query`"
		if req.GetQuery() != nil {
			what = fmt.Sprintf("query variant %T", req.GetQuery().GetVariant())
		}
		return nil, errUnimplemented(what)
	}
	limit := 10
	if req.Limit != nil {
		if *req.Limit == 0 {
			return nil, errValidation("limit: value 0 invalid, must be 1 or larger")
		}
		limit = int(*req.Limit)
	}
	pay, vec, err := newSelectors(req.GetWithPayload(), req.GetWithVectors(), false)
	if err != nil {
		return nil, err
	}
	using := req.GetUsing()

	s := pss.s
	c, err := s.lockCollection(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	r := nearestReq{
		using:     using,
		filter:    req.GetFilter(),
		limit:     limit,
		offset:    int(req.GetOffset()),
		threshold: req.ScoreThreshold,
	}
	switch in := nearest.Nearest.GetVariant().(type) {
	case *qdrant.VectorInput_Dense:
		r.vector = in.Dense.GetData()
	case *qdrant.VectorInput_Id:
		id, err := parsePID(in.Id)
		if err != nil {
			return nil, err
		}
		p, ok := c.points[id]
		if !ok {
			return nil, status.Errorf(codes.NotFound, "Not found: No point with id %s found", id)
		}
		v, ok := p.vectors[using]
		if !ok {
			return nil, errBadInput("Vector %q not found for point %s", using, id)
		}
		r.vector, r.exclude = v, &id
	case *qdrant.VectorInput_Sparse:
		return nil, errUnimplemented("sparse vectors")
	case *qdrant.VectorInput_MultiDense:
		return nil, errUnimplemented("multi-dense vectors")
	default:
		return nil, errUnimplemented("inference inputs (document, image, object)")
	}
	res, err := c.nearest(r)
	if err != nil {
		return nil, err
	}
	return &qdrant.QueryResponse{Result: s.scoredPoints(c, res, pay, vec), Time: since(start)}, nil
}
