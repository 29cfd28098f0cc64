package qdranttest

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

type collectionsService struct {
	qdrant.UnimplementedCollectionsServer
	s *Server
}

// Defaults a fresh Qdrant (config/config.yaml) applies to a collection that
// does not set them, and returns from Get.
func defaultHNSW() *qdrant.HnswConfigDiff {
	return &qdrant.HnswConfigDiff{
		M:                  proto.Uint64(16),
		EfConstruct:        proto.Uint64(100),
		FullScanThreshold:  proto.Uint64(10000),
		MaxIndexingThreads: proto.Uint64(0),
		OnDisk:             proto.Bool(false),
	}
}

func defaultOptimizers() *qdrant.OptimizersConfigDiff {
	return &qdrant.OptimizersConfigDiff{
		DeletedThreshold:      proto.Float64(0.2),
		VacuumMinVectorNumber: proto.Uint64(1000),
		DefaultSegmentNumber:  proto.Uint64(0),
		IndexingThreshold:     proto.Uint64(10000),
		FlushIntervalSec:      proto.Uint64(5),
	}
}

func defaultWAL() *qdrant.WalConfigDiff {
	return &qdrant.WalConfigDiff{
		WalCapacityMb:    proto.Uint64(32),
		WalSegmentsAhead: proto.Uint64(0),
		WalRetainClosed:  proto.Uint64(1),
	}
}

// mergeHNSW applies the fields set in d over base (Qdrant's update_opt).
func mergeHNSW(base, d *qdrant.HnswConfigDiff) {
	if d == nil {
		return
	}
	overlay(&base.M, d.M)
	overlay(&base.EfConstruct, d.EfConstruct)
	overlay(&base.FullScanThreshold, d.FullScanThreshold)
	overlay(&base.MaxIndexingThreads, d.MaxIndexingThreads)
	overlay(&base.OnDisk, d.OnDisk)
	overlay(&base.PayloadM, d.PayloadM)
	overlay(&base.InlineStorage, d.InlineStorage)
}

// overlay sets *dst to a copy of *src when src is set, and leaves it
// alone otherwise.
func overlay[T any](dst **T, src *T) {
	if src != nil {
		v := *src
		*dst = &v
	}
}

func mergeOptimizers(base, d *qdrant.OptimizersConfigDiff) {
	if d == nil {
		return
	}
	// proto.Merge copies the set optional scalar fields of d over base.
	proto.Merge(base, d)
}

func mergeWAL(base, d *qdrant.WalConfigDiff) {
	if d == nil {
		return
	}
	proto.Merge(base, d)
}

const invalidNameChars = "<>:\"/\\|?*\x00\x1f"

func validateHNSW(field string, h *qdrant.HnswConfigDiff) error {
	if h == nil {
		return nil
	}
	if h.EfConstruct != nil && *h.EfConstruct < 4 {
		return errValidation("%s.ef_construct: value %d invalid, must be 4 or larger", field, *h.EfConstruct)
	}
	return nil
}

func validateQuantization(field string, q *qdrant.QuantizationConfig) error {
	if q == nil {
		return nil
	}
	switch v := q.GetQuantization().(type) {
	case *qdrant.QuantizationConfig_Scalar:
		if v.Scalar.GetType() != qdrant.QuantizationType_Int8 {
			return status.Error(codes.InvalidArgument, "Unknown quantization type")
		}
		if qq := v.Scalar.Quantile; qq != nil && (*qq < 0.5 || *qq > 1) {
			return errValidation("%s.scalar.quantile: value %v invalid, must be from 0.5 to 1", field, *qq)
		}
	case *qdrant.QuantizationConfig_Product, *qdrant.QuantizationConfig_Binary:
	default:
		return status.Error(codes.InvalidArgument, "Unable to convert quantization config")
	}
	return nil
}

func validateVectorParams(field string, p *qdrant.VectorParams) error {
	if p == nil {
		return status.Error(codes.InvalidArgument, "Malformed vector params")
	}
	if p.Size < 1 || p.Size > 65536 {
		return errValidation("%s.size: value %d invalid, must be from 1 to 65536", field, p.Size)
	}
	switch p.Distance {
	case qdrant.Distance_Cosine, qdrant.Distance_Euclid, qdrant.Distance_Dot, qdrant.Distance_Manhattan:
	default:
		return status.Error(codes.InvalidArgument, "Malformed distance parameter")
	}
	if mc := p.MultivectorConfig; mc != nil && mc.Comparator != qdrant.MultiVectorComparator_MaxSim {
		return errValidation("%s.multivector_config.comparator: unknown comparator %v", field, mc.Comparator)
	}
	if err := validateHNSW(field+".hnsw_config", p.HnswConfig); err != nil {
		return err
	}
	return validateQuantization(field+".quantization_config", p.QuantizationConfig)
}

