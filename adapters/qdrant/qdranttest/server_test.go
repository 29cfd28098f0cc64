package qdranttest_test

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
)

func client(t *testing.T, srv *qdranttest.Server) *qdrant.Client {
	t.Helper()
	host, port, _ := strings.Cut(srv.Addr(), ":")
	var p int
	fmt.Sscan(port, &p)
	c, err := qdrant.NewClient(&qdrant.Config{Host: host, Port: p, PoolSize: 1, SkipCompatibilityCheck: true})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func setup(t *testing.T) (*qdranttest.Server, *qdrant.Client) {
	srv := qdranttest.Start(t)
	return srv, client(t, srv)
}

func createSingle(t *testing.T, c *qdrant.Client, name string, dim uint64, d qdrant.Distance) {
	t.Helper()
	err := c.CreateCollection(t.Context(), &qdrant.CreateCollection{
		CollectionName: name,
		VectorsConfig:  qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: dim, Distance: d}),
	})
	if err != nil {
		t.Fatalf("CreateCollection(%s): %v", name, err)
	}
}

func upsert(t *testing.T, c *qdrant.Client, coll string, pts ...*qdrant.PointStruct) {
	t.Helper()
	if _, err := c.Upsert(t.Context(), &qdrant.UpsertPoints{CollectionName: coll, Wait: qdrant.PtrOf(true), Points: pts}); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
}

func pt(id *qdrant.PointId, v ...float32) *qdrant.PointStruct {
	return &qdrant.PointStruct{Id: id, Vectors: qdrant.NewVectorsDense(v)}
}

func idString(id *qdrant.PointId) string {
	if u := id.GetUuid(); u != "" {
		return u
	}
	return fmt.Sprint(id.GetNum())
}

func ids[T interface{ GetId() *qdrant.PointId }](pts []T) []string {
	out := []string{}
	for _, p := range pts {
		out = append(out, idString(p.GetId()))
	}
	return out
}

func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Errorf("%s: code = %v (err %v), want %v", what, got, err, code)
		return
	}
	if msg != "" && !strings.Contains(status.Convert(errorsUnwrap(err)).Message(), msg) {
		t.Errorf("%s: message = %q, want it to contain %q", what, err, msg)
	}
}

// errorsUnwrap digs the gRPC status error out of the client's QdrantError.
func errorsUnwrap(err error) error {
	for err != nil {
		if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
			return err
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
	return err
}

func TestHealthCheckVersion(t *testing.T) {
	_, c := setup(t)
	r, err := c.HealthCheck(t.Context())
	if err != nil {
		t.Fatalf("HealthCheck: %v", err)
	}
	if r.GetVersion() != qdranttest.Version {
		t.Errorf("version = %q, want %q", r.GetVersion(), qdranttest.Version)
	}
}

func TestCollectionInfoDefaults(t *testing.T) {
	_, c := setup(t)
	err := c.CreateCollection(t.Context(), &qdrant.CreateCollection{
		CollectionName: "docs",
		VectorsConfig: qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{
			"a": {Size: 3, Distance: qdrant.Distance_Dot, HnswConfig: &qdrant.HnswConfigDiff{M: qdrant.PtrOf(uint64(4))}},
		}),
		HnswConfig:         &qdrant.HnswConfigDiff{EfConstruct: qdrant.PtrOf(uint64(64))},
		QuantizationConfig: qdrant.NewQuantizationScalar(&qdrant.ScalarQuantization{Type: qdrant.QuantizationType_Int8}),
	})
	if err != nil {
		t.Fatalf("CreateCollection: %v", err)
	}
	upsert(t, c, "docs", &qdrant.PointStruct{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"a": qdrant.NewVector(1, 2, 3)})})
	info, err := c.GetCollectionInfo(t.Context(), "docs")
	if err != nil {
		t.Fatalf("GetCollectionInfo: %v", err)
	}
	cfg := info.GetConfig()
	h := cfg.GetHnswConfig()
	if h.GetM() != 16 || h.GetEfConstruct() != 64 || h.GetFullScanThreshold() != 10000 {
		t.Errorf("hnsw_config = %v, want m=16 (default) ef_construct=64 full_scan_threshold=10000", h)
	}
	if got := cfg.GetParams().GetVectorsConfig().GetParamsMap().GetMap()["a"].GetHnswConfig().GetM(); got != 4 {
		t.Errorf("vector a hnsw m = %d, want 4 (the per-vector diff, unmerged)", got)
	}
	p := cfg.GetParams()
	if p.GetShardNumber() != 1 || p.GetReplicationFactor() != 1 || p.GetWriteConsistencyFactor() != 1 || !p.GetOnDiskPayload() {
		t.Errorf("params = %v, want shard_number 1, replication_factor 1, write_consistency_factor 1, on_disk_payload true", p)
	}
	if cfg.GetQuantizationConfig().GetScalar().GetType() != qdrant.QuantizationType_Int8 {
		t.Errorf("quantization_config = %v, want scalar int8", cfg.GetQuantizationConfig())
	}
	if cfg.GetOptimizerConfig().GetIndexingThreshold() != 10000 || cfg.GetWalConfig().GetWalCapacityMb() != 32 {
		t.Errorf("optimizer/wal defaults = %v / %v", cfg.GetOptimizerConfig(), cfg.GetWalConfig())
	}
	if info.GetPointsCount() != 1 || info.GetStatus() != qdrant.CollectionStatus_Green {
		t.Errorf("points_count = %d, status = %v; want 1, Green", info.GetPointsCount(), info.GetStatus())
	}
	names, err := c.ListCollections(t.Context())
	if err != nil || !reflect.DeepEqual(names, []string{"docs"}) {
		t.Errorf("ListCollections = %v, %v; want [docs]", names, err)
	}
}

