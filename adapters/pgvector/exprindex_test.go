package pgvector_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier"
)

// TestExpressionIndexes: the indexes people build on an expression of the
// vector column (LangChain's dimensionless column through a cast, with a
// partial predicate; a halfvec cast; binary quantization) are read as
// settings, with the metric from their operator class, and a table that
// lacks one differs from a table that has it in its engine settings.
func TestExpressionIndexes(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
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
		// Past HNSW's 2,000-dimension limit for vector: indexed through a
		// halfvec cast (3072 is text-embedding-3-large's size).
		{"Halfvec3072", "vector(3072)", "USING hnsw ((embedding::halfvec(3072)) halfvec_cosine_ops)",
			map[string]any{"vector.dim": 3072, "vector.metric": "cosine", "index.expression": "(embedding)::halfvec(3072)", "quantization": "halfvec"}},
	}
	engine := map[string]parity.Digest{}
	settings := map[string]parity.Settings{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			table := uniqueTable()
			id := pgx.Identifier{table}.Sanitize()
			t.Cleanup(func() { conn.Exec(context.Background(), "DROP TABLE IF EXISTS "+id) })
			rows := "INSERT INTO " + id + " VALUES (1, '[1,0,0,0]', '{\"collection\": \"c1\"}', 'a'), (2, '[0,1,0,0]', '{\"collection\": \"c1\"}', 'b')"
			if c.column == "vector(3072)" {
				rows = "INSERT INTO " + id + " SELECT i, array_fill(i::real, ARRAY[3072])::vector, '{}', 't' FROM generate_series(1, 2) i"
			}
			stmts := []string{fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, embedding %s, metadata jsonb, content text)", id, c.column), rows}
			if c.index != "" {
				stmts = append(stmts, fmt.Sprintf("CREATE INDEX ON %s %s", id, c.index))
			}
			for _, s := range stmts {
				if _, err := conn.Exec(ctx, s); err != nil {
					t.Fatalf("%s: %v", s, err)
				}
			}
			st, err := open(t, tableURL(pgtest.URL(), table)).Settings(ctx)
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
			settings[c.name] = st
		})
	}
	if engine["HalfvecCast"] == engine["NoIndex"] || engine["BinaryQuantized"] == engine["NoIndex"] {
		t.Errorf("tables with and without an expression index have one engine digest")
	}
	// The difference names the setting, as an engine difference.
	named := false
	for _, d := range parity.DiffSettings(settings["NoIndex"], settings["HalfvecCast"]) {
		named = named || (d.Key == "index.expression" && d.Engine && !d.Hashed)
	}
	if !named {
		t.Errorf("settings diff without/with the expression index does not name index.expression: %+v", parity.DiffSettings(settings["NoIndex"], settings["HalfvecCast"]))
	}
}

