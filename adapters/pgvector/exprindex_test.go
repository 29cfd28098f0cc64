package pgvector_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// TestExpressionIndexes: the indexes people build on an expression of the
// vector column (LangChain's dimensionless column through a cast, with a
// partial predicate; a halfvec cast; binary quantization) are read as
// settings, with the metric from their operator class, and a table that
// lacks one differs from a table that has it in its engine settings.
func TestExpressionIndexes(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, PGURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	cases := []struct {
		name, column, index string
		want                map[string]any // hashed or engine settings
	}{
		{"LangChainCastPartial", "vector", "USING hnsw ((embedding::vector(4)) vector_cosine_ops) WHERE (metadata->>'collection') = 'c1'",
			map[string]any{"vector.dim": 4, "vector.metric": "cosine", "index.type": "hnsw", "index.expression": "(embedding)::vector(4)", "index.predicate": "((metadata ->> 'collection'::text) = 'c1'::text)", "quantization": "none"}},
		{"HalfvecCast", "vector(4)", "USING hnsw ((embedding::halfvec(4)) halfvec_l2_ops)",
			map[string]any{"vector.dim": 4, "vector.metric": "l2", "index.expression": "(embedding)::halfvec(4)", "quantization": "halfvec"}},
		{"BinaryQuantized", "vector(4)", "USING hnsw ((binary_quantize(embedding)::bit(4)) bit_hamming_ops)",
			map[string]any{"vector.dim": 4, "vector.metric": "hamming", "quantization": "binary"}},
		{"NoIndex", "vector(4)", "",
			map[string]any{"vector.dim": 4, "index.type": "none"}},
	}
	engine := map[string]parity.Digest{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := uniqueTable()
			id := pgx.Identifier{table}.Sanitize()
			t.Cleanup(func() { conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+id) })
			stmts := []string{fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, embedding %s, metadata jsonb, content text)", id, c.column),
				"INSERT INTO " + id + " VALUES (1, '[1,0,0,0]', '{\"collection\": \"c1\"}', 'a'), (2, '[0,1,0,0]', '{\"collection\": \"c1\"}', 'b')"}
			if c.index != "" {
				stmts = append(stmts, fmt.Sprintf("CREATE INDEX ON %s %s", id, c.index))
			}
			for _, s := range stmts {
				if _, err := conn.Exec(ctx, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			st, err := open(t, tableURL(PGURL(), table)).Settings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for k, want := range c.want {
				got, ok := st.Hashed[k]
				if !ok {
					got = st.Engine[k]
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v (hashed %v, engine %v)", k, got, want, st.Hashed, st.Engine)
				}
			}
			if _, hashed := st.Hashed["index.expression"]; hashed {
				t.Errorf("index.expression is hashed: it is an engine setting")
			}
			d, _ := parity.EngineDigest(st.Engine)
			engine[c.name] = d
		})
	}
	if engine["HalfvecCast"] == engine["NoIndex"] || engine["BinaryQuantized"] == engine["NoIndex"] {
		t.Errorf("tables with and without an expression index have one engine digest")
	}
}

// TestSearchUsesTheExpressionIndex: a serving search on LangChain's
// dimensionless column orders by the index's cast, so EXPLAIN shows the
// HNSW index; the exact search scans the column.
func TestSearchUsesTheExpressionIndex(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, PGURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	table := uniqueTable()
	id := pgx.Identifier{table}.Sanitize()
	t.Cleanup(func() { conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+id) })
	for _, s := range []string{
		"CREATE TABLE " + id + " (id bigint PRIMARY KEY, embedding vector, metadata jsonb, content text)",
		"INSERT INTO " + id + " SELECT i, ('[' || (i % 7) || ',1,' || (i % 3) || ',2]')::vector, '{}', 't' || i FROM generate_series(1, 2000) i",
		"CREATE INDEX ON " + id + " USING hnsw ((embedding::vector(4)) vector_cosine_ops)",
		"ANALYZE " + id,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	st := open(t, tableURL(PGURL(), table)).(interface {
		Explain(context.Context, []float32, int, adapters.SearchParams) (string, error)
		Search(context.Context, []float32, int, adapters.SearchParams) ([]adapters.Hit, error)
	})
	plan, err := st.Explain(ctx, []float32{1, 1, 0, 2}, 10, adapters.SearchParams{EfSearch: 40})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "Index Scan") {
		t.Errorf("serving search does not use the expression index:\n%s", plan)
	}
	plan, err = st.Explain(ctx, []float32{1, 1, 0, 2}, 10, adapters.SearchParams{Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plan, "Index Scan") {
		t.Errorf("exact search uses an index:\n%s", plan)
	}
	hits, err := st.Search(ctx, []float32{1, 1, 0, 2}, 5, adapters.SearchParams{EfSearch: 40})
	if err != nil || len(hits) != 5 {
		t.Errorf("serving search: %d hits, %v", len(hits), err)
	}
}