func TestErrors(t *testing.T) {
	_, c := setup(t)
	_, err := c.GetCollectionInfo(t.Context(), "nope")
	wantCode(t, "Get missing", err, codes.NotFound, "Not found: Collection `nope` doesn't exist!")
	_, err = c.Scroll(t.Context(), &qdrant.ScrollPoints{CollectionName: "nope"})
	wantCode(t, "Scroll missing", err, codes.NotFound, "doesn't exist")

	createSingle(t, c, "v", 2, qdrant.Distance_Cosine)
	err = c.CreateCollection(t.Context(), &qdrant.CreateCollection{CollectionName: "v", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Cosine})})
	wantCode(t, "Create twice", err, codes.AlreadyExists, "Collection `v` already exists!")
	err = c.CreateCollection(t.Context(), &qdrant.CreateCollection{CollectionName: "w", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 0, Distance: qdrant.Distance_Cosine})})
	wantCode(t, "Create size 0", err, codes.InvalidArgument, "size")
	err = c.CreateCollection(t.Context(), &qdrant.CreateCollection{CollectionName: "a/b"})
	wantCode(t, "Create bad name", err, codes.InvalidArgument, "")

	_, err = c.Upsert(t.Context(), &qdrant.UpsertPoints{CollectionName: "v", Points: []*qdrant.PointStruct{pt(qdrant.NewIDNum(1), 1, 2, 3)}})
	wantCode(t, "Upsert wrong dim", err, codes.InvalidArgument, "Vector dimension error: expected dim: 2, got 3")
	_, err = c.Upsert(t.Context(), &qdrant.UpsertPoints{CollectionName: "v", Points: []*qdrant.PointStruct{
		{Id: qdrant.NewIDNum(1), Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"x": qdrant.NewVector(1, 2)})},
	}})
	wantCode(t, "Upsert unknown vector name", err, codes.InvalidArgument, "Not existing vector name")
	_, err = c.Upsert(t.Context(), &qdrant.UpsertPoints{CollectionName: "v", Points: []*qdrant.PointStruct{pt(qdrant.NewID("not-a-uuid"), 1, 2)}})
	wantCode(t, "Upsert bad uuid", err, codes.InvalidArgument, "Unable to parse UUID")
	// A failed batch stores nothing.
	_, err = c.Upsert(t.Context(), &qdrant.UpsertPoints{CollectionName: "v", Points: []*qdrant.PointStruct{pt(qdrant.NewIDNum(1), 1, 2), pt(qdrant.NewIDNum(2), 1)}})
	wantCode(t, "Upsert half-bad batch", err, codes.InvalidArgument, "")
	if n, err := c.Count(t.Context(), &qdrant.CountPoints{CollectionName: "v"}); err != nil || n != 0 {
		t.Errorf("Count after a rejected batch = %d, %v; want 0", n, err)
	}
	_, err = c.GetPointsClient().Recommend(t.Context(), &qdrant.RecommendPoints{CollectionName: "v"})
	wantCode(t, "Recommend", err, codes.Unimplemented, "")
	_, err = c.Scroll(t.Context(), &qdrant.ScrollPoints{CollectionName: "v", Limit: qdrant.PtrOf(uint32(0))})
	wantCode(t, "Scroll limit 0", err, codes.InvalidArgument, "limit")

	// Deleting a missing collection is not an error in Qdrant: result false.
	r, err := c.GetCollectionsClient().Delete(t.Context(), &qdrant.DeleteCollection{CollectionName: "nope"})
	if err != nil || r.GetResult() {
		t.Errorf("Delete missing = %v, %v; want result false, no error", r.GetResult(), err)
	}
}

