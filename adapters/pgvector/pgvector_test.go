package pgvector_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"testing"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/ragparity/ragparity/adapters"
	_ "github.com/ragparity/ragparity/adapters/pgvector"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

func tableURL(base, table string) string {
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("table", table)
	q.Set("id", "id")
	q.Set("vector", "embedding")
	q.Set("payload", "metadata")
	q.Set("text", "content")
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t *testing.T, raw string) adapters.VectorStore {
	t.Helper()
	s, err := adapters.OpenVector(context.Background(), raw)
	if err != nil {
		t.Fatalf("OpenVector: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// requirePG fails (never skips) with a message saying how to start the
// database when it cannot be reached.
func requirePG(t *testing.T) {
	t.Helper()
	s := open(t, tableURL(pgtest.URL(), "ragparity_probe"))
	if _, err := s.Settings(context.Background()); err != nil && !isNotFound(err) {
		t.Fatalf("PostgreSQL with pgvector is not reachable at %s: %v\nstart it with `make services` (scripts/services.sh)", adapters.Redact(pgtest.URL()), err)
	}
}

func isNotFound(err error) bool { return err != nil && errorsIs(err, adapters.ErrNotFound) }

func uniqueTable() string { return fmt.Sprintf("rp_test_%08x", rand.Uint32()) }

func harness(t *testing.T) vectortest.Harness {
	requirePG(t)
	return vectortest.Harness{
		Name:   "pgvector",
		Target: "PostgreSQL at " + adapters.Redact(pgtest.URL()),
		New: func(t *testing.T) adapters.VectorStore {
			s := open(t, tableURL(pgtest.URL(), uniqueTable()))
			t.Cleanup(func() { s.Drop(context.Background()) })
			return s
		},
		Missing: func(t *testing.T) adapters.VectorReader { return open(t, tableURL(pgtest.URL(), "rp_does_not_exist")) },
		IDKinds: []parity.IDKind{parity.IDInt, parity.IDString, parity.IDUUID},
		// Collections it creates have a primary key on the id: shards split
		// by heap block range (ScanShard).
		ShardsByRows: true,
		Hang: func(t *testing.T) adapters.VectorReader {
			table := uniqueTable()
			s := open(t, tableURL(pgtest.URL(), table))
			t.Cleanup(func() { s.Drop(context.Background()) })
			vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 3000, 9))
			u, _ := url.Parse(pgtest.URL())
			u.Host = vectortest.StallProxy(t, u.Host, 64<<10)
			return open(t, tableURL(u.String(), table))
		},
	}
}

func TestConformance(t *testing.T) { vectortest.Run(t, harness(t)) }
