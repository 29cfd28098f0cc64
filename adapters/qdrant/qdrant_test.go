package qdrant_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	qc "github.com/qdrant/go-client/qdrant"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/adapters/qdrant"
	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

// ---- helpers ----

func uniqueCollection() string { return fmt.Sprintf("rp_test_%08x", rand.Uint32()) }

// collURL returns base (qdrant://host:port[?params]) pointing at coll, with
// extra query parameters set.
func collURL(t testing.TB, base, coll string, params ...string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("bad base URL: %v", err)
	}
	u.Path = "/" + coll
	q := u.Query()
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t testing.TB, raw string) *qdrant.Store {
	t.Helper()
	s, err := adapters.OpenVector(context.Background(), raw)
	if err != nil {
		t.Fatalf("OpenVector: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	qs, ok := s.(*qdrant.Store)
	if !ok {
		t.Fatalf("OpenVector returned %T, want *qdrant.Store", s)
	}
	return qs
}

func newStore(t testing.TB, srv *qdranttest.Server, params ...string) *qdrant.Store {
	t.Helper()
	s := open(t, collURL(t, "qdrant://"+srv.Addr(), uniqueCollection(), params...))
	t.Cleanup(func() { s.Drop(context.Background()) })
	return s
}

func scanAll(t testing.TB, ctx context.Context, s adapters.VectorReader) []parity.Point {
	t.Helper()
	var out []parity.Point
	err := s.Scan(ctx, func(p *parity.Point) error {
		cp := *p
		cp.Vectors = nil
		for _, v := range p.Vectors {
			cp.Vectors = append(cp.Vectors, parity.NamedVector{Name: v.Name, Values: append([]float32(nil), v.Values...)})
		}
		cp.Payload = append([]byte(nil), p.Payload...)
		if p.Payload == nil {
			cp.Payload = nil
		}
		out = append(out, cp)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return out
}

// ---- conformance ----

func harness(t *testing.T) vectortest.Harness {
	if base := os.Getenv("RAGPARITY_QDRANT_URL"); base != "" {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("RAGPARITY_QDRANT_URL: %v", adapters.RedactErr(err))
		}
		probe := open(t, collURL(t, base, "rp_probe"))
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := probe.Client().ListCollections(ctx); err != nil {
			t.Fatalf("RAGPARITY_QDRANT_URL is set but Qdrant is not reachable at %s: %v", u.Host, err)
		}
		return vectortest.Harness{
			Name:   "qdrant",
			Target: "real Qdrant server at " + u.Host,
			New: func(t *testing.T) adapters.VectorStore {
				s := open(t, collURL(t, base, uniqueCollection(), "text", "content", "page_size", "100"))
				t.Cleanup(func() { s.Drop(context.Background()) })
				return s
			},
			Missing: func(t *testing.T) adapters.VectorReader {
				return open(t, collURL(t, base, "rp_does_not_exist_"+uniqueCollection(), "text", "content"))
			},
			IDKinds: []parity.IDKind{parity.IDInt, parity.IDUUID},
			// Qdrant cannot filter by a hash of the point id; it splits
			// by position in the scroll order (README, shards).
			ShardsByRows: true,
		}
	}
	srv := qdranttest.Start(t)
	return vectortest.Harness{
		Name:   "qdrant",
		Target: "in-process qdrant gRPC server (qdranttest) at " + srv.Addr(),
		New: func(t *testing.T) adapters.VectorStore {
			// 100 points a page: the suite's 2,500 points take 25 pages.
			return newStore(t, srv, "text", "content", "page_size", "100")
		},
		Missing: func(t *testing.T) adapters.VectorReader {
			return open(t, collURL(t, "qdrant://"+srv.Addr(), "rp_does_not_exist", "text", "content"))
		},
		IDKinds: []parity.IDKind{parity.IDInt, parity.IDUUID},
		// Qdrant cannot filter by a hash of the point id; it splits by
		// position in the scroll order (README, shards).
		ShardsByRows: true,
		Hang: func(t *testing.T) adapters.VectorReader {
			hs := qdranttest.Start(t)
			hs.ScrollHook = hangAfterFirstPage
			s := newStore(t, hs, "text", "content", "page_size", "100")
			vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 500, 9))
			return s
		},
	}
}

// hangAfterFirstPage answers page 0 and then stops answering.
func hangAfterFirstPage(ctx context.Context, page int) error {
	if page == 0 {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestConformance(t *testing.T) { vectortest.Run(t, harness(t)) }

// ---- qdrant-specific tests (in-process server) ----

func TestRegisteredScheme(t *testing.T) {
	found := false
	for _, s := range adapters.VectorSchemes() {
		found = found || s == "qdrant"
	}
	if !found {
		t.Errorf("VectorSchemes() = %v, want it to contain %q", adapters.VectorSchemes(), "qdrant")
	}
}

func TestURLErrors(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"qdrant://localhost:6334", "names no collection"},
		{"qdrant://localhost:6334/", "names no collection"},
		{"qdrant://localhost:6334/a/b", "single collection name"},
		{"qdrant://localhost:6334/c?page_size=0", "page_size"},
		{"qdrant://localhost:6334/c?page_size=x", "page_size"},
		{"qdrant://localhost:6334/c?tls=maybe", "tls"},
		{"qdrant://localhost:6334/c?colection=x", `unknown URL parameter "colection"`},
		{"qdrant://localhost:notaport/c", ""},
	} {
		_, err := adapters.OpenVector(context.Background(), tc.url)
		if err == nil {
			t.Errorf("OpenVector(%q) succeeded, want an error", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenVector(%q) error = %q, want it to mention %q", tc.url, err, tc.want)
		}
	}
}

func TestStoreAccessors(t *testing.T) {
	srv := qdranttest.Start(t)
	s := open(t, "qdrant://"+srv.Addr()+"/docs")
	if got, want := s.Collection(), "docs"; got != want {
		t.Errorf("Collection() = %q, want %q", got, want)
	}
	if s.Client() == nil {
		t.Fatalf("Client() = nil")
	}
	if _, err := s.Client().ListCollections(t.Context()); err != nil {
		t.Errorf("Client().ListCollections: %v", err)
	}
}

func TestSettingsUnnamedVector(t *testing.T) {
	srv := qdranttest.Start(t)
	s := newStore(t, srv)
	if err := s.Create(t.Context(), adapters.CollectionSpec{
		Vectors: map[string]int{"": 384}, Metric: "cosine", HNSWM: 32, IDKind: parity.IDInt,
	}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	st, err := s.Settings(t.Context())
	if err != nil {
		t.Fatalf("Settings: %v", err)
	}
	wantHashed := map[string]any{
		"vector.dim":    384,
		"vector.metric": "cosine",
	}
	if !reflect.DeepEqual(st.Hashed, wantHashed) {
		t.Errorf("Hashed = %v\nwant %v", st.Hashed, wantHashed)
	}
	wantEngine := map[string]any{
		"normalize":             "l2-on-insert",
		"index.type":            "hnsw",
		"index.m":               32,
		"index.ef_construction": 100, // Qdrant's default, not set in the spec
		"quantization":          "none",
		"on_disk":               false,
		"on_disk_payload":       true,
		"shard_number":          1,
		"replication_factor":    1,
	}
	if !reflect.DeepEqual(st.Engine, wantEngine) {
		t.Errorf("Engine = %v\nwant %v", st.Engine, wantEngine)
	}
	wantInfo := map[string]any{
		"engine":       "qdrant",
		"points_count": 0,
	}
	if !reflect.DeepEqual(st.Info, wantInfo) {
		t.Errorf("Info = %v\nwant %v", st.Info, wantInfo)
	}
}

func TestSettingsNamedVectorsOverridesAndQuantization(t *testing.T) {
	srv := qdranttest.Start(t)
	s := newStore(t, srv)
	err := s.Client().CreateCollection(t.Context(), &qc.CreateCollection{
		CollectionName: s.Collection(),
		VectorsConfig: qc.NewVectorsConfigMap(map[string]*qc.VectorParams{
			"text": {Size: 768, Distance: qc.Distance_Dot, OnDisk: qc.PtrOf(true)},
			"image": {
				Size:       512,
				Distance:   qc.Distance_Euclid,
				HnswConfig: &qc.HnswConfigDiff{M: qc.PtrOf(uint64(8)), EfConstruct: qc.PtrOf(uint64(64))},
				QuantizationConfig: qc.NewQuantizationScalar(&qc.ScalarQuantization{
					Type: qc.QuantizationType_Int8, Quantile: qc.PtrOf(float32(0.95)), AlwaysRam: qc.PtrOf(true),
				}),
			},
			"title": {Size: 64, Distance: qc.Distance_Manhattan, Datatype: qc.Datatype_Float16.Enum()},
		}),
		HnswConfig:         &qc.HnswConfigDiff{EfConstruct: qc.PtrOf(uint64(256))},
		QuantizationConfig: qc.NewQuantizationProduct(&qc.ProductQuantization{Compression: qc.CompressionRatio_x16}),
		OnDiskPayload:      qc.PtrOf(false),
		ShardNumber:        qc.PtrOf(uint32(3)),
	})
	if err != nil {
		t.Fatalf("CreateCollection: %v", err)
	}
	st, err := s.Settings(t.Context())
	if err != nil {
		t.Fatalf("Settings: %v", err)
	}
	wantHashed := map[string]any{
		"vector.image.dim":    512,
		"vector.image.metric": "l2",
		"vector.text.dim":     768,
		"vector.text.metric":  "dot",
		"vector.title.dim":    64,
		"vector.title.metric": "l1",
	}
	if !reflect.DeepEqual(st.Hashed, wantHashed) {
		t.Errorf("Hashed:\n got %v\nwant %v", st.Hashed, wantHashed)
	}
	wantEngine := map[string]any{
		"index.type":                         "hnsw",
		"index.m":                            16,
		"index.ef_construction":              256,
		"quantization":                       "product:x16",
		"vector.image.normalize":             "none",
		"vector.image.index.m":               8,
		"vector.image.index.ef_construction": 64,
		"vector.image.quantization":          "scalar:int8:q=0.95:always_ram=true",
		"vector.text.normalize":              "none",
		"vector.title.normalize":             "none",
		"vector.title.datatype":              "float16",
		"vector.image.on_disk":               false,
		"vector.text.on_disk":                true,
		"vector.title.on_disk":               false,
		"on_disk_payload":                    false,
		"shard_number":                       3,
		"replication_factor":                 1,
	}
	if !reflect.DeepEqual(st.Engine, wantEngine) {
		t.Errorf("Engine:\n got %v\nwant %v", st.Engine, wantEngine)
	}
	wantInfo := map[string]any{
		"engine":       "qdrant",
		"points_count": 0,
	}
	if !reflect.DeepEqual(st.Info, wantInfo) {
		t.Errorf("Info:\n got %v\nwant %v", st.Info, wantInfo)
	}
}

func TestSettingsQuantizationForms(t *testing.T) {
	srv := qdranttest.Start(t)
	for _, tc := range []struct {
		name string
		q    *qc.QuantizationConfig
		want string
	}{
		{"none", nil, "none"},
		{"scalar default quantile", qc.NewQuantizationScalar(&qc.ScalarQuantization{Type: qc.QuantizationType_Int8}), "scalar:int8:q=1:always_ram=false"},
		{"scalar", qc.NewQuantizationScalar(&qc.ScalarQuantization{Type: qc.QuantizationType_Int8, Quantile: qc.PtrOf(float32(0.99)), AlwaysRam: qc.PtrOf(true)}), "scalar:int8:q=0.99:always_ram=true"},
		{"product x4", qc.NewQuantizationProduct(&qc.ProductQuantization{Compression: qc.CompressionRatio_x4}), "product:x4"},
		{"binary", qc.NewQuantizationBinary(&qc.BinaryQuantization{AlwaysRam: qc.PtrOf(true)}), "binary"},
		{"binary two bits", qc.NewQuantizationBinary(&qc.BinaryQuantization{Encoding: qc.BinaryQuantizationEncoding_TwoBits.Enum()}), "binary:encoding=two_bits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, srv)
			err := s.Client().CreateCollection(t.Context(), &qc.CreateCollection{
				CollectionName:     s.Collection(),
				VectorsConfig:      qc.NewVectorsConfig(&qc.VectorParams{Size: 4, Distance: qc.Distance_Cosine}),
				QuantizationConfig: tc.q,
			})
			if err != nil {
				t.Fatalf("CreateCollection: %v", err)
			}
			st, err := s.Settings(t.Context())
			if err != nil {
				t.Fatalf("Settings: %v", err)
			}
			if got := st.Engine["quantization"]; got != tc.want {
				t.Errorf("quantization = %v, want %q", got, tc.want)
			}
		})
	}
	t.Run("vector override beats collection", func(t *testing.T) {
		s := newStore(t, srv)
		err := s.Client().CreateCollection(t.Context(), &qc.CreateCollection{
			CollectionName: s.Collection(),
			VectorsConfig: qc.NewVectorsConfig(&qc.VectorParams{
				Size: 4, Distance: qc.Distance_Dot,
				HnswConfig:         &qc.HnswConfigDiff{M: qc.PtrOf(uint64(0))},
				QuantizationConfig: qc.NewQuantizationBinary(&qc.BinaryQuantization{}),
			}),
			HnswConfig:         &qc.HnswConfigDiff{M: qc.PtrOf(uint64(24))},
			QuantizationConfig: qc.NewQuantizationProduct(&qc.ProductQuantization{Compression: qc.CompressionRatio_x32}),
		})
		if err != nil {
			t.Fatalf("CreateCollection: %v", err)
		}
		st, err := s.Settings(t.Context())
		if err != nil {
			t.Fatalf("Settings: %v", err)
		}
		for k, want := range map[string]any{"quantization": "binary", "index.m": 0, "index.ef_construction": 100, "normalize": "none"} {
			if got := st.Engine[k]; got != want {
				t.Errorf("%s = %v, want %v", k, got, want)
			}
		}
	})
}

// TestEngineDigestDiffersOnHNSW: HNSW build parameters are engine
// settings: they change the engine digest and leave the settings digest
// (and so INDEX_HASH) alone.
func TestEngineDigestDiffersOnHNSW(t *testing.T) {
	srv := qdranttest.Start(t)
	digests := func(m int) (parity.Digest, parity.Digest) {
		s := newStore(t, srv)
		if err := s.Create(t.Context(), adapters.CollectionSpec{Vectors: map[string]int{"": 8}, Metric: "cosine", HNSWM: m, IDKind: parity.IDInt}); err != nil {
			t.Fatalf("Create: %v", err)
		}
		st, err := s.Settings(t.Context())
		if err != nil {
			t.Fatalf("Settings: %v", err)
		}
		d, err := parity.SettingsDigest(st.Hashed)
		if err != nil {
			t.Fatalf("SettingsDigest: %v", err)
		}
		e, err := parity.EngineDigest(st.Engine)
		if err != nil {
			t.Fatalf("EngineDigest: %v", err)
		}
		return d, e
	}
	sa, ea := digests(16)
	sb, eb := digests(0) // 0 means Qdrant's default, 16
	sc, ec := digests(32)
	if ea != eb || ea == ec {
		t.Errorf("engine digests: m=16 vs default equal = %v, m=16 vs m=32 differ = %v; want true, true", ea == eb, ea != ec)
	}
	if sa != sb || sa != sc {
		t.Errorf("settings digests differ with m (%v %v %v): HNSW parameters must not be semantic", sa, sb, sc)
	}
}

func TestCosineNormalisedOnInsert(t *testing.T) {
	srv := qdranttest.Start(t)
	for _, tc := range []struct {
		metric string
		in     []float32
		want   []float32
	}{
		{"cosine", []float32{3, 4, 0, 0}, []float32{0.6, 0.8, 0, 0}},
		{"cosine", []float32{1, 1, 1, 1}, []float32{0.5, 0.5, 0.5, 0.5}},
		{"cosine", []float32{0, 0, 0, 0}, []float32{0, 0, 0, 0}}, // zero length: kept
		{"dot", []float32{3, 4, 0, 0}, []float32{3, 4, 0, 0}},
		{"l2", []float32{3, 4, 0, 0}, []float32{3, 4, 0, 0}},
		{"l1", []float32{-3, 4, 0, 0}, []float32{-3, 4, 0, 0}},
	} {
		s := newStore(t, srv)
		if err := s.Create(t.Context(), adapters.CollectionSpec{Vectors: map[string]int{"": 4}, Metric: tc.metric, IDKind: parity.IDInt}); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if err := s.Upsert(t.Context(), []parity.Point{{ID: parity.ID{Kind: parity.IDInt, S: "1"}, Vectors: []parity.NamedVector{{Values: tc.in}}}}); err != nil {
			t.Fatalf("Upsert: %v", err)
		}
		pts := scanAll(t, t.Context(), s)
		if len(pts) != 1 {
			t.Fatalf("%s %v: Scan returned %d points, want 1", tc.metric, tc.in, len(pts))
		}
		if got := pts[0].Vectors[0].Values; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: stored %v, Scan returned %v, want %v", tc.metric, tc.in, got, tc.want)
		}
		st, err := s.Settings(t.Context())
		if err != nil {
			t.Fatalf("Settings: %v", err)
		}
		wantNorm := "none"
		if tc.metric == "cosine" {
			wantNorm = "l2-on-insert"
		}
		if got := st.Engine["normalize"]; got != wantNorm {
			t.Errorf("%s: normalize = %v, want %q", tc.metric, got, wantNorm)
		}
	}
}

func TestScanOrderAndPaging(t *testing.T) {
	srv := qdranttest.Start(t)
	var mu sync.Mutex
	var pages []int
	srv.ScrollHook = func(ctx context.Context, page int) error {
		mu.Lock()
		pages = append(pages, page)
		mu.Unlock()
		return nil
	}
	s := newStore(t, srv, "page_size", "100")
	if err := s.Create(t.Context(), adapters.CollectionSpec{Vectors: map[string]int{"": 3}, Metric: "dot", IDKind: parity.IDUUID}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	const n = 2500
	var pts []parity.Point
	var wantInts []uint64
	var wantUUIDs []string
	for i := 0; i < n; i++ {
		var id parity.ID
		if i%2 == 0 {
			v := uint64(i*7919) % 100003
			id = parity.ID{Kind: parity.IDInt, S: fmt.Sprint(v)}
			wantInts = append(wantInts, v)
		} else {
			u := fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rand.Uint32(), i, i%4096, i%4096, rand.Uint64()>>16)
			id = parity.ID{Kind: parity.IDUUID, S: strings.ToUpper(u)} // stored and returned lower-case
			wantUUIDs = append(wantUUIDs, u)
		}
		pts = append(pts, parity.Point{ID: id, Vectors: []parity.NamedVector{{Values: []float32{float32(i), 1, 2}}}})
	}
	if err := s.Upsert(t.Context(), pts); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	srv.ResetScrolledPoints()
	got := scanAll(t, t.Context(), s)

	sort.Slice(wantInts, func(i, j int) bool { return wantInts[i] < wantInts[j] })
	sort.Strings(wantUUIDs)
	var want []string
	for _, v := range wantInts {
		want = append(want, fmt.Sprint(v))
	}
	want = append(want, wantUUIDs...)
	var gotIDs []string
	for i, p := range got {
		gotIDs = append(gotIDs, p.ID.S)
		wantKind := parity.IDInt
		if i >= len(wantInts) {
			wantKind = parity.IDUUID
		}
		if p.ID.Kind != wantKind {
			t.Fatalf("point %d (%s): kind %v, want %v", i, p.ID.S, p.ID.Kind, wantKind)
		}
	}
	if !reflect.DeepEqual(gotIDs, want) {
		t.Errorf("Scan ids are not all numeric ids ascending then UUIDs ascending (got %d ids, want %d)", len(gotIDs), len(want))
	}
	if got, want := srv.ScrolledPoints(), int64(n); got != want {
		t.Errorf("server ScrolledPoints = %d, want %d", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pages) != n/100 || pages[0] != 0 || pages[len(pages)-1] != n/100-1 {
		t.Errorf("scroll pages = %d (first %v, last %v), want %d numbered 0..%d", len(pages), pages[0], pages[len(pages)-1], n/100, n/100-1)
	}
}

func TestMissingCollection(t *testing.T) {
	srv := qdranttest.Start(t)
	s := open(t, "qdrant://"+srv.Addr()+"/nope")
	_, err := s.Settings(t.Context())
	if !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("Settings error = %v, want one wrapping adapters.ErrNotFound", err)
	}
	if got, want := fmt.Sprint(err), `qdrant: collection "nope": not found`; got != want {
		t.Errorf("Settings error = %q, want %q", got, want)
	}
	if err := s.Scan(t.Context(), func(*parity.Point) error { return nil }); !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("Scan error = %v, want one wrapping adapters.ErrNotFound", err)
	}
	if err := s.Upsert(t.Context(), []parity.Point{{ID: parity.ID{Kind: parity.IDInt, S: "1"}}}); !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("Upsert error = %v, want one wrapping adapters.ErrNotFound", err)
	}
	if err := s.Drop(t.Context()); err != nil {
		t.Errorf("Drop of a missing collection: %v, want nil", err)
	}
}