func TestScrollSemantics(t *testing.T) {
	_, c := setup(t)
	createSingle(t, c, "s", 2, qdrant.Distance_Dot)
	const ua, ub = "a0000000-0000-4000-8000-000000000001", "b0000000-0000-4000-8000-000000000002"
	upsert(t, c, "s",
		pt(qdrant.NewIDNum(10), 1, 0), pt(qdrant.NewIDNum(2), 1, 0), pt(qdrant.NewID(strings.ToUpper(ub)), 1, 0),
		pt(qdrant.NewIDNum(7), 1, 0), pt(qdrant.NewID("A0000000000040008000000000000001"), 1, 0), // simple form
	)
	scroll := func(req *qdrant.ScrollPoints) ([]string, string) {
		t.Helper()
		req.CollectionName = "s"
		pts, next, err := c.ScrollAndOffset(t.Context(), req)
		if err != nil {
			t.Fatalf("Scroll: %v", err)
		}
		n := "<end>"
		if next != nil {
			n = idString(next)
		}
		return ids(pts), n
	}
	for _, tc := range []struct {
		name     string
		req      *qdrant.ScrollPoints
		want     []string
		wantNext string
	}{
		{"default limit, id order, uuids normalised", &qdrant.ScrollPoints{}, []string{"2", "7", "10", ua, ub}, "<end>"},
		{"limit 2", &qdrant.ScrollPoints{Limit: qdrant.PtrOf(uint32(2))}, []string{"2", "7"}, "10"},
		{"offset inclusive", &qdrant.ScrollPoints{Offset: qdrant.NewIDNum(10), Limit: qdrant.PtrOf(uint32(2))}, []string{"10", ua}, ub},
		{"offset not stored", &qdrant.ScrollPoints{Offset: qdrant.NewIDNum(8), Limit: qdrant.PtrOf(uint32(1))}, []string{"10"}, ua},
		{"uuid offset any case", &qdrant.ScrollPoints{Offset: qdrant.NewID(strings.ToUpper(ub))}, []string{ub}, "<end>"},
		{"has_id filter", &qdrant.ScrollPoints{Filter: &qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewHasID(qdrant.NewIDNum(7), qdrant.NewID(ub))}}}, []string{"7", ub}, "<end>"},
		{"has_id must_not", &qdrant.ScrollPoints{Filter: &qdrant.Filter{MustNot: []*qdrant.Condition{qdrant.NewHasID(qdrant.NewIDNum(7), qdrant.NewID(ub))}}}, []string{"2", "10", ua}, "<end>"},
	} {
		got, next := scroll(tc.req)
		if !reflect.DeepEqual(got, tc.want) || next != tc.wantNext {
			t.Errorf("%s: got %v next %s, want %v next %s", tc.name, got, next, tc.want, tc.wantNext)
		}
	}
}

