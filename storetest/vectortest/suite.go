package vectortest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier"
)

// Dim is the vector dimension of suite fixtures.
const Dim = 8

// Points returns n deterministic points with ids of the given kind,
// L2-normalised float32 vectors (stable under every store's cosine
// normalisation within 1e-6), a payload and a text.
func Points(kind parity.IDKind, n int, seed uint64) []parity.Point {
	r := rand.New(rand.NewPCG(seed, 99))
	pts := make([]parity.Point, n)
	for i := range pts {
		v := make([]float32, Dim)
		var s float64
		for j := range v {
			v[j] = float32(r.NormFloat64())
			s += float64(v[j]) * float64(v[j])
		}
		for j := range v {
			v[j] = float32(float64(v[j]) / math.Sqrt(s))
		}
		pts[i] = parity.Point{
			ID:      MakeID(kind, i),
			Vectors: []parity.NamedVector{{Values: v}},
			Payload: []byte(fmt.Sprintf(`{"doc":"d%d","n":%d,"tags":["a","b"],"score":0.5}`, i/3, i)),
			Text:    fmt.Sprintf("chunk %d of the fixture corpus", i),
			HasText: true,
		}
	}
	return pts
}

// MakeID returns the i-th fixture id of a kind, in canonical form.
func MakeID(kind parity.IDKind, i int) parity.ID {
	switch kind {
	case parity.IDInt:
		return parity.ID{Kind: kind, S: fmt.Sprint(i + 1)}
	case parity.IDUUID:
		return parity.ID{Kind: kind, S: fmt.Sprintf("%08x-0000-4000-8000-%012x", i+1, uint64(i)*2654435761)}
	}
	return parity.ID{Kind: kind, S: fmt.Sprintf("doc-%05d", i)}
}

// Spec returns the suite's collection spec for an id kind.
func Spec(kind parity.IDKind) adapters.CollectionSpec {
	return adapters.CollectionSpec{Vectors: map[string]int{"": Dim}, Metric: "cosine", IDKind: kind}
}

// Load creates the collection and upserts pts in batches.
func Load(t testing.TB, s adapters.VectorStore, spec adapters.CollectionSpec, pts []parity.Point) {
	t.Helper()
	ctx := context.Background()
	if err := s.Create(ctx, spec); err != nil {
		t.Fatalf("Create: %v", err)
	}
	for i := 0; i < len(pts); i += 500 {
		if err := s.Upsert(ctx, pts[i:min(i+500, len(pts))]); err != nil {
			t.Fatalf("Upsert: %v", err)
		}
	}
}

