package pgvector

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// column is what the catalog says of one column.
type column struct {
	name, typ string // typ: pg_type.typname (int8, text, uuid, vector, ...)
	typmod    int
}

type tableInfo struct {
	oid                    uint32
	id, vec, payload, text column
	indexes                []vecIndex
	extVersion             string
}

type vecIndex struct {
	name, method, opclass string
	options               map[string]string
	// expr is the indexed expression when the index is on an expression
	// of the vector column (a cast, binary_quantize), "" when it is on the
	// column itself; pred the partial index's predicate, "" for none.
	expr, pred string
}

var (
	// castRE finds the dimension of a cast in an index expression:
	// (embedding)::vector(384), (embedding)::halfvec(3072), ::bit(384).
	castRE = regexp.MustCompile(`::(vector|halfvec|sparsevec|bit)\((\d+)\)`)
)

// refersTo reports whether an index expression uses column col (bare or
// quoted).
func refersTo(expr, col string) bool {
	re := regexp.MustCompile(`(^|[^A-Za-z0-9_"])(` + regexp.QuoteMeta(col) + `|"` + regexp.QuoteMeta(strings.ReplaceAll(col, `"`, `""`)) + `")([^A-Za-z0-9_"]|$)`)
	return re.MatchString(expr)
}

// quantizationOf names the quantization an index expression applies.
func quantizationOf(expr string) string {
	switch {
	case strings.Contains(expr, "binary_quantize("):
		return "binary"
	case strings.Contains(expr, "::halfvec"):
		return "halfvec"
	case strings.Contains(expr, "::sparsevec"):
		return "sparsevec"
	}
	return ""
}

// metricOf maps a pgvector operator class to a canonical metric name.
func metricOf(opclass string) string {
	_, after, ok := strings.Cut(opclass, "_")
	if !ok {
		return opclass
	}
	switch strings.TrimSuffix(after, "_ops") {
	case "l2":
		return "l2"
	case "ip":
		return "dot"
	case "cosine":
		return "cosine"
	case "l1":
		return "l1"
	case "hamming":
		return "hamming"
	case "jaccard":
		return "jaccard"
	}
	return opclass
}

// defaults pgvector applies when an index has no reloption.
var indexDefaults = map[string]map[string]string{
	"hnsw":    {"m": "16", "ef_construction": "64"},
	"ivfflat": {"lists": "100"},
}

// inspect reads the table's catalog. A promote elsewhere can swap the
// table between resolving its name and reading its columns (the old
// relation is gone, so it has no columns): the name is then resolved
// again, a few times, so a reader never mistakes a swap for a bad table.
func (s *Store) inspect(ctx context.Context) (*tableInfo, error) {
	for attempt := 0; ; attempt++ {
		ti, err := s.inspectOnce(ctx)
		if errors.Is(err, errSwapped) && attempt < 5 {
			continue
		}
		if errors.Is(err, errSwapped) {
			return nil, fmt.Errorf("pgvector: table %s was replaced while its catalog was read, %d times in a row", s.name(), attempt+1)
		}
		return ti, err
	}
}

// errSwapped: the relation resolved by name disappeared before its
// columns were read.
var errSwapped = errors.New("relation replaced during inspection")