func TestSelectors(t *testing.T) {
	srv, c := setup(t)
	err := c.CreateCollection(t.Context(), &qdrant.CreateCollection{
		CollectionName: "n",
		VectorsConfig: qdrant.NewVectorsConfigMap(map[string]*qdrant.VectorParams{
			"x": {Size: 2, Distance: qdrant.Distance_Dot}, "y": {Size: 1, Distance: qdrant.Distance_Dot},
		}),
	})
	if err != nil {
		t.Fatalf("CreateCollection: %v", err)
	}
	upsert(t, c, "n", &qdrant.PointStruct{
		Id:      qdrant.NewIDNum(1),
		Vectors: qdrant.NewVectorsMap(map[string]*qdrant.Vector{"x": qdrant.NewVector(1, 2), "y": qdrant.NewVector(3)}),
		Payload: qdrant.NewValueMap(map[string]any{"a": 1, "b": "two", "c": true}),
	})
	get := func(wp *qdrant.WithPayloadSelector, wv *qdrant.WithVectorsSelector) *qdrant.RetrievedPoint {
		t.Helper()
		pts, err := c.Get(t.Context(), &qdrant.GetPoints{CollectionName: "n", Ids: []*qdrant.PointId{qdrant.NewIDNum(1), qdrant.NewIDNum(99)}, WithPayload: wp, WithVectors: wv})
		if err != nil || len(pts) != 1 {
			t.Fatalf("Get: %v (%d points)", err, len(pts))
		}
		return pts[0]
	}
	keys := func(p *qdrant.RetrievedPoint) []string {
		var k []string
		for _, n := range []string{"a", "b", "c"} {
			if _, ok := p.GetPayload()[n]; ok {
				k = append(k, n)
			}
		}
		return k
	}
	vecNames := func(p *qdrant.RetrievedPoint) []string {
		var k []string
		for _, n := range []string{"x", "y"} {
			if _, ok := p.GetVectors().GetVectors().GetVectors()[n]; ok {
				k = append(k, n)
			}
		}
		return k
	}
	if got := keys(get(nil, nil)); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("default payload keys = %v, want all", got)
	}
	if got := keys(get(qdrant.NewWithPayload(false), nil)); got != nil {
		t.Errorf("with_payload=false keys = %v, want none", got)
	}
	if got := keys(get(qdrant.NewWithPayloadInclude("a", "c"), nil)); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Errorf("include a,c keys = %v", got)
	}
	if got := keys(get(qdrant.NewWithPayloadExclude("a"), nil)); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Errorf("exclude a keys = %v", got)
	}
	if p := get(nil, nil); p.GetVectors() != nil {
		t.Errorf("default with_vectors returned %v, want none", p.GetVectors())
	}
	if got := vecNames(get(nil, qdrant.NewWithVectors(true))); !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Errorf("with_vectors=true names = %v", got)
	}
	if got := vecNames(get(nil, qdrant.NewWithVectorsInclude("y"))); !reflect.DeepEqual(got, []string{"y"}) {
		t.Errorf("with_vectors include y names = %v", got)
	}
	// Both VectorOutput wire shapes carry the same data.
	for _, dense := range []bool{false, true} {
		srv.DenseOutput = dense
		v := get(nil, qdrant.NewWithVectorsInclude("x")).GetVectors().GetVectors().GetVectors()["x"]
		if got := v.GetDenseVector().GetData(); !reflect.DeepEqual(got, []float32{1, 2}) {
			t.Errorf("DenseOutput=%v: x = %v, want [1 2]", dense, got)
		}
		if _, isOneof := v.GetVector().(*qdrant.VectorOutput_Dense); isOneof != dense {
			t.Errorf("DenseOutput=%v: dense oneof set = %v", dense, isOneof)
		}
	}
}

func TestCosineNormalisation(t *testing.T) {
	_, c := setup(t)
	createSingle(t, c, "c", 4, qdrant.Distance_Cosine)
	upsert(t, c, "c", pt(qdrant.NewIDNum(1), 3, 4, 0, 0), pt(qdrant.NewIDNum(2), 0, 0, 0, 0), pt(qdrant.NewIDNum(3), 1e-4, 0, 0, 0))
	pts, err := c.Get(t.Context(), &qdrant.GetPoints{CollectionName: "c", Ids: []*qdrant.PointId{qdrant.NewIDNum(1), qdrant.NewIDNum(2), qdrant.NewIDNum(3)}, WithVectors: qdrant.NewWithVectors(true)})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := [][]float32{{0.6, 0.8, 0, 0}, {0, 0, 0, 0}, {1e-4, 0, 0, 0}} // squared length 1e-8 < f32 epsilon: kept
	for i, p := range pts {
		if got := p.GetVectors().GetVector().GetDenseVector().GetData(); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("point %s stored as %v, want %v", idString(p.GetId()), got, want[i])
		}
	}
}

// rankingFixture: the same seven points and the query [1 0] under each
// distance. Expected orders and scores worked out by hand.
var rankingFixture = map[int][]float32{1: {1, 0}, 2: {0, 1}, 3: {1, 1}, 4: {-1, 0}, 5: {2, 0}, 6: {3, 4}, 7: {-0.5, 0}}

