package qdranttest

import (
	"context"
	"errors"
	"sort"
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

// storeInput checks one input vector against the collection config and
// stores what Qdrant stores: dense vectors (the `dense` oneof or the
// deprecated flat `data` field) copied and L2-normalised for Cosine;
// sparse vectors sorted by index; multivectors with each vector checked
// and normalised like a dense one.
func (c *collection) storeInput(p *point, name string, v *qdrant.Vector) error {
	var (
		idx   []uint32
		vals  []float32
		multi [][]float32
		kind  = "dense"
	)
	switch o := v.GetVector().(type) {
	case *qdrant.Vector_Dense:
		vals = o.Dense.GetData()
	case *qdrant.Vector_Sparse:
		kind, idx, vals = "sparse", o.Sparse.GetIndices(), o.Sparse.GetValues()
	case *qdrant.Vector_MultiDense:
		kind = "multi"
		for _, d := range o.MultiDense.GetVectors() {
			multi = append(multi, d.GetData())
		}
	case nil:
		vals = v.GetData()
		switch {
		case v.GetIndices() != nil:
			kind, idx = "sparse", v.GetIndices().GetData()
		case v.VectorsCount != nil:
			kind = "multi"
			n := int(v.GetVectorsCount())
			if n < 1 || len(vals)%n != 0 {
				return errBadInput("Multivector of %d vectors with %d values", n, len(vals))
			}
			dim := len(vals) / n
			for i := 0; i < n; i++ {
				multi = append(multi, vals[i*dim:(i+1)*dim])
			}
		}
	default:
		return errUnimplemented("inference inputs (document, image, object)")
	}
	switch kind {
	case "sparse":
		if _, ok := c.config.GetParams().GetSparseVectorsConfig().GetMap()[name]; !ok {
			return errBadInput("Not existing vector name error: %s", name)
		}
		if len(idx) != len(vals) {
			return errBadInput("Sparse vector has %d indices and %d values", len(idx), len(vals))
		}
		sv := sparseVec{indices: append([]uint32(nil), idx...), values: append([]float32(nil), vals...)}
		sort.Sort(byIndex(sv))
		for i := 1; i < len(sv.indices); i++ {
			if sv.indices[i] == sv.indices[i-1] {
				return errBadInput("Sparse vector has duplicate index %d", sv.indices[i])
			}
		}
		if p.sparse == nil {
			p.sparse = map[string]sparseVec{}
		}
		p.sparse[name] = sv
	case "multi":
		params, ok := c.vectors[name]
		if !ok {
			return errBadInput("Not existing vector name error: %s", name)
		}
		if params.MultivectorConfig == nil {
			return errBadInput("Wrong input: Vector %q is not a multivector", name)
		}
		if len(multi) == 0 {
			return errBadInput("Multivector %q is empty", name)
		}
		var out [][]float32
		for _, d := range multi {
			sd, err := c.storeVector(name, d)
			if err != nil {
				return err
			}
			out = append(out, sd)
		}
		if p.multi == nil {
			p.multi = map[string][][]float32{}
		}
		p.multi[name] = out
	default:
		if params, ok := c.vectors[name]; ok && params.MultivectorConfig != nil {
			return errBadInput("Wrong input: Vector %q is a multivector", name)
		}
		sd, err := c.storeVector(name, vals)
		if err != nil {
			return err
		}
		p.vectors[name] = sd
	}
	return nil
}

type byIndex sparseVec

func (b byIndex) Len() int           { return len(b.indices) }
func (b byIndex) Less(i, j int) bool { return b.indices[i] < b.indices[j] }
func (b byIndex) Swap(i, j int) {
	b.indices[i], b.indices[j] = b.indices[j], b.indices[i]
	b.values[i], b.values[j] = b.values[j], b.values[i]
}

// storeVector checks one dense input vector against the collection config
// and returns what Qdrant stores: a copy, L2-normalised for Cosine.
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
		if err := c.storeInput(p, "", o.Vector); err != nil {
			return nil, err
		}
	case *qdrant.Vectors_Vectors:
		for name, v := range o.Vectors.GetVectors() {
			if err := c.storeInput(p, name, v); err != nil {
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

func (s *Server) sparseOut(sv sparseVec) *qdrant.VectorOutput {
	if s.DenseOutput {
		return &qdrant.VectorOutput{Vector: &qdrant.VectorOutput_Sparse{Sparse: &qdrant.SparseVector{Indices: sv.indices, Values: sv.values}}}
	}
	return &qdrant.VectorOutput{Data: sv.values, Indices: &qdrant.SparseIndices{Data: sv.indices}}
}

func (s *Server) multiOut(m [][]float32) *qdrant.VectorOutput {
	if s.DenseOutput {
		vs := make([]*qdrant.DenseVector, len(m))
		for i, d := range m {
			vs[i] = &qdrant.DenseVector{Data: d}
		}
		return &qdrant.VectorOutput{Vector: &qdrant.VectorOutput_MultiDense{MultiDense: &qdrant.MultiDenseVector{Vectors: vs}}}
	}
	var flat []float32
	for _, d := range m {
		flat = append(flat, d...)
	}
	n := uint32(len(m))
	return &qdrant.VectorOutput{Data: flat, VectorsCount: &n}
}

// vectorsOut renders the selected vectors of p: the single-vector shape for
// a collection created with one unnamed vector, the named map otherwise.
func (s *Server) vectorsOut(c *collection, p *point, sel vectorSel) *qdrant.VectorsOutput {
	if !sel.any() {
		return nil
	}
	if c.single {
		if !sel.wants("") {
			return nil
		}
		var out *qdrant.VectorOutput
		if data, ok := p.vectors[""]; ok {
			out = s.vectorOut(data)
		} else if m, ok := p.multi[""]; ok {
			out = s.multiOut(m)
		} else {
			return nil
		}
		return &qdrant.VectorsOutput{VectorsOptions: &qdrant.VectorsOutput_Vector{Vector: out}}
	}
	named := &qdrant.NamedVectorsOutput{Vectors: map[string]*qdrant.VectorOutput{}}
	for name, data := range p.vectors {
		if sel.wants(name) {
			named.Vectors[name] = s.vectorOut(data)
		}
	}
	for name, sv := range p.sparse {
		if sel.wants(name) {
			named.Vectors[name] = s.sparseOut(sv)
		}
	}
	for name, m := range p.multi {
		if sel.wants(name) {
			named.Vectors[name] = s.multiOut(m)
		}
	}
	return &qdrant.VectorsOutput{VectorsOptions: &qdrant.VectorsOutput_Vectors{Vectors: named}}
}
