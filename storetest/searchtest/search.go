// Package searchtest is the conformance suite for adapters.Searcher: every
// vector backend's search_test.go runs RunSearch on its vectortest
// Harness, so that ordering, tie-breaking, scores, texts and payloads mean
// the same in every engine (the probe compares regions across engines).
package searchtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

// Searcher returns s as an adapters.Searcher or fails the test.
func Searcher(t testing.TB, s any) adapters.Searcher {
	t.Helper()
	se, ok := s.(adapters.Searcher)
	if !ok {
		t.Fatalf("%T does not implement adapters.Searcher", s)
	}
	return se
}

func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

// BruteForce ranks pts by cosine similarity to q (ties by id) and returns
// the top k ids and scores.
func BruteForce(pts []parity.Point, q []float32, k int) ([]string, []float64) {
	type sc struct {
		id string
		s  float64
	}
	all := make([]sc, len(pts))
	for i, p := range pts {
		all[i] = sc{p.ID.S, cosine(q, p.Vectors[0].Values)}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].s != all[j].s {
			return all[i].s > all[j].s
		}
		return all[i].id < all[j].id
	})
	var ids []string
	var scores []float64
	for _, x := range all[:min(k, len(all))] {
		ids = append(ids, x.id)
		scores = append(scores, x.s)
	}
	return ids, scores
}

func ids(h []adapters.Hit) []string {
	out := make([]string, len(h))
	for i, x := range h {
		out[i] = x.ID.S
	}
	return out
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// RunSearch runs the Searcher conformance tests on a backend, for the
// cosine metric (the one every backend supports). p is passed to every
// search (backends with an ANN index pin an effort that makes the small
// fixtures exact).
func RunSearch(t *testing.T, h vectortest.Harness, p adapters.SearchParams) {
	t.Logf("Searcher conformance suite: backend %s against %s", h.Name, h.Target)
	kind := h.IDKinds[0]
	pts := vectortest.Points(kind, 300, 11)
	// Five points share one vector: ties, broken by id.
	tie := pts[0].Vectors[0].Values
	for i := 295; i < 300; i++ {
		pts[i].Vectors = []parity.NamedVector{{Values: append([]float32(nil), tie...)}}
	}
	store := h.New(t)
	vectortest.Load(t, store, vectortest.Spec(kind), pts)
	se := Searcher(t, store)
	byID := map[string]parity.Point{}
	for _, p := range pts {
		byID[p.ID.S] = p
	}

	t.Run("MatchesBruteForce", func(t *testing.T) {
		for _, qi := range []int{3, 50, 120, 250} {
			q := pts[qi].Vectors[0].Values
			got, err := se.Search(t.Context(), q, 10, p)
			if err != nil {
				t.Fatal(err)
			}
			wantIDs, wantScores := BruteForce(pts, q, 10)
			if fmt.Sprint(ids(got)) != fmt.Sprint(wantIDs) {
				t.Fatalf("query %d: top 10 = %v, want %v", qi, ids(got), wantIDs)
			}
			for i, hit := range got {
				if math.Abs(hit.Score-wantScores[i]) > 1e-5 {
					t.Errorf("query %d: hit %d score %v, want cosine similarity %v", qi, i, hit.Score, wantScores[i])
				}
				if i > 0 && hit.Score > got[i-1].Score {
					t.Errorf("query %d: hits not best first: %v after %v", qi, hit.Score, got[i-1].Score)
				}
			}
		}
	})
	t.Run("TextAndPayload", func(t *testing.T) {
		got, err := se.Search(t.Context(), pts[7].Vectors[0].Values, 3, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, hit := range got {
			want := byID[hit.ID.S]
			if !hit.HasText || hit.Text != want.Text {
				t.Errorf("hit %s: text %q (has %v), want %q", hit.ID.S, hit.Text, hit.HasText, want.Text)
			}
			if !sameJSON(hit.Payload, want.Payload) {
				t.Errorf("hit %s: payload %s, want %s", hit.ID.S, hit.Payload, want.Payload)
			}
			if hit.ID.Kind != kind {
				t.Errorf("hit %s: id kind %d, want %d", hit.ID.S, hit.ID.Kind, kind)
			}
		}
	})
	t.Run("TiesBrokenByID", func(t *testing.T) {
		var group []string
		group = append(group, pts[0].ID.S)
		for i := 295; i < 300; i++ {
			group = append(group, pts[i].ID.S)
		}
		sort.Strings(group)
		for _, k := range []int{6, 3, 1} {
			got, err := se.Search(t.Context(), tie, k, p)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprint(ids(got)), fmt.Sprint(group[:k]); got != want {
				t.Errorf("k=%d over six equal vectors: %s, want the smallest ids in order %s", k, got, want)
			}
		}
	})
	t.Run("KLargerThanCollection", func(t *testing.T) {
		got, err := se.Search(t.Context(), pts[1].Vectors[0].Values, 1000, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(pts) {
			t.Errorf("k=1000 on %d points returned %d hits", len(pts), len(got))
		}
	})
	t.Run("BadK", func(t *testing.T) {
		if _, err := se.Search(t.Context(), pts[1].Vectors[0].Values, 0, p); err == nil {
			t.Error("k=0 accepted")
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := se.Search(ctx, pts[1].Vectors[0].Values, 5, p)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled search: error %v, want one wrapping context.Canceled", err)
		}
	})
	t.Run("MissingCollection", func(t *testing.T) {
		r := h.Missing(t)
		_, err := Searcher(t, r).Search(t.Context(), pts[1].Vectors[0].Values, 5, p)
		if !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("missing collection: error %v, want one wrapping adapters.ErrNotFound", err)
		}
	})
}