func TestSearchAndQueryRanking(t *testing.T) {
	r2 := float32(math.Sqrt2)
	for _, tc := range []struct {
		d      qdrant.Distance
		ids    []string
		scores []float32
	}{
		// Cosine: vectors normalised on insert; ties (1 and 5: both [1 0]) by id.
		{qdrant.Distance_Cosine, []string{"1", "5", "3", "6", "2", "4", "7"}, []float32{1, 1, 1 / r2, 0.6, 0, -1, -1}},
		{qdrant.Distance_Dot, []string{"6", "5", "1", "3", "2", "7", "4"}, []float32{3, 2, 1, 1, 0, -0.5, -1}},
		// Euclid and Manhattan report distances, nearest first.
		{qdrant.Distance_Euclid, []string{"1", "3", "5", "2", "7", "4", "6"}, []float32{0, 1, 1, r2, 1.5, 2, float32(math.Sqrt(20))}},
		{qdrant.Distance_Manhattan, []string{"1", "3", "5", "7", "2", "4", "6"}, []float32{0, 1, 1, 1.5, 2, 2, 6}},
	} {
		t.Run(tc.d.String(), func(t *testing.T) {
			_, c := setup(t)
			createSingle(t, c, "r", 2, tc.d)
			for id, v := range rankingFixture {
				upsert(t, c, "r", &qdrant.PointStruct{Id: qdrant.NewIDNum(uint64(id)), Vectors: qdrant.NewVectorsDense(v), Payload: qdrant.NewValueMap(map[string]any{"id": id})})
			}
			check := func(what string, gotIDs []string, pts []*qdrant.ScoredPoint, wantIDs []string, wantScores []float32) {
				t.Helper()
				if !reflect.DeepEqual(gotIDs, wantIDs) {
					t.Errorf("%s ids = %v, want %v", what, gotIDs, wantIDs)
					return
				}
				for i, p := range pts {
					if math.Abs(float64(p.GetScore()-wantScores[i])) > 1e-6 {
						t.Errorf("%s score of %s = %v, want %v", what, gotIDs[i], p.GetScore(), wantScores[i])
					}
				}
			}
			res, err := c.GetPointsClient().Search(t.Context(), &qdrant.SearchPoints{
				CollectionName: "r", Vector: []float32{1, 0}, Limit: 10,
				Params: &qdrant.SearchParams{HnswEf: qdrant.PtrOf(uint64(128))},
			})
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			check("Search", ids(res.GetResult()), res.GetResult(), tc.ids, tc.scores)
			if p := res.GetResult()[0]; p.GetPayload() != nil || p.GetVectors() != nil {
				t.Errorf("Search without selectors returned payload %v / vectors %v, want neither", p.GetPayload(), p.GetVectors())
			}

			q, err := c.Query(t.Context(), &qdrant.QueryPoints{
				CollectionName: "r", Query: qdrant.NewQuery(1, 0), Limit: qdrant.PtrOf(uint64(3)), Offset: qdrant.PtrOf(uint64(1)),
				WithPayload: qdrant.NewWithPayload(true), WithVectors: qdrant.NewWithVectors(true),
			})
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			check("Query limit 3 offset 1", ids(q), q, tc.ids[1:4], tc.scores[1:4])
			if len(q) > 0 && (q[0].GetPayload()["id"].GetIntegerValue() == 0 || q[0].GetVectors() == nil) {
				t.Errorf("Query with selectors: payload %v vectors %v", q[0].GetPayload(), q[0].GetVectors())
			}

			// Threshold: a minimum similarity, or a maximum distance.
			th := tc.scores[2]
			q, err = c.Query(t.Context(), &qdrant.QueryPoints{CollectionName: "r", Query: qdrant.NewQuery(1, 0), ScoreThreshold: &th})
			if err != nil {
				t.Fatalf("Query with threshold: %v", err)
			}
			n := 0
			for n < len(tc.scores) && (tc.scores[n] == th || (tc.d == qdrant.Distance_Euclid || tc.d == qdrant.Distance_Manhattan) == (tc.scores[n] < th)) {
				n++
			}
			check(fmt.Sprintf("Query threshold %v", th), ids(q), q, tc.ids[:n], tc.scores[:n])

			// By id: the point itself is left out.
			q, err = c.Query(t.Context(), &qdrant.QueryPoints{CollectionName: "r", Query: qdrant.NewQueryID(qdrant.NewIDNum(1))})
			if err != nil {
				t.Fatalf("Query by id: %v", err)
			}
			var wantIDs []string
			var wantScores []float32
			for i, id := range tc.ids {
				if id != "1" {
					wantIDs, wantScores = append(wantIDs, id), append(wantScores, tc.scores[i])
				}
			}
			check("Query by id 1", ids(q), q, wantIDs, wantScores)

			_, err = c.Query(t.Context(), &qdrant.QueryPoints{CollectionName: "r", Query: qdrant.NewQuery(1, 0, 0)})
			wantCode(t, "Query wrong dim", err, codes.InvalidArgument, "expected dim: 2, got 3")
		})
	}
}