func TestCreateErrors(t *testing.T) {
	srv := qdranttest.Start(t)
	s := newStore(t, srv)
	spec := adapters.CollectionSpec{Vectors: map[string]int{"": 4}, Metric: "cosine", IDKind: parity.IDInt}
	if err := s.Create(t.Context(), spec); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if err := s.Create(t.Context(), spec); !errors.Is(err, adapters.ErrExists) {
		t.Errorf("second Create error = %v, want one wrapping adapters.ErrExists", err)
	}
	for _, tc := range []struct {
		spec adapters.CollectionSpec
		want string
	}{
		{adapters.CollectionSpec{Vectors: map[string]int{"": 4}, Metric: "cosine", IDKind: parity.IDString}, "string ids are not supported"},
		{adapters.CollectionSpec{Vectors: map[string]int{"": 4}, Metric: "hamming", IDKind: parity.IDInt}, `metric "hamming"`},
		{adapters.CollectionSpec{Vectors: map[string]int{"": 4, "x": 4}, Metric: "dot", IDKind: parity.IDInt}, "cannot be mixed"},
		{adapters.CollectionSpec{Metric: "dot", IDKind: parity.IDInt}, "no vectors"},
	} {
		err := newStore(t, srv).Create(t.Context(), tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Create(%+v) error = %v, want it to mention %q", tc.spec, err, tc.want)
		}
	}
}

