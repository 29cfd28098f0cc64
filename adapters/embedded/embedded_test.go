package embedded_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/adapters/adaptertest"
	_ "github.com/ragparity/ragparity/adapters/embedded"
)

var seq atomic.Int64

func open(t *testing.T, dir, coll string) adapters.VectorStore {
	t.Helper()
	s, err := adapters.OpenVector(context.Background(), fmt.Sprintf("embedded://%s?collection=%s", filepath.ToSlash(dir), coll))
	if err != nil {
		t.Fatalf("OpenVector: %v", err)
	}
	return s
}

func harness(t *testing.T) adaptertest.Harness {
	dir := t.TempDir()
	return adaptertest.Harness{
		Name:   "embedded",
		Target: "chromem-go persistent folder " + dir,
		New: func(t *testing.T) adapters.VectorStore {
			s := open(t, dir, fmt.Sprintf("c%d", seq.Add(1)))
			t.Cleanup(func() { s.Drop(context.Background()) })
			return s
		},
		Missing: func(t *testing.T) adapters.VectorReader { return open(t, dir, "does-not-exist") },
		IDKinds: []adapters.IDKind{adapters.IDString, adapters.IDInt, adapters.IDUUID},
	}
}

func TestConformance(t *testing.T) { adaptertest.Run(t, harness(t)) }
