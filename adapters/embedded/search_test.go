package embedded_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/searchtest"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

func TestSearchConformance(t *testing.T) {
	searchtest.RunSearch(t, harness(t), adapters.SearchParams{})
}

// TestSearchFollowsPromote: after a staged rebuild is promoted, Search
// reads the physical collection the sidecar names (as Scan does), and
// text=false leaves hits without text.
func TestSearchFollowsPromote(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, "chunks")
	old := vectortest.Points(parity.IDString, 50, 1)
	vectortest.Load(t, s, vectortest.Spec(parity.IDString), old)
	fresh := vectortest.Points(parity.IDString, 50, 2)
	for i := range fresh {
		fresh[i].ID.S = fmt.Sprintf("new-%02d", i)
	}
	vectortest.Populate(t, s.(adapters.Stager), "r2", vectortest.Spec(parity.IDString), fresh)
	hits, err := searchtest.Searcher(t, s).Search(t.Context(), fresh[9].Vectors[0].Values, 1, adapters.SearchParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].ID.S != "new-09" || hits[0].Text != fresh[9].Text {
		t.Errorf("after promote: %+v, want new-09 with its text", hits)
	}
	noText, err := adapters.OpenVector(context.Background(), fmt.Sprintf("embedded://%s?collection=chunks&text=false", filepath.ToSlash(dir)))
	if err != nil {
		t.Fatal(err)
	}
	hits, err = searchtest.Searcher(t, noText).Search(t.Context(), fresh[9].Vectors[0].Values, 2, adapters.SearchParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 2 || hits[0].HasText || hits[0].Text != "" {
		t.Errorf("text=false: %+v, want 2 hits without text", hits)
	}
}

func TestSearchDimensionMismatch(t *testing.T) {
	s := open(t, t.TempDir(), "chunks")
	vectortest.Load(t, s, vectortest.Spec(parity.IDString), vectortest.Points(parity.IDString, 5, 1))
	if _, err := searchtest.Searcher(t, s).Search(t.Context(), []float32{1, 2, 3}, 2, adapters.SearchParams{}); err == nil {
		t.Error("a 3-dim query on an 8-dim collection was accepted")
	}
}
