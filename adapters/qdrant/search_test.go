package qdrant

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/qdrant/go-client/qdrant"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/searchtest"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

// searchBase is the server the search tests use: RAGPARITY_QDRANT_URL, or
// an in-process qdranttest server.
func searchBase(t *testing.T) (base, target string) {
	if b := os.Getenv("RAGPARITY_QDRANT_URL"); b != "" {
		u, _ := url.Parse(b)
		return b, "real Qdrant server at " + u.Host
	}
	srv := qdranttest.Start(t)
	return "qdrant://" + srv.Addr(), "in-process qdrant gRPC server (qdranttest) at " + srv.Addr()
}

func searchStore(t *testing.T, base, coll string) *Store {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + coll
	u.RawQuery = "text=content"
	s, err := open(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSearchConformance(t *testing.T) {
	base, target := searchBase(t)
	searchtest.RunSearch(t, vectortest.Harness{
		Name:   "qdrant",
		Target: target,
		New: func(t *testing.T) adapters.VectorStore {
			s := searchStore(t, base, fmt.Sprintf("rp_search_%08x", rand.Uint32()))
			t.Cleanup(func() { s.Drop(context.Background()) })
			return s
		},
		Missing: func(t *testing.T) adapters.VectorReader { return searchStore(t, base, "rp_does_not_exist") },
		IDKinds: []parity.IDKind{parity.IDUUID, parity.IDInt},
	}, adapters.SearchParams{EfSearch: 128})
}

// TestSearchEuclidScoresNegated: Qdrant answers Euclid searches with
// distances; Search makes them negative so higher is better.
func TestSearchEuclidScoresNegated(t *testing.T) {
	base, _ := searchBase(t)
	s := searchStore(t, base, fmt.Sprintf("rp_search_%08x", rand.Uint32()))
	t.Cleanup(func() { s.Drop(context.Background()) })
	spec := adapters.CollectionSpec{Vectors: map[string]int{"": 2}, Metric: "l2", IDKind: parity.IDInt}
	var pts []parity.Point
	for i := 1; i <= 20; i++ {
		pts = append(pts, parity.Point{ID: parity.ID{Kind: parity.IDInt, S: fmt.Sprint(i)},
			Vectors: []parity.NamedVector{{Values: []float32{float32(i), 0}}}, Text: fmt.Sprint("t", i), HasText: true})
	}
	vectortest.Load(t, s, spec, pts)
	hits, err := s.Search(t.Context(), []float32{5.25, 0}, 3, adapters.SearchParams{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hits {
		got = append(got, h.ID.S)
	}
	if want := "5 6 4"; strings.Join(got, " ") != want {
		t.Errorf("l2 top 3 = %v, want %s", got, want)
	}
	if math.Abs(hits[0].Score-(-0.25)) > 1e-6 || hits[0].Text != "t5" || hits[0].Payload != nil {
		t.Errorf("nearest hit = %+v, want score -0.25, text t5, no payload", hits[0])
	}
}

// TestQueryRequestPinsHnswEf: the Query request carries hnsw_ef when
// ef_search is set, the vector name when there is one, and asks for the
// payload (the text lives there).
func TestQueryRequestPinsHnswEf(t *testing.T) {
	req := queryRequest("c", "", []float32{1, 2}, 11, adapters.SearchParams{EfSearch: 96})
	if req.GetParams().GetHnswEf() != 96 || req.GetLimit() != 11 || req.Using != nil {
		t.Errorf("request = %v, want hnsw_ef 96, limit 11, no using", req)
	}
	if !req.GetWithPayload().GetEnable() {
		t.Errorf("request does not ask for the payload: %v", req)
	}
	if got := req.GetQuery().GetNearest().GetDense().GetData(); len(got) != 2 || got[1] != 2 {
		t.Errorf("query vector = %v", got)
	}
	req = queryRequest("c", "text", []float32{1}, 5, adapters.SearchParams{})
	if req.Params != nil || req.GetUsing() != "text" {
		t.Errorf("request = %v, want no params and using=text", req)
	}
}

func TestSearchVectorChoice(t *testing.T) {
	named := func(names ...string) *qdrant.VectorsConfig {
		m := map[string]*qdrant.VectorParams{}
		for _, n := range names {
			m[n] = &qdrant.VectorParams{Size: 4, Distance: qdrant.Distance_Dot}
		}
		return qdrant.NewVectorsConfigMap(m)
	}
	if u, d, err := searchVector(named("text")); err != nil || u != "text" || d != qdrant.Distance_Dot {
		t.Errorf("one named vector: %q %v %v", u, d, err)
	}
	if _, _, err := searchVector(named("a", "b")); err == nil || !strings.Contains(err.Error(), "several named vectors (a, b)") {
		t.Errorf("two named vectors: error %v", err)
	}
}

// TestQueryRequestExact: an exact search asks Qdrant for exact=true and
// pins no hnsw_ef (the index is not used); the test server accepts it.
func TestQueryRequestExact(t *testing.T) {
	req := queryRequest("c", "", []float32{1, 2}, 11, adapters.SearchParams{Exact: true, EfSearch: 96})
	if !req.GetParams().GetExact() || req.GetParams().HnswEf != nil {
		t.Errorf("request params = %v, want exact=true and no hnsw_ef", req.GetParams())
	}
}
