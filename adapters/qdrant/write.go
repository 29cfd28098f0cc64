package qdrant

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// Create creates the collection: one unnamed vector when spec.Vectors has
// only the "" key, named vectors otherwise; HNSW m / ef_construct when
// non-zero. An existing collection (or alias) of that name is an error
// wrapping adapters.ErrExists.
func (s *Store) Create(ctx context.Context, spec adapters.CollectionSpec) error {
	if spec.IDKind == parity.IDString {
		return fmt.Errorf("qdrant: create collection %q: string ids are not supported (Qdrant point ids are unsigned integers or UUIDs)", s.coll)
	}
	if len(spec.Vectors) == 0 {
		return fmt.Errorf("qdrant: create collection %q: no vectors in the spec", s.coll)
	}
	dist, err := distanceOf(spec.Metric)
	if err != nil {
		return fmt.Errorf("qdrant: create collection %q: %w", s.coll, err)
	}
	params := func(name string, dim int) (*qdrant.VectorParams, error) {
		if dim < 1 {
			return nil, fmt.Errorf("qdrant: create collection %q: vector %q: dimension %d", s.coll, name, dim)
		}
		return &qdrant.VectorParams{Size: uint64(dim), Distance: dist}, nil
	}
	var vc *qdrant.VectorsConfig
	if dim, ok := spec.Vectors[""]; ok {
		if len(spec.Vectors) > 1 {
			return fmt.Errorf("qdrant: create collection %q: the unnamed vector cannot be mixed with named vectors", s.coll)
		}
		p, err := params("", dim)
		if err != nil {
			return err
		}
		vc = qdrant.NewVectorsConfig(p)
	} else {
		names := make([]string, 0, len(spec.Vectors))
		for n := range spec.Vectors {
			names = append(names, n)
		}
		sort.Strings(names)
		m := make(map[string]*qdrant.VectorParams, len(names))
		for _, n := range names {
			p, err := params(n, spec.Vectors[n])
			if err != nil {
				return err
			}
			m[n] = p
		}
		vc = qdrant.NewVectorsConfigMap(m)
	}
	req := &qdrant.CreateCollection{CollectionName: s.coll, VectorsConfig: vc}
	if spec.HNSWM != 0 || spec.HNSWEfConstruction != 0 {
		h := &qdrant.HnswConfigDiff{}
		if spec.HNSWM != 0 {
			h.M = qdrant.PtrOf(uint64(spec.HNSWM))
		}
		if spec.HNSWEfConstruction != 0 {
			h.EfConstruct = qdrant.PtrOf(uint64(spec.HNSWEfConstruction))
		}
		req.HnswConfig = h
	}
	if _, err := s.client.GetCollectionsClient().Create(ctx, req); err != nil {
		// Qdrant answers AlreadyExists (older versions: InvalidArgument
		// "Wrong input: Collection `x` already exists!"; an alias of that
		// name: InvalidArgument "... Alias with the same name already exists").
		if errIs(err, codes.AlreadyExists) || (errIs(err, codes.InvalidArgument) && strings.Contains(err.Error(), "already exists")) {
			return fmt.Errorf("qdrant: collection %q: %w", s.coll, adapters.ErrExists)
		}
		return s.fail(ctx, "create", err)
	}
	return nil
}

// Upsert writes points in batches, waiting for each to be applied.
func (s *Store) Upsert(ctx context.Context, pts []parity.Point) error {
	for i := 0; i < len(pts); i += upsertBatch {
		batch := pts[i:min(i+upsertBatch, len(pts))]
		structs := make([]*qdrant.PointStruct, len(batch))
		for j := range batch {
			ps, err := s.toStruct(&batch[j])
			if err != nil {
				return fmt.Errorf("qdrant: upsert into collection %q: point %s: %w", s.coll, batch[j].ID.S, err)
			}
			structs[j] = ps
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("qdrant: upsert into collection %q: %w", s.coll, err)
		}
		_, err := s.client.GetPointsClient().Upsert(ctx, &qdrant.UpsertPoints{
			CollectionName: s.coll,
			Wait:           qdrant.PtrOf(true),
			Points:         structs,
		})
		if err != nil {
			return s.fail(ctx, "upsert into", err)
		}
	}
	return nil
}

func (s *Store) toStruct(p *parity.Point) (*qdrant.PointStruct, error) {
	id, err := idToProto(p.ID)
	if err != nil {
		return nil, err
	}
	vs, err := vectorsToProto(p.Vectors)
	if err != nil {
		return nil, err
	}
	payload, err := payloadFromJSON(p.Payload)
	if err != nil {
		return nil, err
	}
	if p.HasText {
		if s.textKey == "" {
			return nil, fmt.Errorf("point has text but the URL names no text key (add ?text=<payload key>)")
		}
		if _, clash := payload[s.textKey]; clash {
			return nil, fmt.Errorf("payload already has the text key %q", s.textKey)
		}
		if payload == nil {
			payload = map[string]*qdrant.Value{}
		}
		payload[s.textKey] = qdrant.NewValueString(p.Text)
	}
	return &qdrant.PointStruct{Id: id, Vectors: vs, Payload: payload}, nil
}

// Drop deletes the collection; a missing one is not an error (Qdrant
// answers result=false for it). When the name is an alias, Drop deletes the
// alias and, when it points at a collection a Promote made
// (<alias>__rp_<stage>), that collection; a collection it did not make is
// left alone. Stages are not touched (see DropStage).
func (s *Store) Drop(ctx context.Context) error {
	if target := s.aliasTarget(ctx); target != "" {
		if _, err := s.client.GetCollectionsClient().UpdateAliases(ctx, &qdrant.ChangeAliases{
			Actions: []*qdrant.AliasOperations{qdrant.NewAliasDelete(s.coll)},
		}); err != nil {
			return s.fail(ctx, "drop alias", err)
		}
		if !strings.HasPrefix(target, s.coll+stageInfix) {
			return nil
		}
		s = s.sub(target)
	}
	_, err := s.client.GetCollectionsClient().Delete(ctx, &qdrant.DeleteCollection{CollectionName: s.coll})
	if err != nil && !errIs(err, codes.NotFound) {
		return s.fail(ctx, "drop", err)
	}
	return nil
}
