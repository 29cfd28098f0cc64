package pgvector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

var _ adapters.Searcher = (*Store)(nil)

// operators maps a canonical metric to pgvector's distance operator and
// the conversion of its distance to a score (higher is better).
var operators = map[string]struct {
	op    string
	score func(d float64) float64
}{
	"cosine": {"<=>", func(d float64) float64 { return 1 - d }}, // cosine similarity
	"l2":     {"<->", func(d float64) float64 { return -d }},
	"dot":    {"<#>", func(d float64) float64 { return -d }}, // <#> is the negative inner product
	"l1":     {"<+>", func(d float64) float64 { return -d }},
}

// Search runs a nearest-neighbour query ordered by the operator that
// matches the vector index's operator class (so the index is used), with
// hnsw.ef_search and ivfflat.probes pinned for this query only (SET LOCAL
// in a read-only transaction). With p.Exact, index scans are turned off
// in that transaction instead: a sequential scan ranks every row. A table without a vector index has no metric
// to read: use WithMetric to give the declared one.
func (s *Store) Search(ctx context.Context, vector []float32, k int, p adapters.SearchParams) ([]adapters.Hit, error) {
	return s.search(ctx, "", vector, k, p)
}

// WithMetric returns a Searcher over the same table that ranks by metric
// (cosine, l2, dot, l1; typically the region's declared vector.metric)
// when the table has no vector index to read the metric from, or to choose
// among several indexes. An index whose operator class contradicts metric
// is an error.
func (s *Store) WithMetric(metric string) adapters.Searcher {
	return metricSearcher{s, metric}
}

type metricSearcher struct {
	s      *Store
	metric string
}

func (m metricSearcher) Search(ctx context.Context, vector []float32, k int, p adapters.SearchParams) ([]adapters.Hit, error) {
	return m.s.search(ctx, m.metric, vector, k, p)
}

// searchMetric decides the metric of a search from the table's vector
// indexes and the declared metric.
func (s *Store) searchMetric(ti *tableInfo, declared string) (string, error) {
	var metrics []string
	seen := map[string]bool{}
	for _, ix := range ti.indexes {
		m := metricOf(ix.opclass)
		if !seen[m] {
			seen[m] = true
			metrics = append(metrics, m)
		}
	}
	switch {
	case len(metrics) == 0 && declared == "":
		return "", fmt.Errorf("pgvector: search %s: column %s has no HNSW or IVFFlat index, so the metric to rank by is unknown (declare vector.metric in the region's settings)", s.name(), s.vecCol)
	case len(metrics) == 0:
		return declared, nil
	case declared != "" && !seen[declared]:
		return "", fmt.Errorf("pgvector: search %s: the declared metric %q contradicts the vector index's operator class (%s)", s.name(), declared, opclasses(ti))
	case declared != "":
		return declared, nil
	case len(metrics) > 1:
		return "", fmt.Errorf("pgvector: search %s: column %s has vector indexes with different metrics (%s): declare vector.metric to choose one", s.name(), s.vecCol, opclasses(ti))
	}
	return metrics[0], nil
}

func opclasses(ti *tableInfo) string {
	var out []string
	for _, ix := range ti.indexes {
		out = append(out, ix.name+" "+ix.opclass)
	}
	return strings.Join(out, ", ")
}

// vectorLiteral is pgvector's text form of v, exact for float32.
func vectorLiteral(v []float32) string {
	b := make([]byte, 0, len(v)*10+2)
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
	}
	return string(append(b, ']'))
}

func (s *Store) search(ctx context.Context, declared string, vector []float32, k int, p adapters.SearchParams) ([]adapters.Hit, error) {
	if k < 1 {
		return nil, fmt.Errorf("pgvector: search %s: k must be at least 1 (got %d)", s.name(), k)
	}
	if len(vector) == 0 {
		return nil, fmt.Errorf("pgvector: search %s: empty query vector", s.name())
	}
	if p.EfSearch < 0 || p.Probes < 0 {
		return nil, fmt.Errorf("pgvector: search %s: ef_search and probes must not be negative", s.name())
	}
	ti, err := s.inspect(ctx)
	if err != nil {
		return nil, err
	}
	metric, err := s.searchMetric(ti, declared)
	if err != nil {
		return nil, err
	}
	op, ok := operators[metric]
	if !ok {
		return nil, fmt.Errorf("pgvector: search %s: metric %q cannot rank a search (want cosine, l2, dot or l1)", s.name(), metric)
	}
	if ti.vec.typmod > 0 && ti.vec.typmod != len(vector) {
		return nil, fmt.Errorf("pgvector: search %s: query vector has %d dimensions, column %s has %d", s.name(), len(vector), s.vecCol, ti.vec.typmod)
	}
	cols := []string{q(s.idCol) + "::text", "NULL::text", "NULL::text"}
	if s.payloadCol != "" {
		cols[1] = q(s.payloadCol) + "::text"
	}
	if s.textCol != "" {
		cols[2] = q(s.textCol) + "::text"
	}
	dist := s.distance(ti, op.op, p)
	lit := vectorLiteral(vector)
	kind := idKind(ti.id.typ)
	// Fetch one more than k: when it ties with the k-th, fetch more, so
	// that ties at the cut are broken by id whatever order the engine
	// returned them in.
	for limit := k + 1; ; limit *= 2 {
		hits, err := s.searchOnce(ctx, strings.Join(cols, ", "), dist, lit, limit, p, kind, op.score)
		if err != nil {
			return nil, err
		}
		adapters.SortHits(hits)
		if len(hits) <= k {
			return hits, nil
		}
		if len(hits) < limit || hits[k].Score != hits[k-1].Score {
			return hits[:k], nil
		}
	}
}