// TestSearchUsesTheExpressionIndex: a serving search on LangChain's
// dimensionless column orders by the index's cast, so EXPLAIN shows the
// HNSW index; the exact search scans the column.
func TestSearchUsesTheExpressionIndex(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
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
	st := open(t, tableURL(pgtest.URL(), table)).(interface {
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

// TestLangChainSharedTable: LangChain keeps every collection in one
// langchain_pg_embedding table (id varchar, collection_id uuid, embedding
// vector without a dimension, document, cmetadata). collection=NAME hashes
// one collection, joined by name since its uuid differs per region; the
// filter is reported, not hashed; a filter matching nothing, a bad where=
// and writes through a filtered store are errors.
func TestLangChainSharedTable(t *testing.T) {
	requirePG(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	urls := map[string]string{}
	for i, region := range []string{"a", "b"} {
		schema := fmt.Sprintf("rp_lc_%s_%08x", region, rand.Uint32())
		sc := pgx.Identifier{schema}.Sanitize()
		t.Cleanup(func() { conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+sc+" CASCADE") })
		stmts := []string{
			"CREATE SCHEMA " + sc,
			"CREATE SEQUENCE " + sc + ".rp_seq",
			"CREATE TABLE " + sc + ".langchain_pg_collection (uuid uuid PRIMARY KEY, name varchar NOT NULL, cmetadata json)",
			"CREATE TABLE " + sc + ".langchain_pg_embedding (id varchar PRIMARY KEY, collection_id uuid REFERENCES " + sc + ".langchain_pg_collection(uuid), embedding vector, document varchar, cmetadata jsonb)",
			// The same collection under another uuid in each region.
			fmt.Sprintf("INSERT INTO %s.langchain_pg_collection VALUES ('00000000-0000-0000-0000-00000000000%d', 'docs', '{}'), ('10000000-0000-0000-0000-00000000000%d', 'other', '{}')", sc, i+1, i+1),
			fmt.Sprintf("INSERT INTO %s.langchain_pg_embedding SELECT 'doc-' || g, '00000000-0000-0000-0000-00000000000%d', ('[' || g || ',1,0]')::vector, 'text ' || g, '{\"source\": \"s\"}' FROM generate_series(1, 30) g", sc, i+1),
			fmt.Sprintf("CREATE INDEX ON %s.langchain_pg_embedding USING hnsw ((embedding::vector(3)) vector_cosine_ops)", sc),
		}
		if region == "b" { // another collection's rows only here
			stmts = append(stmts, fmt.Sprintf("INSERT INTO %s.langchain_pg_embedding SELECT 'o-' || g, '10000000-0000-0000-0000-00000000000%d', ('[' || g || ',2,0]')::vector, 'other ' || g, '{}' FROM generate_series(1, 5) g", sc, i+1))
		}
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		urls[region] = pgtest.TableURL("langchain_pg_embedding", "schema", schema, "id", "id", "vector", "embedding", "payload", "cmetadata", "text", "document")
	}
	hashOf := func(raw string) (*verifier.Scan, error) {
		s, err := adapters.OpenVector(ctx, raw)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		return verifier.HashStore(ctx, s, verifier.Options{})
	}
	sa, err := hashOf(urls["a"] + "&collection=docs")
	if err != nil {
		t.Fatal(err)
	}
	sb, err := hashOf(urls["b"] + "&collection=docs")
	if err != nil {
		t.Fatal(err)
	}
	if sa.Points != 30 || sb.Points != 30 || sa.IndexHash() != sb.IndexHash() {
		t.Errorf("collection docs: points %d/%d, INDEX_HASH equal %v (settings %v / %v)", sa.Points, sb.Points, sa.IndexHash() == sb.IndexHash(), sa.Settings.Hashed, sb.Settings.Hashed)
	}
	if sa.Settings.Info["row_filter"] != "langchain collection docs" || sa.Settings.Hashed["vector.dim"] != 3 || sa.Settings.Engine["index.expression"] == nil {
		t.Errorf("settings %+v", sa.Settings)
	}
	whole, err := hashOf(urls["b"])
	if err != nil {
		t.Fatal(err)
	}
	if whole.Points != 35 {
		t.Errorf("whole table: %d points, want 35", whole.Points)
	}
	if w, err := hashOf(urls["b"] + "&where=" + url.QueryEscape("cmetadata->>'source' = 's'")); err != nil || w.IndexHash() != sb.IndexHash() {
		t.Errorf("where= on the same rows: %v, equal %v", err, err == nil && w.IndexHash() == sb.IndexHash())
	}
	if _, err := hashOf(urls["a"] + "&collection=missing"); err == nil || !strings.Contains(err.Error(), "matches no row") {
		t.Errorf("collection=missing: %v", err)
	}
	// A collection name is a value, never SQL.
	if _, err := hashOf(urls["a"] + "&collection=" + url.QueryEscape("docs' OR 'x'='x")); err == nil || !strings.Contains(err.Error(), "matches no row") {
		t.Errorf("collection with a quote: %v", err)
	}
	// Reads through a filter cannot write, whatever the predicate calls.
	schemaA, _ := url.Parse(urls["a"])
	seq := schemaA.Query().Get("schema") + ".rp_seq"
	if _, err := hashOf(urls["a"] + "&where=" + url.QueryEscape("nextval('"+seq+"') > 0")); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a predicate calling nextval: %v, want refused by the read-only transaction", err)
	}
	if _, err := hashOf(urls["a"] + "&where=" + url.QueryEscape("no_such_column = 1")); err == nil || !strings.Contains(err.Error(), "row filter") {
		t.Errorf("bad where=: %v", err)
	}
	s := open(t, urls["a"]+"&collection=docs")
	if err := s.Upsert(ctx, []parity.Point{{ID: parity.ID{S: "x"}, Vectors: []parity.NamedVector{{Values: []float32{1, 2, 3}}}}}); err == nil || !strings.Contains(err.Error(), "writes whole tables only") {
		t.Errorf("upsert through a filtered store: %v", err)
	}
	hits, err := s.(adapters.Searcher).Search(ctx, []float32{5, 1, 0}, 3, adapters.SearchParams{Exact: true})
	if err != nil || len(hits) != 3 {
		t.Fatalf("search: %v %v", hits, err)
	}
	for _, h := range hits {
		if strings.HasPrefix(h.ID.S, "o-") {
			t.Errorf("search through collection=docs returned %s of another collection", h.ID.S)
		}
	}
}