func TestNamedVectorsRoundTrip(t *testing.T) {
	srv := qdranttest.Start(t)
	s := newStore(t, srv)
	if err := s.Create(t.Context(), adapters.CollectionSpec{Vectors: map[string]int{"b": 2, "a": 3}, Metric: "dot", IDKind: parity.IDInt}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	in := parity.Point{ID: parity.ID{Kind: parity.IDInt, S: "7"}, Vectors: []parity.NamedVector{
		{Name: "b", Values: []float32{1, 2}}, {Name: "a", Values: []float32{3, 4, 5}},
	}}
	if err := s.Upsert(t.Context(), []parity.Point{in}); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	for _, dense := range []bool{false, true} {
		srv.DenseOutput = dense // both wire shapes of VectorOutput
		got := scanAll(t, t.Context(), s)
		want := []parity.NamedVector{{Name: "a", Values: []float32{3, 4, 5}}, {Name: "b", Values: []float32{1, 2}}}
		if len(got) != 1 || !reflect.DeepEqual(got[0].Vectors, want) {
			t.Errorf("DenseOutput=%v: Scan vectors = %+v, want %+v (sorted by name)", dense, got, want)
		}
	}
}

func TestPayloadAndText(t *testing.T) {
	srv := qdranttest.Start(t)
	s := newStore(t, srv, "text", "content")
	if err := s.Create(t.Context(), adapters.CollectionSpec{Vectors: map[string]int{"": 2}, Metric: "dot", IDKind: parity.IDInt}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	id := func(n int) parity.ID { return parity.ID{Kind: parity.IDInt, S: fmt.Sprint(n)} }
	vec := []parity.NamedVector{{Values: []float32{1, 0}}}
	in := []parity.Point{
		{ID: id(1), Vectors: vec, Payload: []byte(`{"n":1,"f":2.5,"big":12345678901234,"neg":-3,"s":"<é>","b":true,"z":null,"l":[1,"x",{"k":[]}],"o":{"y":1,"x":{}}}`), Text: "hello", HasText: true},
		{ID: id(2), Vectors: vec, Payload: nil, Text: "only text", HasText: true},
		{ID: id(3), Vectors: vec, Payload: []byte(`{}`)},
		{ID: id(4), Vectors: vec, Payload: []byte(`{"a":1}`)},
	}
	if err := s.Upsert(t.Context(), in); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	// A non-string value under the text key stays in the payload.
	if _, err := s.Client().Upsert(t.Context(), &qc.UpsertPoints{CollectionName: s.Collection(), Wait: qc.PtrOf(true), Points: []*qc.PointStruct{{
		Id: qc.NewIDNum(5), Vectors: qc.NewVectorsDense([]float32{0, 1}), Payload: qc.NewValueMap(map[string]any{"content": 42, "d": 1.0}),
	}}}); err != nil {
		t.Fatalf("client Upsert: %v", err)
	}
	got := scanAll(t, t.Context(), s)
	want := []struct {
		payload string
		text    string
		hasText bool
	}{
		{`{"b":true,"big":12345678901234,"f":2.5,"l":[1,"x",{"k":[]}],"n":1,"neg":-3,"o":{"x":{},"y":1},"s":"<é>","z":null}`, "hello", true},
		{"", "only text", true},
		{"", "", false},
		{`{"a":1}`, "", false},
		{`{"content":42,"d":1}`, "", false},
	}
	if len(got) != len(want) {
		t.Fatalf("Scan returned %d points, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if string(g.Payload) != w.payload || (w.payload == "" && g.Payload != nil) {
			t.Errorf("point %s: payload = %q (nil %v), want %q", g.ID.S, g.Payload, g.Payload == nil, w.payload)
		}
		if g.Text != w.text || g.HasText != w.hasText {
			t.Errorf("point %s: text = %q, %v; want %q, %v", g.ID.S, g.Text, g.HasText, w.text, w.hasText)
		}
	}
	// Integers stay integers on the wire (not doubles).
	pts, err := s.Client().Get(t.Context(), &qc.GetPoints{CollectionName: s.Collection(), Ids: []*qc.PointId{qc.NewIDNum(1)}, WithPayload: qc.NewWithPayload(true)})
	if err != nil || len(pts) != 1 {
		t.Fatalf("client Get: %v (%d points)", err, len(pts))
	}
	if _, ok := pts[0].Payload["big"].GetKind().(*qc.Value_IntegerValue); !ok {
		t.Errorf("payload big stored as %T, want an integer value", pts[0].Payload["big"].GetKind())
	}
	if _, ok := pts[0].Payload["f"].GetKind().(*qc.Value_DoubleValue); !ok {
		t.Errorf("payload f stored as %T, want a double value", pts[0].Payload["f"].GetKind())
	}

	noText := newStore(t, srv)
	if err := noText.Create(t.Context(), adapters.CollectionSpec{Vectors: map[string]int{"": 2}, Metric: "dot", IDKind: parity.IDInt}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	err = noText.Upsert(t.Context(), []parity.Point{{ID: id(1), Vectors: vec, Text: "x", HasText: true}})
	if err == nil || !strings.Contains(err.Error(), "names no text key") {
		t.Errorf("Upsert of text without a text key: error = %v, want one mentioning the missing text key", err)
	}
	err = s.Upsert(t.Context(), []parity.Point{{ID: id(9), Vectors: vec, Payload: []byte(`[1]`)}})
	if err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Errorf("Upsert of a non-object payload: error = %v, want one about a JSON object", err)
	}
}

func TestAliasResolution(t *testing.T) {
	srv := qdranttest.Start(t)
	blue, green := newStore(t, srv), newStore(t, srv)
	for i, s := range []*qdrant.Store{blue, green} {
		if err := s.Create(t.Context(), adapters.CollectionSpec{Vectors: map[string]int{"": 2}, Metric: "dot", IDKind: parity.IDInt}); err != nil {
			t.Fatalf("Create: %v", err)
		}
		if err := s.Upsert(t.Context(), []parity.Point{{ID: parity.ID{Kind: parity.IDInt, S: fmt.Sprint(i + 1)}, Vectors: []parity.NamedVector{{Values: []float32{1, 2}}}}}); err != nil {
			t.Fatalf("Upsert: %v", err)
		}
	}
	if err := blue.Client().CreateAlias(t.Context(), "live", blue.Collection()); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	live := open(t, "qdrant://"+srv.Addr()+"/live")
	ids := func() []string {
		var out []string
		for _, p := range scanAll(t, t.Context(), live) {
			out = append(out, p.ID.S)
		}
		return out
	}
	if got, want := ids(), []string{"1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Scan via alias = %v, want %v", got, want)
	}
	if st, err := live.Settings(t.Context()); err != nil || st.Info["points_count"] != 1 {
		t.Errorf("Settings via alias = %v, %v; want points_count 1", st.Info, err)
	}
	// Switch the alias atomically to green.
	if err := blue.Client().UpdateAliases(t.Context(), []*qc.AliasOperations{
		qc.NewAliasDelete("live"), qc.NewAliasCreate("live", green.Collection()),
	}); err != nil {
		t.Fatalf("UpdateAliases: %v", err)
	}
	if got, want := ids(), []string{"2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Scan via alias after the switch = %v, want %v", got, want)
	}
	// Creating a collection under the alias's name is refused.
	if err := live.Create(t.Context(), adapters.CollectionSpec{Vectors: map[string]int{"": 2}, Metric: "dot", IDKind: parity.IDInt}); !errors.Is(err, adapters.ErrExists) {
		t.Errorf("Create over an alias: error = %v, want one wrapping adapters.ErrExists", err)
	}
}

