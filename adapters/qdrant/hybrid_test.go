package qdrant_test

import (
	"context"
	"strings"
	"testing"

	qc "github.com/qdrant/go-client/qdrant"
	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier"
)

// hybridPoints are points of a hybrid collection as FastEmbed and the
// LangChain hybrid templates make them: a dense vector, a sparse "bm25"
// vector and a ColBERT-style multivector. reversed gives the sparse
// (index, value) pairs in the opposite order, as another client may.
func hybridPoints(reversed bool) []parity.Point {
	var pts []parity.Point
	for i := 1; i <= 20; i++ {
		idx := []uint32{uint32(i), uint32(100 + i), uint32(5000 + 3*i)}
		val := []float32{0.5, float32(i) / 10, 1.25}
		if reversed {
			idx = []uint32{idx[2], idx[1], idx[0]}
			val = []float32{val[2], val[1], val[0]}
		}
		pts = append(pts, parity.Point{
			ID: parity.ID{Kind: parity.IDInt, S: itoa(i)},
			Vectors: []parity.NamedVector{
				{Name: "bm25", Sparse: true, Indices: idx, Values: val},
				{Name: "colbert", Multi: 2, Values: []float32{1, 0, 0, float32(i), 0, 1, float32(i), 0}},
				{Name: "dense", Values: []float32{float32(i), 1, 0, 2}},
			},
			Payload: []byte(`{"n":` + itoa(i) + `}`),
		})
	}
	return pts
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}

func createHybrid(t *testing.T, s interface {
	Client() *qc.Client
	Collection() string
}) {
	t.Helper()
	err := s.Client().CreateCollection(t.Context(), &qc.CreateCollection{
		CollectionName: s.Collection(),
		VectorsConfig: qc.NewVectorsConfigMap(map[string]*qc.VectorParams{
			"dense":   {Size: 4, Distance: qc.Distance_Dot},
			"colbert": {Size: 4, Distance: qc.Distance_Dot, MultivectorConfig: &qc.MultiVectorConfig{Comparator: qc.MultiVectorComparator_MaxSim}},
		}),
		SparseVectorsConfig: qc.NewSparseVectorsConfig(map[string]*qc.SparseVectorParams{
			"bm25": {Modifier: qc.Modifier_Idf.Enum()},
		}),
	})
	if err != nil {
		t.Fatalf("CreateCollection: %v", err)
	}
}

// TestHybridCollections: a collection with dense, sparse and multivectors
// is hashed (it used to fail with "sparse vectors are not supported"),
// every kind of vector is in the hash, the order a client sent the sparse
// pairs in does not matter, and the comparator and modifier are settings.
func TestHybridCollections(t *testing.T) {
	srv := qdranttest.Start(t)
	for _, dense := range []bool{false, true} { // legacy flat output, then the oneofs
		srv.DenseOutput = dense
		roots := map[bool]parity.Digest{}
		for _, rev := range []bool{false, true} {
			s := newStore(t, srv)
			createHybrid(t, s)
			if err := s.Upsert(t.Context(), hybridPoints(rev)); err != nil {
				t.Fatalf("Upsert: %v", err)
			}
			var got []parity.Point
			if err := s.Scan(t.Context(), func(p *parity.Point) error {
				cp := *p
				cp.Vectors = append([]parity.NamedVector(nil), p.Vectors...)
				got = append(got, cp)
				return nil
			}); err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if len(got) != 20 || len(got[0].Vectors) != 3 || !got[0].Vectors[0].Sparse || got[0].Vectors[1].Multi != 2 {
				t.Fatalf("scan: %d points, first %+v", len(got), got[0].Vectors)
			}
			for _, p := range got {
				ix := p.Vectors[0].Indices
				if ix[0] >= ix[1] || ix[1] >= ix[2] {
					t.Fatalf("sparse indices not ascending: %v", ix)
				}
			}
			sc, err := verifier.HashStore(context.Background(), s, verifier.Options{})
			if err != nil {
				t.Fatalf("HashStore: %v", err)
			}
			roots[rev] = sc.ContentRoot()
			if sc.Settings.Hashed["vector.colbert.multivector"] != "maxsim" || sc.Settings.Hashed["sparse.bm25.modifier"] != "idf" {
				t.Errorf("settings %v: want the multivector comparator and the sparse modifier", sc.Settings.Hashed)
			}
		}
		if roots[false] != roots[true] {
			t.Errorf("dense output %v: the order of sparse pairs changed the content root", dense)
		}
	}

	// Each kind of vector counts: one changed sparse value, one changed
	// multivector value, each changes the root.
	base := hybridPoints(false)
	rootOf := func(pts []parity.Point) parity.Digest {
		s := newStore(t, srv)
		createHybrid(t, s)
		if err := s.Upsert(t.Context(), pts); err != nil {
			t.Fatal(err)
		}
		sc, err := verifier.HashStore(context.Background(), s, verifier.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return sc.ContentRoot()
	}
	r0 := rootOf(base)
	sp := hybridPoints(false)
	sp[3].Vectors[0].Values = []float32{0.5, 0.4, 1.5}
	mv := hybridPoints(false)
	mv[3].Vectors[1].Values[7] = 9
	if rootOf(sp) == r0 || rootOf(mv) == r0 {
		t.Errorf("a changed sparse or multivector value left the content root unchanged")
	}
}

// TestVectorSelection: vector=NAME[,NAME] hashes and reads only those
// vectors of a hybrid collection: dense-only hashes of two collections that
// differ in their sparse vectors agree; a missing name is an error.
func TestVectorSelection(t *testing.T) {
	srv := qdranttest.Start(t)
	srv.DenseOutput = true
	a, b := newStore(t, srv), newStore(t, srv)
	createHybrid(t, a)
	createHybrid(t, b)
	pa, pb := hybridPoints(false), hybridPoints(false)
	pb[5].Vectors[0].Values = []float32{9, 9, 9}
	if err := a.Upsert(t.Context(), pa); err != nil {
		t.Fatal(err)
	}
	if err := b.Upsert(t.Context(), pb); err != nil {
		t.Fatal(err)
	}
	hash := func(coll, vec string) (*verifier.Scan, error) {
		s := open(t, srv.URL(coll)+vec)
		return verifier.HashStore(context.Background(), s, verifier.Options{})
	}
	fa, _ := hash(a.Collection(), "")
	fb, _ := hash(b.Collection(), "")
	if fa.IndexHash() == fb.IndexHash() {
		t.Fatal("collections differing in a sparse vector hash equal with every vector")
	}
	da, err := hash(a.Collection(), "?vector=dense,colbert")
	if err != nil {
		t.Fatal(err)
	}
	db, err := hash(b.Collection(), "?vector=colbert,dense")
	if err != nil {
		t.Fatal(err)
	}
	if da.IndexHash() != db.IndexHash() {
		t.Errorf("vector=dense,colbert: INDEX_HASH differs although only bm25 does (settings %v / %v)", da.Settings.Hashed, db.Settings.Hashed)
	}
	if _, ok := da.Settings.Hashed["sparse.bm25.modifier"]; ok {
		t.Errorf("bm25's settings hashed with vector=dense,colbert: %v", da.Settings.Hashed)
	}
	if _, err := hash(a.Collection(), "?vector=nope"); err == nil || !strings.Contains(err.Error(), `no named vector "nope"`) {
		t.Errorf("vector=nope: %v", err)
	}
}
