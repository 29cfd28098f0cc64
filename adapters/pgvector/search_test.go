package pgvector_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/adapters/pgvector"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/searchtest"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

func TestSearchConformance(t *testing.T) {
	// ef_search 100 over 300 points makes HNSW exact on the fixtures.
	searchtest.RunSearch(t, harness(t), adapters.SearchParams{EfSearch: 100})
}

func pgExec(t *testing.T, sqls ...string) {
	t.Helper()
	c, err := pgx.Connect(context.Background(), pgtest.URL())
	if err != nil {
		t.Fatalf("PostgreSQL: %v (start it with `make services`)", err)
	}
	defer c.Close(context.Background())
	for _, s := range sqls {
		if _, err := c.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// rawTable creates a table of 5000 4-dim vectors [i, 0, 0, 1] with the
// given index DDL (%s is the table name) and returns its store. (Large
// enough for the planner to use an index.)
func rawTable(t *testing.T, indexes ...string) *pgvector.Store {
	t.Helper()
	requirePG(t)
	table := uniqueTable()
	sqls := []string{
		fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, embedding vector(4), metadata jsonb, content text)", table),
		fmt.Sprintf(`INSERT INTO %s SELECT i, ARRAY[i, 0, 0, 1]::real[]::vector, jsonb_build_object('n', i), 'text ' || i FROM generate_series(1, 5000) i`, table),
	}
	for _, ix := range indexes {
		sqls = append(sqls, fmt.Sprintf(ix, table))
	}
	sqls = append(sqls, "ANALYZE "+table)
	pgExec(t, sqls...)
	s := open(t, tableURL(pgtest.URL(), table))
	t.Cleanup(func() { s.Drop(context.Background()) })
	return s.(*pgvector.Store)
}

func hitIDs(h []adapters.Hit) string {
	var out []string
	for _, x := range h {
		out = append(out, x.ID.S)
	}
	return strings.Join(out, ",")
}

// TestSearchOperatorFromIndex: the metric comes from the index's operator
// class; l2 scores are negative distances.
func TestSearchOperatorFromIndex(t *testing.T) {
	s := rawTable(t, "CREATE INDEX ON %s USING hnsw (embedding vector_l2_ops)")
	hits, err := s.Search(t.Context(), []float32{10.2, 0, 0, 1}, 3, adapters.SearchParams{EfSearch: 40})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hitIDs(hits), "10,11,9"; got != want {
		t.Errorf("l2 top 3 of [10.2,0,0,1] = %s, want %s", got, want)
	}
	if math.Abs(hits[0].Score-(-0.2)) > 1e-5 {
		t.Errorf("score of the nearest = %v, want -0.2 (negative l2 distance)", hits[0].Score)
	}
	if !hits[0].HasText || hits[0].Text != "text 10" || string(hits[0].Payload) != `{"n": 10}` {
		t.Errorf("hit = %+v", hits[0])
	}
}

// TestSearchEfSearchPinned: hnsw.ef_search reaches the query (pgvector
// returns at most ef_search rows from an HNSW scan), and only that query.
func TestSearchEfSearchPinned(t *testing.T) {
	s := rawTable(t, "CREATE INDEX ON %s USING hnsw (embedding vector_l2_ops)")
	q := []float32{50, 0, 0, 1}
	hits, err := s.Search(t.Context(), q, 10, adapters.SearchParams{EfSearch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) > 3 {
		t.Errorf("ef_search=2 returned %d hits: the setting did not reach the query", len(hits))
	}
	hits, err = s.Search(t.Context(), q, 10, adapters.SearchParams{EfSearch: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hitIDs(hits), "50,49,51,48,52,47,53,46,54,45"; got != want {
		t.Errorf("ef_search=100: %s, want %s (ties by id)", got, want)
	}
	// SET LOCAL: the pool's connections keep their default.
	c, err := s.Pool().Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	var ef string
	c.QueryRow(t.Context(), "SELECT current_setting('hnsw.ef_search', true)").Scan(&ef)
	if ef == "2" || ef == "100" {
		t.Errorf("hnsw.ef_search leaked out of the search transaction: %s", ef)
	}
}

// TestSearchIVFFlatProbes: ivfflat.probes reaches the query.
func TestSearchIVFFlatProbes(t *testing.T) {
	s := rawTable(t, "CREATE INDEX ON %s USING ivfflat (embedding vector_l2_ops) WITH (lists = 20)")
	q := []float32{100, 0, 0, 1}
	all, err := s.Search(t.Context(), q, 1000, adapters.SearchParams{Probes: 20})
	if err != nil {
		t.Fatal(err)
	}
	one, err := s.Search(t.Context(), q, 1000, adapters.SearchParams{Probes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1000 || len(one) >= len(all) {
		t.Errorf("probes=20 of 20 lists: %d hits (want 1000); probes=1: %d hits (want fewer: one list of 20)", len(all), len(one))
	}
}

// TestSearchMetricUnknown: a table without a vector index cannot say its
// metric; the error says so, and the declared metric fixes it.
func TestSearchMetricUnknown(t *testing.T) {
	s := rawTable(t)
	_, err := s.Search(t.Context(), []float32{1, 0, 0, 1}, 3, adapters.SearchParams{})
	if err == nil || !strings.Contains(err.Error(), "declare vector.metric") {
		t.Fatalf("unindexed table: error %v, want one saying to declare vector.metric", err)
	}
	hits, err := s.WithMetric("l1").Search(t.Context(), []float32{7, 0, 0, 1}, 2, adapters.SearchParams{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hitIDs(hits), "7,6"; got != want || hits[1].Score != -1 {
		t.Errorf("l1 search = %s (score %v), want %s with score -1", got, hits[1].Score, want)
	}
	// dot: score is the inner product.
	hits, err = s.WithMetric("dot").Search(t.Context(), []float32{1, 0, 0, 1}, 1, adapters.SearchParams{})
	if err != nil {
		t.Fatal(err)
	}
	if hits[0].ID.S != "5000" || hits[0].Score != 5001 {
		t.Errorf("dot search = %+v, want id 5000 with score 5001", hits[0])
	}
	if _, err := s.WithMetric("hamming").Search(t.Context(), []float32{1, 0, 0, 1}, 1, adapters.SearchParams{}); err == nil || !strings.Contains(err.Error(), "hamming") {
		t.Errorf("unknown metric: error %v", err)
	}
}

// TestSearchMetricContradiction: a declared metric that contradicts the
// index is refused; several indexes need the declared metric to choose.
func TestSearchMetricContradiction(t *testing.T) {
	s := rawTable(t, "CREATE INDEX ON %s USING hnsw (embedding vector_l2_ops)", "CREATE INDEX ON %s USING hnsw (embedding vector_cosine_ops)")
	q := []float32{3, 0, 0, 1}
	if _, err := s.Search(t.Context(), q, 1, adapters.SearchParams{}); err == nil || !strings.Contains(err.Error(), "different metrics") {
		t.Errorf("two indexes, no declared metric: error %v", err)
	}
	if _, err := s.WithMetric("dot").Search(t.Context(), q, 1, adapters.SearchParams{}); err == nil || !strings.Contains(err.Error(), "contradicts") {
		t.Errorf("declared dot over l2+cosine indexes: error %v", err)
	}
	hits, err := s.WithMetric("l2").Search(t.Context(), q, 1, adapters.SearchParams{EfSearch: 40})
	if err != nil || hitIDs(hits) != "3" {
		t.Errorf("declared l2: %v, %v; want id 3", hitIDs(hits), err)
	}
}

// TestSearchAfterPromote: points loaded through a stage and promoted are
// searchable through the index Promote built.
func TestSearchAfterPromote(t *testing.T) {
	requirePG(t)
	st := open(t, tableURL(pgtest.URL(), uniqueTable()))
	t.Cleanup(func() { st.Drop(context.Background()) })
	pts := vectortest.Points(parity.IDUUID, 100, 3)
	vectortest.Populate(t, st.(adapters.Stager), "s1", vectortest.Spec(parity.IDUUID), pts)
	hits, err := searchtest.Searcher(t, st).Search(t.Context(), pts[42].Vectors[0].Values, 1, adapters.SearchParams{EfSearch: 64})
	if err != nil {
		t.Fatal(err)
	}
	if hits[0].ID.S != pts[42].ID.S {
		t.Errorf("top 1 = %s, want %s", hits[0].ID.S, pts[42].ID.S)
	}
}

// TestSearchExactSeqScan: an exact search runs a sequential scan (EXPLAIN
// in the search's own transaction names no index) and returns the true
// nearest neighbours even where the pinned ANN effort would not; the
// serving search still uses the HNSW index.
func TestSearchExactSeqScan(t *testing.T) {
	s := rawTable(t, "CREATE INDEX ON %s USING hnsw (embedding vector_l2_ops)")
	q := []float32{50, 0, 0, 1}
	serving, err := s.Explain(t.Context(), q, 10, adapters.SearchParams{EfSearch: 40})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(serving, "Index Scan") {
		t.Errorf("serving plan uses no index scan (the test's table is too small for the planner?):\n%s", serving)
	}
	exact, err := s.Explain(t.Context(), q, 10, adapters.SearchParams{Exact: true, EfSearch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(exact, "Index") || !strings.Contains(exact, "Seq Scan") {
		t.Errorf("exact plan is not a sequential scan:\n%s", exact)
	}
	hits, err := s.Search(t.Context(), q, 10, adapters.SearchParams{Exact: true, EfSearch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hitIDs(hits), "50,49,51,48,52,47,53,46,54,45"; got != want {
		t.Errorf("exact search with ef_search=2 (ignored): %s, want %s", got, want)
	}
	c, err := s.Pool().Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	var v string
	c.QueryRow(t.Context(), "SELECT current_setting('enable_indexscan')").Scan(&v)
	if v != "on" {
		t.Errorf("enable_indexscan leaked out of the exact search's transaction: %s", v)
	}
}

// TestSearchExactAfterServingSearches: PostgreSQL keeps a cached prepared
// statement's generic plan when enable_indexscan changes, so an exact
// search that reused the serving search's statement would, after a few
// serving searches, still go through the HNSW index. On a degraded graph
// (m=2, ef_construction=4) over random vectors that index misses true
// neighbours; the exact search must not.
func TestSearchExactAfterServingSearches(t *testing.T) {
	requirePG(t)
	table := uniqueTable()
	pgExec(t,
		fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, embedding vector(32), metadata jsonb, content text)", table),
		"SELECT setseed(0.42)",
		fmt.Sprintf(`INSERT INTO %s SELECT i, (SELECT array_agg((random() - 0.5)::real) FROM generate_series(1, 32) j WHERE i > 0)::vector, '{}', 'text ' || i FROM generate_series(1, 5000) i`, table),
		fmt.Sprintf("CREATE INDEX ON %s USING hnsw (embedding vector_l2_ops) WITH (m = 2, ef_construction = 4)", table),
		"ANALYZE "+table)
	st := open(t, tableURL(pgtest.URL(), table))
	t.Cleanup(func() { st.Drop(context.Background()) })
	s := st.(*pgvector.Store)
	q := make([]float32, 32)
	for i := range q {
		q[i] = float32(math.Sin(float64(i)*2.3)) / 2
	}
	want, err := s.Search(t.Context(), q, 10, adapters.SearchParams{Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	missed := 0
	for i := 0; i < 12; i++ {
		ann, err := s.Search(t.Context(), q, 10, adapters.SearchParams{EfSearch: 10})
		if err != nil {
			t.Fatal(err)
		}
		if hitIDs(ann) != hitIDs(want) {
			missed++
		}
	}
	if missed == 0 {
		t.Fatalf("the degraded HNSW index found the exact top 10 every time: the test cannot tell index scans from exact ones")
	}
	for i := 0; i < 3; i++ {
		got, err := s.Search(t.Context(), q, 10, adapters.SearchParams{Exact: true})
		if err != nil {
			t.Fatal(err)
		}
		if hitIDs(got) != hitIDs(want) {
			t.Fatalf("exact search after 12 serving searches: %s, want %s (a cached index-scan plan answered it)", hitIDs(got), hitIDs(want))
		}
	}
}
