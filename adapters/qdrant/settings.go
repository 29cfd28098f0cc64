package qdrant

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/qdrant/go-client/qdrant"
	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// Settings reports the collection's configuration from GetCollectionInfo.
//
// Hashed, for the unnamed vector:
//
//	vector.dim, vector.metric (cosine | l2 | dot | l1), normalize
//	index.type = "hnsw", index.m, index.ef_construction
//	quantization (see quantizationString)
//
// where index.* and quantization take the vector's own override when it has
// one. For named vectors the per-vector keys are vector.<name>.dim,
// vector.<name>.metric, vector.<name>.normalize, and, only when the vector
// overrides the collection, vector.<name>.index.m,
// vector.<name>.index.ef_construction and vector.<name>.quantization; the
// collection-level index.* and quantization are always present.
// vector[.<name>].datatype and .multivector appear only when set to a
// non-default; sparse.<name>.modifier for each sparse vector.
//
// Info: engine, on_disk (per vector: vector.<name>.on_disk),
// on_disk_payload, shard_number, replication_factor, points_count.
func (s *Store) Settings(ctx context.Context) (parity.Settings, error) {
	info, err := s.client.GetCollectionsClient().Get(ctx, &qdrant.GetCollectionInfoRequest{CollectionName: s.coll})
	if err != nil {
		return parity.Settings{}, s.fail(ctx, "settings of", err)
	}
	return settingsOf(info.GetResult()), nil
}

func settingsOf(info *qdrant.CollectionInfo) parity.Settings {
	st := parity.NewSettings()
	cfg := info.GetConfig()
	params := cfg.GetParams()

	m, ef := 16, 100 // Qdrant's defaults, should a server leave them out
	if h := cfg.GetHnswConfig(); h != nil {
		if h.M != nil {
			m = int(*h.M)
		}
		if h.EfConstruct != nil {
			ef = int(*h.EfConstruct)
		}
	}
	st.Hashed["index.type"] = "hnsw"
	st.Hashed["index.m"] = m
	st.Hashed["index.ef_construction"] = ef
	st.Hashed["quantization"] = quantizationString(cfg.GetQuantizationConfig())

	vector := func(prefix string, p *qdrant.VectorParams, named bool) {
		st.Hashed[prefix+"dim"] = int(p.GetSize())
		st.Hashed[prefix+"metric"] = metricName(p.GetDistance())
		normKey := "normalize"
		if named {
			normKey = prefix + "normalize"
		}
		st.Hashed[normKey] = normalizeOf(p.GetDistance())
		idx, quant := "index.", "quantization"
		if named {
			idx, quant = prefix+"index.", prefix+"quantization"
		}
		if h := p.GetHnswConfig(); h != nil {
			if h.M != nil {
				st.Hashed[idx+"m"] = int(*h.M)
			}
			if h.EfConstruct != nil {
				st.Hashed[idx+"ef_construction"] = int(*h.EfConstruct)
			}
		}
		if p.QuantizationConfig != nil {
			st.Hashed[quant] = quantizationString(p.QuantizationConfig)
		}
		if dt := p.GetDatatype(); dt != qdrant.Datatype_Default && dt != qdrant.Datatype_Float32 {
			st.Hashed[prefix+"datatype"] = strings.ToLower(dt.String())
		}
		if mv := p.GetMultivectorConfig(); mv != nil {
			st.Hashed[prefix+"multivector"] = strings.ToLower(mv.GetComparator().String())
		}
		st.Info[prefix+"on_disk"] = p.GetOnDisk()
	}
	switch vc := params.GetVectorsConfig().GetConfig().(type) {
	case *qdrant.VectorsConfig_Params:
		vector("vector.", vc.Params, false)
		st.Info["on_disk"] = vc.Params.GetOnDisk()
		delete(st.Info, "vector.on_disk")
	case *qdrant.VectorsConfig_ParamsMap:
		names := make([]string, 0, len(vc.ParamsMap.GetMap()))
		for n := range vc.ParamsMap.GetMap() {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			vector("vector."+n+".", vc.ParamsMap.GetMap()[n], true)
		}
	}
	for n, sp := range params.GetSparseVectorsConfig().GetMap() {
		st.Hashed["sparse."+n+".modifier"] = strings.ToLower(sp.GetModifier().String())
	}

	st.Info["engine"] = "qdrant"
	st.Info["on_disk_payload"] = params.GetOnDiskPayload()
	st.Info["shard_number"] = int(params.GetShardNumber())
	st.Info["replication_factor"] = int(params.GetReplicationFactor())
	st.Info["points_count"] = int(info.GetPointsCount())
	return st
}

var _ adapters.SnapshotMarker = (*Store)(nil)

// SnapshotMarker names the collection (server address and name) and marks
// its state with the collection info Qdrant offers: points, indexed vectors
// and segments counts and status. Qdrant has no snapshot id a scan could
// pin, so this catches changes in counts, not a same-count rewrite.
func (s *Store) SnapshotMarker(ctx context.Context) (storeID, snapshot string, err error) {
	info, err := s.client.GetCollectionsClient().Get(ctx, &qdrant.GetCollectionInfoRequest{CollectionName: s.coll})
	if err != nil {
		return "", "", s.fail(ctx, "collection info of", err)
	}
	r := info.GetResult()
	return fmt.Sprintf("qdrant %s collection=%s", s.addr, s.coll),
		fmt.Sprintf("points=%d indexed_vectors=%d segments=%d status=%s", r.GetPointsCount(), r.GetIndexedVectorsCount(), r.GetSegmentsCount(), r.GetStatus()), nil
}
