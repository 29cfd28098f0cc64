package qdranttest

import (
	"context"
	"errors"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type pointsService struct {
	qdrant.UnimplementedPointsServer
	s *Server
}

// denseInput extracts a dense vector from an input Vector: the `dense`
// oneof or the deprecated flat `data` field.
func denseInput(v *qdrant.Vector) ([]float32, error) {
	switch o := v.GetVector().(type) {
	case *qdrant.Vector_Dense:
		return o.Dense.GetData(), nil
	case nil:
		if v.GetIndices() != nil {
			return nil, errUnimplemented("sparse vectors")
		}
		if v.VectorsCount != nil {
			return nil, errUnimplemented("multi-dense vectors")
		}
		return v.GetData(), nil
	case *qdrant.Vector_Sparse:
		return nil, errUnimplemented("sparse vectors")
	case *qdrant.Vector_MultiDense:
		return nil, errUnimplemented("multi-dense vectors")
	default:
		return nil, errUnimplemented("inference inputs (document, image, object)")
	}
}

// storeVector checks one input vector against the collection config and
// returns what Qdrant stores: a copy, L2-normalised for Cosine.
func (c *collection) storeVector(name string, data []float32) ([]float32, error) {
	params, ok := c.vectors[name]
	if !ok {
		return nil, errBadInput("Not existing vector name error: %s", name)
	}
	if uint64(len(data)) != params.Size {
		return nil, errBadInput("Vector dimension error: expected dim: %d, got %d", params.Size, len(data))
	}
	out := append([]float32(nil), data...)
	if params.Distance == qdrant.Distance_Cosine {
		out = cosinePreprocess(out)
	}
	return out, nil
}

func (c *collection) buildPoint(ps *qdrant.PointStruct) (*point, error) {
	id, err := parsePID(ps.GetId())
	if err != nil {
		return nil, err
	}
	p := &point{id: id, vectors: map[string][]float32{}}
	switch o := ps.GetVectors().GetVectorsOptions().(type) {
	case *qdrant.Vectors_Vector:
		data, err := denseInput(o.Vector)
		if err != nil {
			return nil, err
		}
		if p.vectors[""], err = c.storeVector("", data); err != nil {
			return nil, err
		}
	case *qdrant.Vectors_Vectors:
		for name, v := range o.Vectors.GetVectors() {
			data, err := denseInput(v)
			if err != nil {
				return nil, err
			}
			if p.vectors[name], err = c.storeVector(name, data); err != nil {
				return nil, err
			}
		}
	case nil:
		if len(c.vectors) > 0 {
			return nil, status.Error(codes.InvalidArgument, "Expected some vectors")
		}
	}
	if len(ps.GetPayload()) > 0 {
		p.payload = make(map[string]*qdrant.Value, len(ps.GetPayload()))
		for k, v := range ps.GetPayload() {
			p.payload[k] = proto.Clone(v).(*qdrant.Value)
		}
	}
	return p, nil
}

func updateResult(opID uint64, wait bool) *qdrant.UpdateResult {
	st := qdrant.UpdateStatus_Acknowledged
	if wait {
		st = qdrant.UpdateStatus_Completed
	}
	return &qdrant.UpdateResult{OperationId: proto.Uint64(opID), Status: st}
}

// Upsert validates every point, then stores all of them (or none).
func (pss *pointsService) Upsert(ctx context.Context, req *qdrant.UpsertPoints) (*qdrant.PointsOperationResponse, error) {
	start := time.Now()
	if req.UpdateFilter != nil {
		return nil, errUnimplemented("update_filter")
	}
	if req.ShardKeySelector != nil {
		return nil, errUnimplemented("shard keys")
	}
	s := pss.s
	c, err := s.lockCollection(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	pts := make([]*point, 0, len(req.GetPoints()))
	for _, in := range req.GetPoints() {
		p, err := c.buildPoint(in)
		if err != nil {
			return nil, err
		}
		pts = append(pts, p)
	}
	op := s.nextOpIDLocked()
	for _, p := range pts {
		_, exists := c.points[p.id]
		switch req.GetUpdateMode() {
		case qdrant.UpdateMode_InsertOnly:
			if exists {
				continue
			}
		case qdrant.UpdateMode_UpdateOnly:
			if !exists {
				continue
			}
		}
		p.version = op
		c.put(p)
	}
	return &qdrant.PointsOperationResponse{Result: updateResult(op, req.GetWait()), Time: since(start)}, nil
}

func (pss *pointsService) Delete(ctx context.Context, req *qdrant.DeletePoints) (*qdrant.PointsOperationResponse, error) {
	start := time.Now()
	s := pss.s
	c, err := s.lockCollection(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var victims []pid
	switch sel := req.GetPoints().GetPointsSelectorOneOf().(type) {
	case *qdrant.PointsSelector_Points:
		for _, id := range sel.Points.GetIds() {
			p, err := parsePID(id)
			if err != nil {
				return nil, err
			}
			victims = append(victims, p)
		}
	case *qdrant.PointsSelector_Filter:
		match, err := compileFilter(sel.Filter)
		if err != nil {
			return nil, err
		}
		for _, id := range c.sorted() {
			if match(c.points[id]) {
				victims = append(victims, id)
			}
		}
	default:
		return nil, status.Error(codes.InvalidArgument, "Malformed points selector")
	}
	for _, id := range victims {
		c.remove(id)
	}
	op := s.nextOpIDLocked()
	return &qdrant.PointsOperationResponse{Result: updateResult(op, req.GetWait()), Time: since(start)}, nil
}

// Get returns the requested points that exist, in request order, once each.
func (pss *pointsService) Get(ctx context.Context, req *qdrant.GetPoints) (*qdrant.GetResponse, error) {
	start := time.Now()
	pay, vec, err := newSelectors(req.GetWithPayload(), req.GetWithVectors(), true)
	if err != nil {
		return nil, err
	}
	s := pss.s
	c, err := s.lockCollection(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := &qdrant.GetResponse{}
	seen := map[pid]bool{}
	for _, in := range req.GetIds() {
		id, err := parsePID(in)
		if err != nil {
			return nil, err
		}
		p, ok := c.points[id]
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		out.Result = append(out.Result, s.retrieved(c, p, pay, vec))
	}
	out.Time = since(start)
	return out, nil
}

func (pss *pointsService) Count(ctx context.Context, req *qdrant.CountPoints) (*qdrant.CountResponse, error) {
	start := time.Now()
	match, err := compileFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	s := pss.s
	c, err := s.lockCollection(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var n uint64
	for _, p := range c.points {
		if match(p) {
			n++
		}
	}
	return &qdrant.CountResponse{Result: &qdrant.CountResult{Count: n}, Time: since(start)}, nil
}

// Scroll pages through points in id order (integers, then UUIDs). offset is
// the first id of the page (inclusive; it need not exist); the response's
// next_page_offset is the id of the first point of the next page, unset at
// the end.
func (pss *pointsService) Scroll(ctx context.Context, req *qdrant.ScrollPoints) (*qdrant.ScrollResponse, error) {
	start := time.Now()
	if req.OrderBy != nil {
		return nil, errUnimplemented("order_by")
	}
	limit := 10
	if req.Limit != nil {
		if *req.Limit == 0 {
			return nil, errValidation("limit: value 0 invalid, must be 1 or larger")
		}
		limit = int(*req.Limit)
	}
	match, err := compileFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	pay, vec, err := newSelectors(req.GetWithPayload(), req.GetWithVectors(), true)
	if err != nil {
		return nil, err
	}
	var from *pid
	if req.Offset != nil {
		id, err := parsePID(req.Offset)
		if err != nil {
			return nil, err
		}
		from = &id
	}

	s := pss.s
	c, err := s.lockCollection(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	ids := c.sorted()
	i, page := 0, 0
	if from != nil {
		i = c.rank(*from)
		page = i / limit
	}
	resp := &qdrant.ScrollResponse{}
	for ; i < len(ids); i++ {
		p := c.points[ids[i]]
		if !match(p) {
			continue
		}
		if len(resp.Result) == limit {
			resp.NextPageOffset = p.id.proto()
			break
		}
		resp.Result = append(resp.Result, s.retrieved(c, p, pay, vec))
	}
	s.mu.Unlock()

	if hook := s.ScrollHook; hook != nil {
		if err := hook(ctx, page); err != nil {
			return nil, toStatus(err)
		}
	}
	s.scrolled.Add(int64(len(resp.Result)))
	resp.Time = since(start)
	return resp, nil
}

// toStatus turns a hook error into a gRPC status error.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Internal, err.Error())
}

// lockCollection takes s.mu and resolves name (a collection or an alias).
// On success the caller holds s.mu and must unlock it; on error s.mu has
// already been released.
func (s *Server) lockCollection(name string) (*collection, error) {
	s.mu.Lock()
	c, err := s.resolveLocked(name)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	return c, nil
}

// newSelectors parses a request's with_payload and with_vectors selectors;
// payloadDef is what an absent with_payload means (see newPayloadSel).
func newSelectors(wp *qdrant.WithPayloadSelector, wv *qdrant.WithVectorsSelector, payloadDef bool) (payloadSel, vectorSel, error) {
	pay, err := newPayloadSel(wp, payloadDef)
	if err != nil {
		return payloadSel{}, vectorSel{}, err
	}
	return pay, newVectorSel(wv), nil
}

func (s *Server) retrieved(c *collection, p *point, pay payloadSel, vec vectorSel) *qdrant.RetrievedPoint {
	return &qdrant.RetrievedPoint{
		Id:      p.id.proto(),
		Payload: pay.apply(p.payload),
		Vectors: s.vectorsOut(c, p, vec),
	}
}

func (s *Server) vectorOut(data []float32) *qdrant.VectorOutput {
	if s.DenseOutput {
		return &qdrant.VectorOutput{Vector: &qdrant.VectorOutput_Dense{Dense: &qdrant.DenseVector{Data: data}}}
	}
	return &qdrant.VectorOutput{Data: data}
}

// vectorsOut renders the selected vectors of p: the single-vector shape for
// a collection created with one unnamed vector, the named map otherwise.
func (s *Server) vectorsOut(c *collection, p *point, sel vectorSel) *qdrant.VectorsOutput {
	if !sel.any() {
		return nil
	}
	if c.single {
		data, ok := p.vectors[""]
		if !ok || !sel.wants("") {
			return nil
		}
		return &qdrant.VectorsOutput{VectorsOptions: &qdrant.VectorsOutput_Vector{Vector: s.vectorOut(data)}}
	}
	named := &qdrant.NamedVectorsOutput{Vectors: map[string]*qdrant.VectorOutput{}}
	for name, data := range p.vectors {
		if sel.wants(name) {
			named.Vectors[name] = s.vectorOut(data)
		}
	}
	return &qdrant.VectorsOutput{VectorsOptions: &qdrant.VectorsOutput_Vectors{Vectors: named}}
}
