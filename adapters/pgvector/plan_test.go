package pgvector

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/internal/pgtest"
)

// planTable creates a table (id bigint PRIMARY KEY, embedding vector(2))
// with a random name starting with prefix and returns its store and
// inspected layout; it fails (never skips) when PostgreSQL is unreachable.
func planTable(t *testing.T, prefix string) (*Store, *tableInfo) {
	t.Helper()
	ctx := context.Background()
	table := fmt.Sprintf("%s_%08x", prefix, rand.Uint32())
	u, _ := url.Parse(pgtest.TableURL(table, "id", "id", "vector", "embedding"))
	vs, err := Open(ctx, u)
	if err != nil {
		t.Fatalf("PostgreSQL with pgvector is not reachable: %v\nstart it with `make services` (scripts/services.sh)", err)
	}
	s := vs.(*Store)
	t.Cleanup(func() { s.Close() })
	if _, err := s.pool.Exec(ctx, "CREATE TABLE "+table+" (id bigint PRIMARY KEY, embedding vector(2))"); err != nil {
		t.Fatalf("PostgreSQL with pgvector: %v\nstart it with `make services` (scripts/services.sh)", err)
	}
	t.Cleanup(func() { s.pool.Exec(context.Background(), "DROP TABLE "+table) })
	ti, err := s.inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, ti
}

// explain is PostgreSQL's plan of sql, one line a node.
func explain(t *testing.T, s *Store, sql string) string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), "EXPLAIN (VERBOSE) "+sql)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}