// distance is the ORDER BY expression of a search. A serving search
// orders by the expression the vector index is built on when that is a
// plain cast of the column (LangChain's dimensionless column through
// ::vector(N), a ::halfvec(N) past 2,000 dimensions), so the index is
// used; an exact search, and an index on binary_quantize (which needs the
// application's re-rank), order by the column itself.
func (s *Store) distance(ti *tableInfo, op string, p adapters.SearchParams) string {
	if !p.Exact && len(ti.indexes) == 1 {
		if m := castRE.FindStringSubmatch(ti.indexes[0].expr); m != nil && m[1] != "bit" && quantizationOf(ti.indexes[0].expr) != "binary" {
			return fmt.Sprintf("(%s) %s $1::%s(%s)", ti.indexes[0].expr, op, m[1], m[2])
		}
	}
	return fmt.Sprintf("%s %s $1::%s", q(s.vecCol), op, ti.vec.typ)
}

// exactSettings are the planner settings an exact search turns off (SET
// LOCAL), leaving the planner a sequential scan and a top-k sort.
var exactSettings = []string{"enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan"}

// searchArgs are the query arguments of a search. An exact search is
// planned afresh (QueryExecModeExec: an unnamed statement, never pgx's
// statement cache): PostgreSQL does not re-plan a cached prepared
// statement when enable_indexscan changes, so after a few serving searches
// of the same SQL its generic plan (an HNSW index scan) would answer the
// exact search too.
func searchArgs(p adapters.SearchParams, lit string) []any {
	if p.Exact {
		return []any{pgx.QueryExecModeExec, lit}
	}
	return []any{lit}
}

// searchSQL is the query of a search, ordered by the distance operator.
func searchSQL(cols, dist, table string, limit int) string {
	return fmt.Sprintf("SELECT %s, (%s)::float8 FROM %s ORDER BY %s LIMIT %d", cols, dist, table, dist, limit)
}

// beginSearch opens the read-only transaction of a search with its
// planner and index settings applied (SET LOCAL: they end with it).
func (s *Store) beginSearch(ctx context.Context, p adapters.SearchParams) (pgx.Tx, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, s.wrap("search", err)
	}
	fail := func(what string, err error) (pgx.Tx, error) {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, s.wrap(what, err)
	}
	if p.Exact {
		// A sequential scan: no index (HNSW, IVFFlat, or any other) may
		// answer an exact search (metrics.md "ΔS drift across regions").
		for _, set := range exactSettings {
			if _, err := tx.Exec(ctx, "SELECT set_config($1, 'off', true)", set); err != nil {
				return fail("search (set "+set+")", err)
			}
		}
		return tx, nil
	}
	if p.EfSearch > 0 {
		if _, err := tx.Exec(ctx, "SELECT set_config('hnsw.ef_search', $1, true)", strconv.Itoa(p.EfSearch)); err != nil {
			return fail("search (set hnsw.ef_search)", err)
		}
	}
	if p.Probes > 0 {
		if _, err := tx.Exec(ctx, "SELECT set_config('ivfflat.probes', $1, true)", strconv.Itoa(p.Probes)); err != nil {
			return fail("search (set ivfflat.probes)", err)
		}
	}
	return tx, nil
}

// Explain returns PostgreSQL's plan (EXPLAIN, text format) of the query
// Search runs for k hits with p, in a transaction set up as Search's is:
// with p.Exact it shows a sequential scan and no index.
func (s *Store) Explain(ctx context.Context, vector []float32, k int, p adapters.SearchParams) (string, error) {
	ti, err := s.inspect(ctx)
	if err != nil {
		return "", err
	}
	metric, err := s.searchMetric(ti, "")
	if err != nil {
		return "", err
	}
	op, ok := operators[metric]
	if !ok {
		return "", fmt.Errorf("pgvector: explain %s: metric %q cannot rank a search", s.name(), metric)
	}
	tx, err := s.beginSearch(ctx, p)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	dist := s.distance(ti, op.op, p)
	rows, err := tx.Query(ctx, "EXPLAIN "+searchSQL(q(s.idCol)+"::text", dist, s.from(), k+1), searchArgs(p, vectorLiteral(vector))...)
	if err != nil {
		return "", s.wrap("explain", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return "", s.wrap("explain", err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return "", s.wrap("explain", err)
	}
	return strings.Join(lines, "\n"), nil
}

func (s *Store) searchOnce(ctx context.Context, cols, dist, lit string, limit int, p adapters.SearchParams, kind parity.IDKind, score func(float64) float64) ([]adapters.Hit, error) {
	tx, err := s.beginSearch(ctx, p)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	sql := searchSQL(cols, dist, s.from(), limit)
	rows, err := tx.Query(ctx, sql, searchArgs(p, lit)...)
	if err != nil {
		return nil, s.wrap("search", err)
	}
	defer rows.Close()
	var hits []adapters.Hit
	for rows.Next() {
		var id string
		var payload, text *string
		var d float64
		if err := rows.Scan(&id, &payload, &text, &d); err != nil {
			return nil, s.wrap("search", err)
		}
		h := adapters.Hit{ID: parity.ID{Kind: kind, S: id}, Score: score(d)}
		if payload != nil {
			h.Payload = []byte(*payload)
		}
		if text != nil {
			h.Text, h.HasText = *text, true
		}
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("pgvector: search %s: %w", s.name(), err)
		}
		return nil, s.wrap("search", err)
	}
	return hits, nil
}
