package embedded_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	_ "github.com/ragparity/ragparity/adapters/embedded"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
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

func harness(t *testing.T) vectortest.Harness {
	dir := t.TempDir()
	return vectortest.Harness{
		Name:   "embedded",
		Target: "chromem-go persistent folder " + dir,
		New: func(t *testing.T) adapters.VectorStore {
			s := open(t, dir, fmt.Sprintf("c%d", seq.Add(1)))
			t.Cleanup(func() { s.Drop(context.Background()) })
			return s
		},
		Missing: func(t *testing.T) adapters.VectorReader { return open(t, dir, "does-not-exist") },
		IDKinds: []parity.IDKind{parity.IDString, parity.IDInt, parity.IDUUID},
	}
}

func TestConformance(t *testing.T) { vectortest.Run(t, harness(t)) }