func TestAliases(t *testing.T) {
	_, c := setup(t)
	createSingle(t, c, "blue", 2, qdrant.Distance_Dot)
	createSingle(t, c, "green", 2, qdrant.Distance_Dot)
	upsert(t, c, "blue", pt(qdrant.NewIDNum(1), 1, 0))
	upsert(t, c, "green", pt(qdrant.NewIDNum(2), 1, 0))
	list := func() string {
		t.Helper()
		as, err := c.ListAliases(t.Context())
		if err != nil {
			t.Fatalf("ListAliases: %v", err)
		}
		var s []string
		for _, a := range as {
			s = append(s, a.GetAliasName()+"->"+a.GetCollectionName())
		}
		return strings.Join(s, ",")
	}
	if err := c.CreateAlias(t.Context(), "live", "blue"); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	if err := c.CreateAlias(t.Context(), "b2", "blue"); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	if got, want := list(), "b2->blue,live->blue"; got != want {
		t.Errorf("aliases = %s, want %s", got, want)
	}
	if got, err := c.ListCollectionAliases(t.Context(), "blue"); err != nil || !reflect.DeepEqual(got, []string{"b2", "live"}) {
		t.Errorf("ListCollectionAliases(blue) = %v, %v", got, err)
	}
	// Points calls resolve aliases.
	pts, err := c.Scroll(t.Context(), &qdrant.ScrollPoints{CollectionName: "live"})
	if err != nil || !reflect.DeepEqual(ids(pts), []string{"1"}) {
		t.Errorf("Scroll via alias = %v, %v; want [1]", ids(pts), err)
	}
	if ok, err := c.CollectionExists(t.Context(), "live"); err != nil || !ok {
		t.Errorf("CollectionExists(live) = %v, %v", ok, err)
	}
	// A batch with a failing action changes nothing.
	err = c.UpdateAliases(t.Context(), []*qdrant.AliasOperations{qdrant.NewAliasDelete("live"), qdrant.NewAliasRename("missing", "x")})
	wantCode(t, "rename missing alias", err, codes.NotFound, "")
	if got, want := list(), "b2->blue,live->blue"; got != want {
		t.Errorf("after a failed batch aliases = %s, want %s", got, want)
	}
	err = c.CreateAlias(t.Context(), "x", "nope")
	wantCode(t, "alias to missing collection", err, codes.NotFound, "Collection `nope` doesn't exist!")
	err = c.CreateAlias(t.Context(), "green", "blue")
	wantCode(t, "alias named like a collection", err, codes.InvalidArgument, "")
	err = c.CreateCollection(t.Context(), &qdrant.CreateCollection{CollectionName: "live", VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{Size: 2, Distance: qdrant.Distance_Dot})})
	wantCode(t, "collection named like an alias", err, codes.InvalidArgument, "Alias with the same name already exists")

	// Atomic switch, rename, delete.
	if err := c.UpdateAliases(t.Context(), []*qdrant.AliasOperations{qdrant.NewAliasDelete("live"), qdrant.NewAliasCreate("live", "green"), qdrant.NewAliasRename("b2", "old")}); err != nil {
		t.Fatalf("UpdateAliases: %v", err)
	}
	if got, want := list(), "live->green,old->blue"; got != want {
		t.Errorf("after switch aliases = %s, want %s", got, want)
	}
	if err := c.DeleteCollection(t.Context(), "blue"); err != nil {
		t.Fatalf("DeleteCollection: %v", err)
	}
	if got, want := list(), "live->green"; got != want {
		t.Errorf("after deleting blue aliases = %s, want %s", got, want)
	}
}

