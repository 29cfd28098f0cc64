package hashembed

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/ragparity/ragparity/embed"
)

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		wantDim int
		wantTag string
	}{
		{"hash", 256, "hash-fnv1a-v1/256"},
		{"hash://?dim=64", 64, "hash-fnv1a-v1/64"},
		{"HASH://?dim=64&bigrams=false", 64, "hash-fnv1a-v1/64/unigram"},
	} {
		e, err := embed.Open(tc.spec)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if got := e.Dim(); got != tc.wantDim {
			t.Errorf("%s: Dim() = %d, want %d", tc.spec, got, tc.wantDim)
		}
		if got := e.ModelTag(); got != tc.wantTag {
			t.Errorf("%s: ModelTag() = %q, want %q", tc.spec, got, tc.wantTag)
		}
	}
	for _, tc := range []struct{ spec, field string }{
		{"hash://?dim=4", "dim"},
		{"hash://?dim=x", "dim"},
		{"hash://?bigrams=maybe", "bigrams"},
		{"hash://?dims=64", "dims"},
	} {
		_, err := embed.Open(tc.spec)
		var ce *embed.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: err = %v, want a ConfigError for %s", tc.spec, err, tc.field)
		}
	}
	if _, err := embed.Open("hash://host/path"); err == nil {
		t.Error("hash://host/path: want an error")
	}
}

func TestEmbed(t *testing.T) {
	e, _ := New(64)
	texts := []string{"The quick brown fox", "the QUICK brown fox!", "lazy dog", "", "..."}
	vs, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Errorf("text %d: squared norm %v, want 1", i, s)
		}
	}
	for j := range vs[0] {
		if vs[0][j] != vs[1][j] {
			t.Fatal("case and punctuation changed the vector")
		}
	}
	for j := range vs[3] {
		if vs[3][j] != vs[4][j] || vs[3][j] != float32(1/math.Sqrt(64)) {
			t.Fatal("texts without tokens should get the fixed vector")
		}
	}
	again, _ := e.Embed(context.Background(), texts[:1])
	for j := range again[0] {
		if again[0][j] != vs[0][j] {
			t.Fatal("not deterministic")
		}
	}
}