func (cs *collectionsService) Create(ctx context.Context, req *qdrant.CreateCollection) (*qdrant.CollectionOperationResponse, error) {
	start := time.Now()
	name := req.GetCollectionName()
	if name == "" || len(name) > 255 {
		return nil, errValidation("collection_name: length must be between 1 and 255")
	}
	if strings.ContainsAny(name, invalidNameChars) {
		return nil, errValidation("collection_name: collection name cannot contain \"/\", \"\\\", \"<\", \">\", \":\", \"\\\"\", \"|\", \"?\", \"*\" or null characters")
	}
	if req.ShardingMethod != nil && *req.ShardingMethod == qdrant.ShardingMethod_Custom {
		return nil, errUnimplemented("custom sharding")
	}

	c := &collection{name: name, vectors: map[string]*qdrant.VectorParams{}, points: map[pid]*point{}}
	var vc *qdrant.VectorsConfig
	if req.VectorsConfig != nil {
		switch v := req.VectorsConfig.GetConfig().(type) {
		case *qdrant.VectorsConfig_Params:
			if err := validateVectorParams("vectors", v.Params); err != nil {
				return nil, err
			}
			c.single = true
			c.vectors[""] = proto.Clone(v.Params).(*qdrant.VectorParams)
		case *qdrant.VectorsConfig_ParamsMap:
			names := make([]string, 0, len(v.ParamsMap.GetMap()))
			for n := range v.ParamsMap.GetMap() {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				p := v.ParamsMap.GetMap()[n]
				if err := validateVectorParams("vectors."+n, p); err != nil {
					return nil, err
				}
				c.vectors[n] = proto.Clone(p).(*qdrant.VectorParams)
			}
		default:
			return nil, status.Error(codes.InvalidArgument, "Malformed vectors config")
		}
		vc = proto.Clone(req.VectorsConfig).(*qdrant.VectorsConfig)
	}
	if err := validateHNSW("hnsw_config", req.HnswConfig); err != nil {
		return nil, err
	}
	if err := validateQuantization("quantization_config", req.QuantizationConfig); err != nil {
		return nil, err
	}
	shards := req.GetShardNumber()
	if req.ShardNumber == nil {
		shards = 1
	}
	if shards == 0 {
		return nil, errBadInput("`shard_number` cannot be 0")
	}
	repl := req.GetReplicationFactor()
	if req.ReplicationFactor == nil {
		repl = 1
	}
	if repl == 0 {
		return nil, errBadInput("`replication_factor` cannot be 0")
	}
	wcf := req.GetWriteConsistencyFactor()
	if req.WriteConsistencyFactor == nil {
		wcf = 1
	}
	if wcf == 0 {
		return nil, errBadInput("`write_consistency_factor` cannot be 0")
	}
	onDiskPayload := true // Qdrant's storage.on_disk_payload default
	if req.OnDiskPayload != nil {
		onDiskPayload = *req.OnDiskPayload
	}

	hnsw := defaultHNSW()
	mergeHNSW(hnsw, req.HnswConfig)
	opt := defaultOptimizers()
	mergeOptimizers(opt, req.OptimizersConfig)
	wal := defaultWAL()
	mergeWAL(wal, req.WalConfig)

	params := &qdrant.CollectionParams{
		ShardNumber:            shards,
		OnDiskPayload:          onDiskPayload,
		VectorsConfig:          vc,
		ReplicationFactor:      proto.Uint32(repl),
		WriteConsistencyFactor: proto.Uint32(wcf),
	}
	if req.SparseVectorsConfig != nil {
		params.SparseVectorsConfig = proto.Clone(req.SparseVectorsConfig).(*qdrant.SparseVectorConfig)
	}
	c.config = &qdrant.CollectionConfig{
		Params:          params,
		HnswConfig:      hnsw,
		OptimizerConfig: opt,
		WalConfig:       wal,
	}
	if req.QuantizationConfig != nil {
		c.config.QuantizationConfig = proto.Clone(req.QuantizationConfig).(*qdrant.QuantizationConfig)
	}
	if req.StrictModeConfig != nil {
		c.config.StrictModeConfig = proto.Clone(req.StrictModeConfig).(*qdrant.StrictModeConfig)
	}
	if len(req.Metadata) > 0 {
		c.config.Metadata = map[string]*qdrant.Value{}
		for k, v := range req.Metadata {
			c.config.Metadata[k] = proto.Clone(v).(*qdrant.Value)
		}
	}

	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.colls[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "Wrong input: Collection `%s` already exists!", name)
	}
	if _, ok := s.aliases[name]; ok {
		return nil, errBadInput("Can't create collection with name %s. Alias with the same name already exists", name)
	}
	s.colls[name] = c
	return &qdrant.CollectionOperationResponse{Result: true, Time: since(start)}, nil
}