func TestCountGetDelete(t *testing.T) {
	_, c := setup(t)
	createSingle(t, c, "p", 1, qdrant.Distance_Dot)
	for i := 1; i <= 10; i++ {
		upsert(t, c, "p", pt(qdrant.NewIDNum(uint64(i)), float32(i)))
	}
	count := func() uint64 {
		n, err := c.Count(t.Context(), &qdrant.CountPoints{CollectionName: "p", Exact: qdrant.PtrOf(true)})
		if err != nil {
			t.Fatalf("Count: %v", err)
		}
		return n
	}
	if n := count(); n != 10 {
		t.Errorf("Count = %d, want 10", n)
	}
	res, err := c.Delete(t.Context(), &qdrant.DeletePoints{CollectionName: "p", Wait: qdrant.PtrOf(true), Points: qdrant.NewPointsSelector(qdrant.NewIDNum(3), qdrant.NewIDNum(42))})
	if err != nil || res.GetStatus() != qdrant.UpdateStatus_Completed {
		t.Fatalf("Delete = %v, %v", res, err)
	}
	_, err = c.Delete(t.Context(), &qdrant.DeletePoints{CollectionName: "p", Points: qdrant.NewPointsSelectorFilter(&qdrant.Filter{Must: []*qdrant.Condition{qdrant.NewHasID(qdrant.NewIDNum(4), qdrant.NewIDNum(5))}})})
	if err != nil {
		t.Fatalf("Delete by filter: %v", err)
	}
	if n := count(); n != 7 {
		t.Errorf("Count after deleting 3 = %d, want 7", n)
	}
	got, err := c.Get(t.Context(), &qdrant.GetPoints{CollectionName: "p", Ids: []*qdrant.PointId{qdrant.NewIDNum(9), qdrant.NewIDNum(3), qdrant.NewIDNum(1), qdrant.NewIDNum(9)}})
	if err != nil || !reflect.DeepEqual(ids(got), []string{"9", "1"}) {
		t.Errorf("Get(9,3,1,9) = %v, %v; want [9 1]", ids(got), err)
	}
}

func TestScrollHookAndCounter(t *testing.T) {
	srv, c := setup(t)
	createSingle(t, c, "h", 1, qdrant.Distance_Dot)
	for i := 1; i <= 25; i++ {
		upsert(t, c, "h", pt(qdrant.NewIDNum(uint64(i)), 1))
	}
	var pages []int
	srv.ScrollHook = func(ctx context.Context, page int) error {
		pages = append(pages, page)
		if page == 2 {
			return status.Error(codes.Unavailable, "injected")
		}
		return nil
	}
	var offset *qdrant.PointId
	var err error
	for range 3 {
		var pts []*qdrant.RetrievedPoint
		pts, offset, err = c.ScrollAndOffset(t.Context(), &qdrant.ScrollPoints{CollectionName: "h", Offset: offset, Limit: qdrant.PtrOf(uint32(10))})
		if err != nil {
			break
		}
		_ = pts
	}
	wantCode(t, "third page", err, codes.Unavailable, "injected")
	if !reflect.DeepEqual(pages, []int{0, 1, 2}) {
		t.Errorf("hook pages = %v, want [0 1 2]", pages)
	}
	if got := srv.ScrolledPoints(); got != 20 {
		t.Errorf("ScrolledPoints = %d, want 20 (the failed page does not count)", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	_, c := setup(t)
	createSingle(t, c, "cc", 2, qdrant.Distance_Cosine)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				id := uint64(g*1000 + i)
				if _, err := c.Upsert(context.Background(), &qdrant.UpsertPoints{CollectionName: "cc", Points: []*qdrant.PointStruct{pt(qdrant.NewIDNum(id), 1, float32(i))}}); err != nil {
					t.Errorf("Upsert: %v", err)
					return
				}
				if _, err := c.Scroll(context.Background(), &qdrant.ScrollPoints{CollectionName: "cc", WithVectors: qdrant.NewWithVectors(true)}); err != nil {
					t.Errorf("Scroll: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n, err := c.Count(t.Context(), &qdrant.CountPoints{CollectionName: "cc"}); err != nil || n != 400 {
		t.Errorf("Count = %d, %v; want 400", n, err)
	}
}
