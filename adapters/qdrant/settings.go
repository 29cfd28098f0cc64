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
// Semantic (hashed): vector.dim, vector.metric (cosine | l2 | dot | l1);
// for named vectors vector.<name>.dim and vector.<name>.metric;
// vector[.<name>].multivector when set; sparse.<name>.modifier for each
// sparse vector.
//
// Engine: normalize (vector.<name>.normalize), index.type = "hnsw",
// index.m, index.ef_construction, quantization (see quantizationString),
// with a named vector's own overrides as vector.<name>.index.m,
// vector.<name>.index.ef_construction and vector.<name>.quantization;
// vector[.<name>].datatype when not the default; on_disk (per vector:
// vector.<name>.on_disk), on_disk_payload, shard_number,
// replication_factor.
//
// Info: engine, points_count.
func (s *Store) Settings(ctx context.Context) (parity.Settings, error) {
	info, err := s.client.GetCollectionsClient().Get(ctx, &qdrant.GetCollectionInfoRequest{CollectionName: s.coll})
	if err != nil {
		return parity.Settings{}, s.fail(ctx, "settings of", err)
	}
	st := settingsOf(info.GetResult())
	if len(s.vectors) == 0 {
		return st, nil
	}
	// vector=NAME[,NAME]: only those vectors' settings are hashed, and each
	// must exist (dense, multi or sparse).
	keep := map[string]bool{}
	for _, n := range s.vectors {
		_, dense := st.Hashed["vector."+n+".dim"]
		_, sparse := st.Hashed["sparse."+n+".modifier"]
		if !dense && !sparse {
			return st, fmt.Errorf("qdrant: collection %q has no named vector %q (vector= in the URL)", s.coll, n)
		}
		keep[n] = true
	}
	for _, m := range []map[string]any{st.Hashed, st.Engine} {
		for k := range m {
			var name string
			switch {
			case strings.HasPrefix(k, "vector."):
				name, _, _ = strings.Cut(strings.TrimPrefix(k, "vector."), ".")
			case strings.HasPrefix(k, "sparse."):
				name, _, _ = strings.Cut(strings.TrimPrefix(k, "sparse."), ".")
			default:
				continue
			}
			if !keep[name] {
				delete(m, k)
			}
		}
	}
	st.Info["vectors"] = strings.Join(s.vectors, ",")
	return st, nil
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
	st.Engine["index.type"] = "hnsw"
	st.Engine["index.m"] = m
	st.Engine["index.ef_construction"] = ef
	st.Engine["quantization"] = quantizationString(cfg.GetQuantizationConfig())

	vector := func(prefix string, p *qdrant.VectorParams, named bool) {
		st.Hashed[prefix+"dim"] = int(p.GetSize())
		st.Hashed[prefix+"metric"] = metricName(p.GetDistance())
		normKey := "normalize"
		if named {
			normKey = prefix + "normalize"
		}
		st.Engine[normKey] = normalizeOf(p.GetDistance())
		idx, quant := "index.", "quantization"
		if named {
			idx, quant = prefix+"index.", prefix+"quantization"
		}
		if h := p.GetHnswConfig(); h != nil {
			if h.M != nil {
				st.Engine[idx+"m"] = int(*h.M)
			}
			if h.EfConstruct != nil {
				st.Engine[idx+"ef_construction"] = int(*h.EfConstruct)
			}
		}
		if p.QuantizationConfig != nil {
			st.Engine[quant] = quantizationString(p.QuantizationConfig)
		}
		if dt := p.GetDatatype(); dt != qdrant.Datatype_Default && dt != qdrant.Datatype_Float32 {
			st.Engine[prefix+"datatype"] = strings.ToLower(dt.String())
		}
		if mv := p.GetMultivectorConfig(); mv != nil {
			st.Hashed[prefix+"multivector"] = strings.ToLower(mv.GetComparator().String())
		}
		st.Engine[prefix+"on_disk"] = p.GetOnDisk()
	}
	switch vc := params.GetVectorsConfig().GetConfig().(type) {
	case *qdrant.VectorsConfig_Params:
		vector("vector.", vc.Params, false)
		st.Engine["on_disk"] = vc.Params.GetOnDisk()
		delete(st.Engine, "vector.on_disk")
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
	st.Engine["on_disk_payload"] = params.GetOnDiskPayload()
	st.Engine["shard_number"] = int(params.GetShardNumber())
	st.Engine["replication_factor"] = int(params.GetReplicationFactor())
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