func TestCancelledContext(t *testing.T) {
	srv := qdranttest.Start(t)
	s := newStore(t, srv, "text", "content")
	vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 50, 1))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	for name, call := range map[string]func() error{
		"Scan":     func() error { return s.Scan(ctx, func(*parity.Point) error { return nil }) },
		"Settings": func() error { _, err := s.Settings(ctx); return err },
		"Upsert":   func() error { return s.Upsert(ctx, vectortest.Points(parity.IDInt, 1, 2)) },
	} {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error = %v, want one wrapping context.Canceled", name, err)
		}
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("calls with a cancelled context took %v", el)
	}
	// Cancelling from inside the callback stops the scan.
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	seen := 0
	err := s.Scan(ctx2, func(*parity.Point) error {
		seen++
		if seen == 5 {
			cancel2()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || seen != 5 {
		t.Errorf("Scan cancelled at point 5: error = %v after %d points, want context.Canceled after 5", err, seen)
	}
}

func TestHangingServerHitsDeadline(t *testing.T) {
	srv := qdranttest.Start(t)
	srv.ScrollHook = hangAfterFirstPage
	s := newStore(t, srv, "page_size", "100", "text", "content")
	vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 1000, 1))
	srv.ResetScrolledPoints()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	seen := 0
	err := s.Scan(ctx, func(*parity.Point) error { seen++; return nil })
	el := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Scan error = %v, want one wrapping context.DeadlineExceeded", err)
	}
	if el > 2500*time.Millisecond {
		t.Errorf("Scan returned after %v, want within the 2s deadline", el)
	}
	if seen != 100 || srv.ScrolledPoints() != 100 {
		t.Errorf("points seen = %d, server scrolled = %d; want 100 and 100 (the first page only)", seen, srv.ScrolledPoints())
	}
}