func (s *Store) inspectOnce(ctx context.Context) (*tableInfo, error) {
	ti := &tableInfo{}
	err := s.pool.QueryRow(ctx, `SELECT extversion FROM pg_extension WHERE extname = 'vector'`).Scan(&ti.extVersion)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("pgvector: %s: the vector extension is not installed in this database (CREATE EXTENSION vector)", s.where)
	}
	if err != nil {
		return nil, s.wrap("inspect", err)
	}
	var oid *uint32
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1)::oid`, s.qualified()).Scan(&oid); err != nil {
		return nil, s.wrap("inspect", err)
	}
	if oid == nil {
		return nil, fmt.Errorf("pgvector: table %s: %w", s.name(), adapters.ErrNotFound)
	}
	ti.oid = *oid
	rows, err := s.pool.Query(ctx, `SELECT a.attname, t.typname, a.atttypmod FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, ti.oid)
	if err != nil {
		return nil, s.wrap("inspect", err)
	}
	cols := map[string]column{}
	for rows.Next() {
		var c column
		var mod int32
		if err := rows.Scan(&c.name, &c.typ, &mod); err != nil {
			return nil, s.wrap("inspect", err)
		}
		c.typmod = int(mod)
		cols[c.name] = c
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("inspect", err)
	}
	if len(cols) == 0 {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class WHERE oid = $1)`, ti.oid).Scan(&exists); err != nil {
			return nil, s.wrap("inspect", err)
		}
		if !exists {
			return nil, errSwapped
		}
	}
	need := func(role, name string, types ...string) (column, error) {
		c, ok := cols[name]
		if !ok {
			return c, fmt.Errorf("pgvector: table %s has no %s column %q", s.name(), role, name)
		}
		for _, t := range types {
			if c.typ == t {
				return c, nil
			}
		}
		return c, fmt.Errorf("pgvector: table %s: %s column %q has type %s, want one of %s", s.name(), role, name, c.typ, strings.Join(types, ", "))
	}
	if ti.id, err = need("id", s.idCol, "int2", "int4", "int8", "text", "varchar", "uuid"); err != nil {
		return nil, err
	}
	if ti.vec, err = need("vector", s.vecCol, "vector", "halfvec"); err != nil {
		return nil, err
	}
	if s.payloadCol != "" {
		if ti.payload, err = need("payload", s.payloadCol, "jsonb", "json"); err != nil {
			return nil, err
		}
	}
	if s.textCol != "" {
		if ti.text, err = need("text", s.textCol, "text", "varchar"); err != nil {
			return nil, err
		}
	}
	// Every HNSW / IVFFlat index of the table: on the vector column
	// itself, or on an expression of it (LangChain's dimensionless column
	// indexed through a cast, a halfvec cast past 2,000 dimensions,
	// binary_quantize), partial or not.
	rows, err = s.pool.Query(ctx, `SELECT i.relname, am.amname, opc.opcname, COALESCE(i.reloptions, '{}'),
			COALESCE(a.attname, ''), COALESCE(pg_get_expr(x.indexprs, x.indrelid), ''), COALESCE(pg_get_expr(x.indpred, x.indrelid), '')
		FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid
		JOIN pg_am am ON am.oid = i.relam
		JOIN pg_opclass opc ON opc.oid = x.indclass[0]
		LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] AND x.indkey[0] <> 0
		WHERE x.indrelid = $1 AND am.amname IN ('hnsw', 'ivfflat')
		ORDER BY i.relname`, ti.oid)
	if err != nil {
		return nil, s.wrap("inspect", err)
	}
	for rows.Next() {
		var ix vecIndex
		var opts []string
		var att string
		if err := rows.Scan(&ix.name, &ix.method, &ix.opclass, &opts, &att, &ix.expr, &ix.pred); err != nil {
			return nil, s.wrap("inspect", err)
		}
		switch {
		case att != "" && att == s.vecCol:
			ix.expr = ""
		case att == "" && ix.expr != "" && refersTo(ix.expr, s.vecCol):
		default:
			continue // an index of another column
		}
		ix.options = map[string]string{}
		for k, v := range indexDefaults[ix.method] {
			ix.options[k] = v
		}
		for _, o := range opts {
			if k, v, ok := strings.Cut(o, "="); ok {
				ix.options[k] = v
			}
		}
		ti.indexes = append(ti.indexes, ix)
	}
	return ti, rows.Err()
}

func optValue(v string) any {
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	return v
}

// Settings reads dimension, metric and index parameters from the catalog.
// Semantic (hashed): vector.dim, vector.metric (from the index's operator
// class). Engine: vector.type (vector or halfvec storage), normalize,
// quantization, index.type and the index's build options (index.m,
// index.ef_construction, index.lists), indexes when there are several.
func (s *Store) Settings(ctx context.Context) (parity.Settings, error) {
	st := parity.NewSettings()
	ti, err := s.inspect(ctx)
	if err != nil {
		return st, err
	}
	if ti.vec.typmod > 0 {
		st.Hashed["vector.dim"] = ti.vec.typmod
	} else {
		st.Hashed["vector.dim"] = "unconstrained"
		// A dimensionless column is indexed through a cast that says it.
		for _, ix := range ti.indexes {
			if m := castRE.FindStringSubmatch(ix.expr); m != nil && m[1] != "bit" {
				n, _ := strconv.Atoi(m[2])
				st.Hashed["vector.dim"] = n
				break
			}
		}
	}
	st.Engine["vector.type"] = ti.vec.typ
	st.Engine["normalize"] = "none"
	switch ti.vec.typ {
	case "halfvec":
		st.Engine["quantization"] = "halfvec"
	default:
		st.Engine["quantization"] = "none"
	}
	st.Info["engine"] = "pgvector " + ti.extVersion
	if s.filter != "" {
		// Reported, not hashed: the filter may legitimately differ per
		// region (tenant ids, collection uuids).
		st.Info["row_filter"] = s.filterDesc
		var any bool
		if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+s.from()+")").Scan(&any); err != nil {
			return st, fmt.Errorf("pgvector: %s: row filter (%s): %w", s.name(), s.filterDesc, adapters.RedactErr(err))
		}
		if !any {
			return st, fmt.Errorf("pgvector: %s: row filter (%s) matches no row", s.name(), s.filterDesc)
		}
	}
	st.Info["id.type"] = ti.id.typ
	switch len(ti.indexes) {
	case 0:
		st.Engine["index.type"] = "none"
		st.Info["index.warning"] = fmt.Sprintf("no HNSW or IVFFlat index on column %s: the metric cannot be read from the catalog (declare vector.metric in settings)", s.vecCol)
	case 1:
		ix := ti.indexes[0]
		st.Hashed["vector.metric"] = metricOf(ix.opclass)
		st.Engine["index.type"] = ix.method
		for k, v := range ix.options {
			st.Engine["index."+k] = optValue(v)
		}
		st.Info["index.name"] = ix.name
		st.Info["index.opclass"] = ix.opclass
		if ix.expr != "" {
			st.Engine["index.expression"] = ix.expr
			if q := quantizationOf(ix.expr); q != "" {
				st.Engine["quantization"] = q
			}
		}
		if ix.pred != "" {
			st.Engine["index.predicate"] = ix.pred
		}
	default:
		st.Engine["index.type"] = "multiple"
		var descs, names []string
		for _, ix := range ti.indexes {
			keys := make([]string, 0, len(ix.options))
			for k := range ix.options {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts := []string{ix.opclass}
			if ix.expr != "" {
				parts = append(parts, "expression="+ix.expr)
			}
			if ix.pred != "" {
				parts = append(parts, "where="+ix.pred)
			}
			for _, k := range keys {
				parts = append(parts, k+"="+ix.options[k])
			}
			descs = append(descs, ix.method+"("+strings.Join(parts, ",")+")")
			names = append(names, ix.name)
		}
		sort.Strings(descs)
		st.Engine["indexes"] = descs
		st.Info["index.names"] = names
		st.Info["index.warning"] = fmt.Sprintf("%d vector indexes on column %s (%s): the metric a query uses depends on its operator", len(names), s.vecCol, strings.Join(names, ", "))
	}
	return st, nil
}

var _ adapters.SnapshotMarker = (*Store)(nil)

// SnapshotMarker names the table (server address as configured, database,
// table and its oid, which changes when the table is re-created) and the
// WAL position a scan starting now reads at: the primary's current LSN, a
// standby's replay LSN. Any write to the cluster moves it, so shards whose
// markers differ may have read different states.
func (s *Store) SnapshotMarker(ctx context.Context) (storeID, snapshot string, err error) {
	var db, oid, lsn string
	err = s.pool.QueryRow(ctx, `SELECT current_database(), coalesce(to_regclass($1)::oid::text, ''),
		(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text`, s.qualified()).Scan(&db, &oid, &lsn)
	if err != nil {
		return "", "", s.wrap("read the snapshot marker of", err)
	}
	return fmt.Sprintf("pgvector %s db=%s table=%s oid=%s", s.where, db, s.qualified(), oid), "lsn " + lsn, nil
}

var _ adapters.ChangeMarker = (*Store)(nil)

// ChangeMarker is the table's oid and file node (a re-created or truncated
// table changes them) and its insert, update and delete counters
// (pg_stat_all_tables; a transaction's counts arrive within about a second
// of its commit). A standby does not count replayed writes, so there the
// replay LSN is added: any write to the cluster moves it.
func (s *Store) ChangeMarker(ctx context.Context) (string, error) {
	var m string
	err := s.pool.QueryRow(ctx, `SELECT coalesce(r.oid::text, '-') || ' ' || coalesce(pg_relation_filenode(r.oid)::text, '-') || ' ' ||
		coalesce(st.n_tup_ins, 0) || ' ' || coalesce(st.n_tup_upd, 0) || ' ' || coalesce(st.n_tup_del, 0) ||
		CASE WHEN pg_is_in_recovery() THEN ' replay ' || pg_last_wal_replay_lsn()::text ELSE '' END
		FROM (SELECT to_regclass($1)::oid AS oid) r LEFT JOIN pg_stat_all_tables st ON st.relid = r.oid`, s.qualified()).Scan(&m)
	if err != nil {
		return "", s.wrap("read the change marker of", err)
	}
	return m, nil
}