func collect(t *testing.T, r adapters.VectorReader) map[string]parity.Point {
	t.Helper()
	got := map[string]parity.Point{}
	err := r.Scan(ctx(t), func(p *parity.Point) error {
		if _, dup := got[p.ID.S]; dup {
			return fmt.Errorf("id %s returned twice", p.ID.S)
		}
		cp := *p
		cp.Vectors = nil
		for _, v := range p.Vectors {
			cp.Vectors = append(cp.Vectors, parity.NamedVector{Name: v.Name, Values: append([]float32(nil), v.Values...)})
		}
		cp.Payload = append([]byte(nil), p.Payload...)
		got[p.ID.S] = cp
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return got
}

func hash(t *testing.T, r adapters.VectorReader) *verifier.Scan {
	t.Helper()
	s, err := verifier.HashStore(ctx(t), r, verifier.Options{})
	if err != nil {
		t.Fatalf("HashStore: %v", err)
	}
	return s
}

// Run runs the conformance suite against one backend.
func Run(t *testing.T, h Harness) {
	t.Logf("vectortest: running the conformance suite on backend %q against %s", h.Name, h.Target)
	t.Run("EmptyCollection", func(t *testing.T) {
		s := h.New(t)
		Load(t, s, Spec(h.IDKinds[0]), nil)
		st, err := s.Settings(ctx(t))
		if err != nil {
			t.Fatalf("Settings: %v", err)
		}
		if got, want := fmt.Sprint(st.Hashed["vector.dim"]), fmt.Sprint(Dim); got != want {
			t.Errorf("vector.dim = %s, want %s", got, want)
		}
		if got, want := st.Hashed["vector.metric"], "cosine"; got != want {
			t.Errorf("vector.metric = %v, want %v", got, want)
		}
		if got := len(collect(t, s)); got != 0 {
			t.Errorf("Scan of empty collection returned %d points", got)
		}
		if got := hash(t, s).Points; got != 0 {
			t.Errorf("Points = %d, want 0", got)
		}
	})
	t.Run("ManyPagesRoundTrip", func(t *testing.T) {
		s := h.New(t)
		const n = 2500
		pts := Points(h.IDKinds[0], n, 1)
		Load(t, s, Spec(h.IDKinds[0]), pts)
		got := collect(t, s)
		if len(got) != n {
			t.Fatalf("Scan returned %d points, want %d", len(got), n)
		}
		for _, p := range pts {
			g, ok := got[p.ID.S]
			if !ok {
				t.Fatalf("id %s missing from Scan", p.ID.S)
			}
			if len(g.Vectors) != 1 || g.Vectors[0].Name != "" || len(g.Vectors[0].Values) != Dim {
				t.Fatalf("id %s: vectors = %+v", p.ID.S, g.Vectors)
			}
			for j, x := range p.Vectors[0].Values {
				if d := math.Abs(float64(x - g.Vectors[0].Values[j])); d > 1e-6 {
					t.Fatalf("id %s: component %d = %v, want %v", p.ID.S, j, g.Vectors[0].Values[j], x)
				}
			}
			wp, _ := parity.CanonicalPayload(p.Payload)
			gp, err := parity.CanonicalPayload(g.Payload)
			if err != nil || string(gp) != string(wp) {
				t.Fatalf("id %s: payload = %s (%v), want %s", p.ID.S, g.Payload, err, wp)
			}
			if !g.HasText || g.Text != p.Text {
				t.Fatalf("id %s: text = %q (has %v), want %q", p.ID.S, g.Text, g.HasText, p.Text)
			}
		}
		if got := hash(t, s).Points; got != n {
			t.Errorf("HashStore Points = %d, want %d", got, n)
		}
	})
	t.Run("UpsertReplaces", func(t *testing.T) {
		s := h.New(t)
		pts := Points(h.IDKinds[0], 10, 2)
		Load(t, s, Spec(h.IDKinds[0]), pts)
		before := hash(t, s)
		upd := pts[3]
		upd.Payload = []byte(`{"doc":"changed"}`)
		if err := s.Upsert(ctx(t), []parity.Point{upd}); err != nil {
			t.Fatalf("Upsert: %v", err)
		}
		after := hash(t, s)
		if after.Points != 10 {
			t.Errorf("Points after replacing one = %d, want 10", after.Points)
		}
		if before.ContentRoot() == after.ContentRoot() {
			t.Errorf("content root unchanged after a payload change")
		}
	})
	t.Run("MissingCollection", func(t *testing.T) {
		r := h.Missing(t)
		if _, err := r.Settings(ctx(t)); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("Settings error = %v, want one wrapping ErrNotFound", err)
		}
		if err := r.Scan(ctx(t), func(*parity.Point) error { return nil }); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("Scan error = %v, want one wrapping ErrNotFound", err)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		s := h.New(t)
		Load(t, s, Spec(h.IDKinds[0]), Points(h.IDKinds[0], 50, 3))
		c, cancel := context.WithCancel(ctx(t))
		cancel()
		if err := s.Scan(c, func(*parity.Point) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Errorf("Scan with cancelled context: error = %v, want context.Canceled", err)
		}
		// A callback error stops the scan and is returned.
		stop := errors.New("stop here")
		if err := s.Scan(ctx(t), func(*parity.Point) error { return stop }); !errors.Is(err, stop) {
			t.Errorf("Scan callback error = %v, want %v", err, stop)
		}
	})
	for _, kind := range h.IDKinds {
		t.Run(fmt.Sprintf("IDKind%s", kindName(kind)), func(t *testing.T) {
			s := h.New(t)
			pts := Points(kind, 20, 4)
			Load(t, s, Spec(kind), pts)
			got := collect(t, s)
			for _, p := range pts {
				g, ok := got[p.ID.S]
				if !ok {
					t.Fatalf("id %q missing (got %d ids)", p.ID.S, len(got))
				}
				if g.ID.Kind != kind {
					t.Errorf("id %s kind = %v, want %v", p.ID.S, g.ID.Kind, kind)
				}
			}
		})
	}
	t.Run("PayloadKeyOrderAndWhitespace", func(t *testing.T) {
		a, b := h.New(t), h.New(t)
		pa := Points(h.IDKinds[0], 5, 5)
		pb := Points(h.IDKinds[0], 5, 5)
		for i := range pb {
			pa[i].Payload = []byte(`{"b":1,"a":[1,2,{"y":true,"x":null}],"c":"é"}`)
			pb[i].Payload = []byte("{ \"c\" : \"\\u00e9\",\n \"a\": [1, 2.0, {\"x\": null, \"y\": true}], \"b\": 1.0 }")
		}
		Load(t, a, Spec(h.IDKinds[0]), pa)
		Load(t, b, Spec(h.IDKinds[0]), pb)
		if ha, hb := hash(t, a), hash(t, b); ha.ContentRoot() != hb.ContentRoot() {
			t.Errorf("content roots differ for payloads that differ only in key order, spacing and number form")
		}
	})
	t.Run("ShardsReadTheirOwnRows", func(t *testing.T) { runShards(t, h) })
	if h.Hang != nil {
		t.Run("StoreStopsAnsweringMidScan", func(t *testing.T) {
			r := h.Hang(t)
			c, cancel := context.WithTimeout(ctx(t), 700*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := verifier.HashStore(c, r, verifier.Options{})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("HashStore error = %v, want one wrapping context.DeadlineExceeded", err)
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("HashStore returned after %v, want within the 700ms deadline (+slack)", el)
			}
		})
	}
}

func kindName(k parity.IDKind) string {
	switch k {
	case parity.IDInt:
		return "Int"
	case parity.IDUUID:
		return "UUID"
	}
	return "String"
}