func TestAPIKey(t *testing.T) {
	srv := qdranttest.Start(t)
	srv.APIKey = "s3cret-key"
	lisSrv := srv.Addr()

	coll := uniqueCollection()
	good := open(t, collURL(t, "qdrant://"+lisSrv, coll, "api_key", "s3cret-key"))
	if err := good.Create(t.Context(), adapters.CollectionSpec{Vectors: map[string]int{"": 2}, Metric: "dot", IDKind: parity.IDInt}); err != nil {
		t.Fatalf("Create with the right key: %v", err)
	}
	bad := open(t, collURL(t, "qdrant://"+lisSrv, coll, "api_key", "wrong-key-123"))
	_, err := bad.Settings(t.Context())
	if err == nil {
		t.Fatalf("Settings with a wrong key succeeded")
	}
	if strings.Contains(err.Error(), "wrong-key-123") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q shows the API key", err)
	}
	t.Setenv("QDRANT_API_KEY", "s3cret-key")
	fromEnv := open(t, collURL(t, "qdrant://"+lisSrv, coll))
	if _, err := fromEnv.Settings(t.Context()); err != nil {
		t.Errorf("Settings with the key from QDRANT_API_KEY: %v", err)
	}
}

func TestScanCallbackErrorStops(t *testing.T) {
	srv := qdranttest.Start(t)
	s := newStore(t, srv, "page_size", "10", "text", "content")
	vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 100, 1))
	srv.ResetScrolledPoints()
	stop := errors.New("stop")
	seen := 0
	err := s.Scan(t.Context(), func(*parity.Point) error {
		seen++
		if seen == 15 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen != 15 {
		t.Errorf("Scan = %v after %d points, want %v after 15", err, seen, stop)
	}
	if got := srv.ScrolledPoints(); got != 20 {
		t.Errorf("server scrolled %d points, want 20 (two pages of 10)", got)
	}
}