func (cs *collectionsService) Get(ctx context.Context, req *qdrant.GetCollectionInfoRequest) (*qdrant.GetCollectionInfoResponse, error) {
	start := time.Now()
	s := cs.s
	c, err := s.lockCollection(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return &qdrant.GetCollectionInfoResponse{Result: c.info(), Time: since(start)}, nil
}

func (cs *collectionsService) List(ctx context.Context, req *qdrant.ListCollectionsRequest) (*qdrant.ListCollectionsResponse, error) {
	start := time.Now()
	s := cs.s
	s.mu.Lock()
	names := make([]string, 0, len(s.colls))
	for n := range s.colls {
		names = append(names, n)
	}
	s.mu.Unlock()
	sort.Strings(names)
	out := &qdrant.ListCollectionsResponse{Time: since(start)}
	for _, n := range names {
		out.Collections = append(out.Collections, &qdrant.CollectionDescription{Name: n})
	}
	return out, nil
}

// Delete removes a collection and the aliases pointing at it. Like Qdrant,
// a missing collection is not an error: the result is false.
func (cs *collectionsService) Delete(ctx context.Context, req *qdrant.DeleteCollection) (*qdrant.CollectionOperationResponse, error) {
	start := time.Now()
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	name := req.GetCollectionName()
	if _, ok := s.colls[name]; !ok {
		return &qdrant.CollectionOperationResponse{Result: false, Time: since(start)}, nil
	}
	delete(s.colls, name)
	for a, target := range s.aliases {
		if target == name {
			delete(s.aliases, a)
		}
	}
	return &qdrant.CollectionOperationResponse{Result: true, Time: since(start)}, nil
}

func (cs *collectionsService) CollectionExists(ctx context.Context, req *qdrant.CollectionExistsRequest) (*qdrant.CollectionExistsResponse, error) {
	start := time.Now()
	s := cs.s
	s.mu.Lock()
	_, err := s.resolveLocked(req.GetCollectionName())
	s.mu.Unlock()
	return &qdrant.CollectionExistsResponse{
		Result: &qdrant.CollectionExists{Exists: err == nil},
		Time:   since(start),
	}, nil
}

// UpdateAliases applies all actions or none.
func (cs *collectionsService) UpdateAliases(ctx context.Context, req *qdrant.ChangeAliases) (*qdrant.CollectionOperationResponse, error) {
	start := time.Now()
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]string, len(s.aliases))
	for k, v := range s.aliases {
		next[k] = v
	}
	for _, op := range req.GetActions() {
		switch a := op.GetAction().(type) {
		case *qdrant.AliasOperations_CreateAlias:
			coll, alias := a.CreateAlias.GetCollectionName(), a.CreateAlias.GetAliasName()
			if _, ok := s.colls[coll]; !ok {
				return nil, errNotFoundCollection(coll)
			}
			if _, ok := s.colls[alias]; ok {
				return nil, errBadInput("Collection with name `%s` already exists, alias cannot have the same name", alias)
			}
			next[alias] = coll
		case *qdrant.AliasOperations_RenameAlias:
			old, nw := a.RenameAlias.GetOldAliasName(), a.RenameAlias.GetNewAliasName()
			coll, ok := next[old]
			if !ok {
				return nil, status.Errorf(codes.NotFound, "Not found: Alias `%s` doesn't exist!", old)
			}
			if _, ok := s.colls[nw]; ok {
				return nil, errBadInput("Collection with name `%s` already exists, alias cannot have the same name", nw)
			}
			delete(next, old)
			next[nw] = coll
		case *qdrant.AliasOperations_DeleteAlias:
			// Qdrant: "Delete alias if exists".
			delete(next, a.DeleteAlias.GetAliasName())
		default:
			return nil, status.Error(codes.InvalidArgument, "Malformed AliasOperation type")
		}
	}
	s.aliases = next
	return &qdrant.CollectionOperationResponse{Result: true, Time: since(start)}, nil
}

func (cs *collectionsService) ListAliases(ctx context.Context, req *qdrant.ListAliasesRequest) (*qdrant.ListAliasesResponse, error) {
	start := time.Now()
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return &qdrant.ListAliasesResponse{Aliases: s.aliasListLocked(""), Time: since(start)}, nil
}

func (cs *collectionsService) ListCollectionAliases(ctx context.Context, req *qdrant.ListCollectionAliasesRequest) (*qdrant.ListAliasesResponse, error) {
	start := time.Now()
	s := cs.s
	s.mu.Lock()
	defer s.mu.Unlock()
	name := req.GetCollectionName()
	if _, ok := s.colls[name]; !ok {
		return nil, errNotFoundCollection(name)
	}
	return &qdrant.ListAliasesResponse{Aliases: s.aliasListLocked(name), Time: since(start)}, nil
}

// aliasListLocked lists aliases sorted by name, only those of coll when it
// is non-empty.
func (s *Server) aliasListLocked(coll string) []*qdrant.AliasDescription {
	names := make([]string, 0, len(s.aliases))
	for a, c := range s.aliases {
		if coll == "" || c == coll {
			names = append(names, a)
		}
	}
	sort.Strings(names)
	out := make([]*qdrant.AliasDescription, 0, len(names))
	for _, a := range names {
		out = append(out, &qdrant.AliasDescription{AliasName: a, CollectionName: s.aliases[a]})
	}
	return out
}

func since(t time.Time) float64 { return time.Since(t).Seconds() }
