package pgvector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ragparity/ragparity/adapters"
)

// Staged rebuilds (adapters.Stager).
//
// A stage is the table <table>__rp_<name> in the live table's schema. Stage
// creates it LIKE the live table (same columns, defaults, constraints and
// non-vector indexes; the vector column sized from the spec) or, when there
// is no live table yet, from the spec. It has no ANN index while it loads:
// Promote builds the HNSW index after the bulk load (faster, as pgvector's
// documentation says) and then, in one transaction, locks the live table,
// renames it to <table>__rp_old, renames the stage to <table>, carries over
// the old table's grants, comment and owned sequences, drops the old table
// and renames the new table's indexes to stable names. A reader's statement
// sees the whole old table or the whole new one: a scan running when
// Promote starts holds its lock until it ends, and one that starts during
// the swap waits and then reads the new table.

const (
	stageInfix = "__rp_"
	// maxIdent is PostgreSQL's identifier length limit (NAMEDATALEN-1).
	maxIdent = 63
	// stageMarker starts the comment Stage puts on a stage table; the JSON
	// after it is the stageSpec Promote builds the index from.
	stageMarker = "ragparity-stage "
)

func checkStageName(name string) error { return adapters.CheckStageName("pgvector", name, "old") }

// stageSpec is what Promote needs from the spec Stage was given.
type stageSpec struct {
	Metric         string `json:"metric"`
	M              int    `json:"m,omitempty"`
	EfConstruction int    `json:"ef_construction,omitempty"`
}

// stageStore returns the store of stage name: the same columns on table
// <table>__rp_<name>, sharing s's pool.
func (s *Store) stageStore(name string) (*Store, error) {
	if err := checkStageName(name); err != nil {
		return nil, err
	}
	t := s.table + stageInfix + name
	if len(t) > maxIdent {
		return nil, fmt.Errorf("pgvector: stage table %q is longer than PostgreSQL's %d-byte identifier limit; use a shorter stage name", t, maxIdent)
	}
	st := *s
	st.table, st.stage, st.borrowed = t, true, true
	return &st, nil
}

// identName returns name, or when it is longer than PostgreSQL keeps, a
// prefix of it and a hash of the whole (PostgreSQL would truncate it
// silently, and two truncated names can collide).
func identName(name string) string {
	if len(name) <= maxIdent {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	cut := maxIdent - 9
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return fmt.Sprintf("%s_%08x", name[:cut], h.Sum32())
}

// ident quotes a relation name in the store's schema (unqualified, as the
// table is, when the URL names no schema).
func (s *Store) ident(name string) string {
	if s.schema != "" {
		return pgx.Identifier{s.schema, name}.Sanitize()
	}
	return pgx.Identifier{name}.Sanitize()
}

// literal quotes v as an SQL escape-string literal, E'...', which reads
// the same whatever standard_conforming_strings says.
func literal(v string) string {
	return "E'" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(v) + "'"
}

func specDim(spec adapters.CollectionSpec) (int, error) {
	if len(spec.Vectors) != 1 || spec.Vectors[""] <= 0 {
		return 0, errors.New("exactly one unnamed vector is supported (one vector column)")
	}
	return spec.Vectors[""], nil
}

// KeepsContent: points are kept with their payload and text only when the
// URL names a column for each (a rebuild creates them as jsonb and text).
func (s *Store) KeepsContent() error {
	var miss []string
	if s.payloadCol == "" {
		miss = append(miss, "payload= (the chunk's metadata, jsonb)")
	}
	if s.textCol == "" {
		miss = append(miss, "text= (the chunk's text)")
	}
	if len(miss) == 0 {
		return nil
	}
	return fmt.Errorf("pgvector: table %s: the URL names no %s column, so the table would keep ids and vectors only and a rebuild writes every chunk's metadata and text; add payload=metadata&text=content to the URL (or the table's own columns)", s.name(), strings.Join(miss, " and no "))
}

// Stage opens the stage called name, creating it for spec when absent; see
// the comment at the top of this file. Reopening an existing stage keeps
// its rows. The returned store writes with COPY (see Upsert); its Close
// leaves s's pool open.
func (s *Store) Stage(ctx context.Context, name string, spec adapters.CollectionSpec) (adapters.VectorStore, error) {
	if err := s.writable("stage"); err != nil {
		return nil, err
	}
	st, err := s.stageStore(name)
	if err != nil {
		return nil, err
	}
	dim, err := specDim(spec)
	if err != nil {
		return nil, fmt.Errorf("pgvector: stage %s: %w", st.name(), err)
	}
	if _, err := opclassOf(spec.Metric); err != nil {
		return nil, err
	}
	marker, err := json.Marshal(stageSpec{Metric: spec.Metric, M: spec.HNSWM, EfConstruction: spec.HNSWEfConstruction})
	if err != nil {
		return nil, err
	}
	var live *uint32
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1)::oid`, s.qualified()).Scan(&live); err != nil {
		return nil, s.wrap("stage", err)
	}
	if live != nil {
		// The live table must have the columns the URL names.
		if _, err := s.inspect(ctx); err != nil {
			return nil, err
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, st.wrap("stage", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, st.qualified()); err != nil {
		return nil, st.wrap("stage", err)
	}
	var oid *uint32
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1)::oid, to_regclass($2)::oid`, st.qualified(), s.qualified()).Scan(&oid, &live); err != nil {
		return nil, st.wrap("stage", err)
	}
	switch {
	case oid != nil:
		// Resumed rebuild: keep the rows, check the vector size.
		typ, typmod, err := st.vecType(ctx, tx, *oid)
		if err != nil {
			return nil, err
		}
		if typmod > 0 && typmod != dim {
			return nil, fmt.Errorf("pgvector: stage %s exists with %s(%d), the spec asks for dimension %d: DropStage it first", st.name(), typ, typmod, dim)
		}
	case live != nil:
		if _, err := tx.Exec(ctx, "CREATE TABLE "+st.qualified()+" (LIKE "+s.qualified()+" INCLUDING ALL)"); err != nil {
			return nil, st.wrap("stage (create like live)", err)
		}
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1)::oid`, st.qualified()).Scan(&oid); err != nil {
			return nil, st.wrap("stage", err)
		}
		if err := st.ensureUniqueID(ctx, tx, *oid); err != nil {
			return nil, err
		}
		typ, typmod, err := st.vecType(ctx, tx, *oid)
		if err != nil {
			return nil, err
		}
		if typmod != dim {
			if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s(%d)", st.qualified(), q(st.vecCol), typ, dim)); err != nil {
				return nil, st.wrap("stage (resize vector column)", err)
			}
		}
	default:
		cols := []string{
			fmt.Sprintf("%s %s PRIMARY KEY", q(s.idCol), idType(spec.IDKind)),
			fmt.Sprintf("%s vector(%d) NOT NULL", q(s.vecCol), dim),
		}
		if s.payloadCol != "" {
			cols = append(cols, q(s.payloadCol)+" jsonb")
		}
		if s.textCol != "" {
			cols = append(cols, q(s.textCol)+" text")
		}
		if _, err := tx.Exec(ctx, "CREATE TABLE "+st.qualified()+" ("+strings.Join(cols, ", ")+")"); err != nil {
			return nil, st.wrap("stage (create)", err)
		}
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1)::oid`, st.qualified()).Scan(&oid); err != nil {
			return nil, st.wrap("stage", err)
		}
	}
	// No ANN index while loading (LIKE copied the live one; an earlier
	// Promote attempt may have built one): Promote builds it.
	if err := st.dropANNIndexes(ctx, tx, *oid); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, "COMMENT ON TABLE "+st.qualified()+" IS "+literal(stageMarker+string(marker))); err != nil {
		return nil, st.wrap("stage", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, st.wrap("stage", err)
	}
	return st, nil
}

type querier interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}

// vecType returns the vector column's type name and dimension (typmod).
func (s *Store) vecType(ctx context.Context, db querier, oid uint32) (string, int, error) {
	var typ string
	var typmod int32
	err := db.QueryRow(ctx, `SELECT t.typname, a.atttypmod FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = $1 AND a.attname = $2 AND NOT a.attisdropped`, oid, s.vecCol).Scan(&typ, &typmod)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, fmt.Errorf("pgvector: table %s has no vector column %q", s.name(), s.vecCol)
	}
	if err != nil {
		return "", 0, s.wrap("stage", err)
	}
	if typ != "vector" && typ != "halfvec" {
		return "", 0, fmt.Errorf("pgvector: table %s: vector column %q has type %s, want vector or halfvec", s.name(), s.vecCol, typ)
	}
	return typ, int(typmod), nil
}

// ensureUniqueID makes sure ON CONFLICT (id) has a unique index to use:
// a table LIKE a live table without one gets a primary key (or, when it
// has another primary key, a unique index) on the id column.
func (s *Store) ensureUniqueID(ctx context.Context, db querier, oid uint32) error {
	var unique, hasPK bool
	err := db.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
			WHERE x.indrelid = $1 AND x.indisunique AND x.indnkeyatts = 1 AND x.indpred IS NULL AND x.indexprs IS NULL AND a.attname = $2),
		EXISTS (SELECT 1 FROM pg_index WHERE indrelid = $1 AND indisprimary)`, oid, s.idCol).Scan(&unique, &hasPK)
	if err != nil || unique {
		return s.wrap("stage", err)
	}
	sql := "ALTER TABLE " + s.qualified() + " ADD PRIMARY KEY (" + q(s.idCol) + ")"
	if hasPK {
		sql = "CREATE UNIQUE INDEX ON " + s.qualified() + " (" + q(s.idCol) + ")"
	}
	_, err = db.Exec(ctx, sql)
	return s.wrap("stage (unique id index)", err)
}

// dropANNIndexes drops the HNSW and IVFFlat indexes on the vector column.
func (s *Store) dropANNIndexes(ctx context.Context, db querier, oid uint32) error {
	rows, err := db.Query(ctx, `SELECT x.indexrelid::regclass::text FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am am ON am.oid = i.relam
		JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey::int2[])
		WHERE x.indrelid = $1 AND a.attname = $2 AND am.amname IN ('hnsw', 'ivfflat')`, oid, s.vecCol)
	if err != nil {
		return s.wrap("stage", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return s.wrap("stage", err)
	}
	for _, n := range names {
		if _, err := db.Exec(ctx, "DROP INDEX "+n); err != nil {
			return s.wrap("stage (drop index "+n+")", err)
		}
	}
	return nil
}

// readStageSpec reads the spec Stage left in the stage table's comment.
func (s *Store) readStageSpec(ctx context.Context) (stageSpec, error) {
	var sp stageSpec
	var oid *uint32
	var comment *string
	err := s.pool.QueryRow(ctx, `SELECT to_regclass($1)::oid, obj_description(to_regclass($1), 'pg_class')`, s.qualified()).Scan(&oid, &comment)
	if err != nil {
		return sp, s.wrap("promote", err)
	}
	if oid == nil {
		return sp, fmt.Errorf("pgvector: promote: no stage table %s: %w", s.name(), adapters.ErrNotFound)
	}
	if comment == nil || !strings.HasPrefix(*comment, stageMarker) {
		return sp, fmt.Errorf("pgvector: promote: table %s is not a ragparity stage (its comment does not start with %q); Stage it again", s.name(), stageMarker)
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(*comment, stageMarker)), &sp); err != nil {
		return sp, fmt.Errorf("pgvector: promote: stage %s: bad stage comment: %w", s.name(), err)
	}
	return sp, nil
}

// Seal builds the stage's HNSW index now (Promote keeps it), so the stage
// reports the settings, and hashes to the INDEX_HASH, it will have live.
func (s *Store) Seal(ctx context.Context, name string) error {
	st, err := s.stageStore(name)
	if err != nil {
		return err
	}
	sp, err := st.readStageSpec(ctx)
	if err != nil {
		return err
	}
	return st.buildIndex(ctx, sp)
}

var _ adapters.Sealer = (*Store)(nil)

// buildIndex builds the stage's HNSW index for sp, keeping one an earlier
// attempt already built with the same operator class and parameters.
func (s *Store) buildIndex(ctx context.Context, sp stageSpec) error {
	ti, err := s.inspect(ctx)
	if err != nil {
		return err
	}
	opc, err := opclassOf(sp.Metric)
	if err != nil {
		return err
	}
	// halfvec columns take halfvec_*_ops.
	opc = ti.vec.typ + strings.TrimPrefix(opc, "vector")
	m, ef := strconv.Itoa(sp.M), strconv.Itoa(sp.EfConstruction)
	if sp.M <= 0 {
		m = indexDefaults["hnsw"]["m"]
	}
	if sp.EfConstruction <= 0 {
		ef = indexDefaults["hnsw"]["ef_construction"]
	}
	if len(ti.indexes) == 1 {
		ix := ti.indexes[0]
		if ix.method == "hnsw" && ix.opclass == opc && ix.options["m"] == m && ix.options["ef_construction"] == ef {
			return nil
		}
	}
	for _, ix := range ti.indexes {
		if _, err := s.pool.Exec(ctx, "DROP INDEX "+s.ident(ix.name)); err != nil {
			return s.wrap("promote (drop index "+ix.name+")", err)
		}
	}
	var with []string
	if sp.M > 0 {
		with = append(with, "m = "+m)
	}
	if sp.EfConstruction > 0 {
		with = append(with, "ef_construction = "+ef)
	}
	sql := fmt.Sprintf("CREATE INDEX %s ON %s USING hnsw (%s %s)", q(identName(s.table+"_"+s.vecCol+"_hnsw")), s.qualified(), q(s.vecCol), opc)
	if len(with) > 0 {
		sql += " WITH (" + strings.Join(with, ", ") + ")"
	}
	_, err = s.pool.Exec(ctx, sql)
	return s.wrap("promote (build HNSW index)", err)
}

// Promote builds the stage's HNSW index and swaps the stage in for the
// live table in one transaction (see the comment at the top of this file).
// It fails, leaving the live table as it was, when the stage does not exist
// (the error wraps adapters.ErrNotFound) or when something else depends on
// the live table (a view, a foreign key): a table swap cannot carry those
// over. Until the swap commits, the live table's readers see it unchanged;
// the swap waits for statements already reading it, and statements that
// start meanwhile wait for the swap.
func (s *Store) Promote(ctx context.Context, name string) error {
	if err := s.writable("promote"); err != nil {
		return err
	}
	st, err := s.stageStore(name)
	if err != nil {
		return err
	}
	sp, err := st.readStageSpec(ctx)
	if err != nil {
		return err
	}
	// The slow part, outside the swap: the live table is not locked.
	if err := st.buildIndex(ctx, sp); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.wrap("promote", err)
	}
	defer tx.Rollback(ctx)
	// One Stage/Promote/DropStage per stage, one Promote per live table.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1)), pg_advisory_xact_lock(hashtext($2))`, st.qualified(), s.qualified()); err != nil {
		return s.wrap("promote", err)
	}
	var stageOID *uint32
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1)::oid`, st.qualified()).Scan(&stageOID); err != nil {
		return s.wrap("promote", err)
	}
	if stageOID == nil {
		return fmt.Errorf("pgvector: promote: no stage table %s: %w", st.name(), adapters.ErrNotFound)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+st.qualified()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		return s.wrap("promote (lock stage)", err)
	}
	var liveOID *uint32
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1)::oid`, s.qualified()).Scan(&liveOID); err != nil {
		return s.wrap("promote", err)
	}
	old := identName(s.table + stageInfix + "old")
	var (
		comment    *string
		grants     []string
		seqs       [][2]string // sequence, column
		oldIndexes []indexDef
	)
	if liveOID != nil {
		if _, err := tx.Exec(ctx, "LOCK TABLE "+s.qualified()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
			return s.wrap("promote (lock live table)", err)
		}
		if err := tx.QueryRow(ctx, `SELECT obj_description($1, 'pg_class')`, *liveOID).Scan(&comment); err != nil {
			return s.wrap("promote", err)
		}
		if grants, err = tableGrants(ctx, tx, *liveOID); err != nil {
			return s.wrap("promote (read grants)", err)
		}
		rows, err := tx.Query(ctx, `SELECT d.objid::regclass::text, a.attname FROM pg_depend d
			JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'S'
			JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
			WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
			  AND d.refobjid = $1 AND d.deptype = 'a'`, *liveOID)
		if err != nil {
			return s.wrap("promote (read sequences)", err)
		}
		var seq, col string
		if _, err := pgx.ForEachRow(rows, []any{&seq, &col}, func() error {
			seqs = append(seqs, [2]string{seq, col})
			return nil
		}); err != nil {
			return s.wrap("promote (read sequences)", err)
		}
		if oldIndexes, err = indexDefs(ctx, tx, *liveOID, s.vecCol); err != nil {
			return s.wrap("promote (list indexes)", err)
		}
		// A leftover from outside ragparity: the name is reserved.
		if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+s.ident(old)); err != nil {
			return s.wrap("promote", err)
		}
		if _, err := tx.Exec(ctx, "ALTER TABLE "+s.qualified()+" RENAME TO "+q(old)); err != nil {
			return s.wrap("promote (rename live table)", err)
		}
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE "+st.qualified()+" RENAME TO "+q(s.table)); err != nil {
		return s.wrap("promote (rename stage)", err)
	}
	for _, g := range grants {
		if _, err := tx.Exec(ctx, fmt.Sprintf(g, s.qualified())); err != nil {
			return s.wrap("promote (carry over grants)", err)
		}
	}
	for _, sc := range seqs {
		if _, err := tx.Exec(ctx, "ALTER SEQUENCE "+sc[0]+" OWNED BY "+s.qualified()+"."+q(sc[1])); err != nil {
			return s.wrap("promote (carry over sequence "+sc[0]+")", err)
		}
	}
	c := "NULL"
	if comment != nil {
		c = literal(*comment)
	}
	if _, err := tx.Exec(ctx, "COMMENT ON TABLE "+s.qualified()+" IS "+c); err != nil {
		return s.wrap("promote", err)
	}
	if liveOID != nil {
		if _, err := tx.Exec(ctx, "DROP TABLE "+s.ident(old)); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "2BP01" {
				return fmt.Errorf("pgvector: promote %s: other objects depend on the live table (%s; %s); a table swap cannot carry them over, so nothing was changed: drop or recreate them around the rebuild", s.name(), pe.Message, pe.Detail)
			}
			return s.wrap("promote (drop old table)", err)
		}
	}
	if err := s.renameIndexes(ctx, tx, *stageOID, st.table, oldIndexes); err != nil {
		return err
	}
	return s.wrap("promote", tx.Commit(ctx))
}

// tableGrants returns the table privileges of oid as GRANT statements
// with a %s for the table (the owner's own are implicit and left out).
func tableGrants(ctx context.Context, db querier, oid uint32) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT a.privilege_type,
			CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, a.is_grantable
		FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
		LEFT JOIN pg_roles r ON r.oid = a.grantee
		WHERE c.oid = $1 AND a.grantee <> c.relowner`, oid)
	if err != nil {
		return nil, err
	}
	var out []string
	var priv, grantee string
	var grantable bool
	_, err = pgx.ForEachRow(rows, []any{&priv, &grantee, &grantable}, func() error {
		g := "GRANT " + priv + " ON %s TO " + grantee
		if grantable {
			g += " WITH GRANT OPTION"
		}
		out = append(out, g)
		return nil
	})
	return out, err
}

// indexDef is one index of a table: its name and what it indexes how
// (uniqueness and the part of pg_get_indexdef after the table name), so
// that the same index on another table has the same key.
type indexDef struct {
	ref, name string
	key       string
	pk, hnsw  bool
}

func indexDefs(ctx context.Context, db querier, oid uint32, vecCol string) ([]indexDef, error) {
	rows, err := db.Query(ctx, `SELECT x.indexrelid::regclass::text, i.relname, x.indisprimary, x.indisunique,
			pg_get_indexdef(x.indexrelid),
			EXISTS (SELECT 1 FROM pg_am am JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey::int2[])
				WHERE am.oid = i.relam AND am.amname = 'hnsw' AND a.attname = $2)
		FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = $1 ORDER BY i.relname`, oid, vecCol)
	if err != nil {
		return nil, err
	}
	var out []indexDef
	var d indexDef
	var unique bool
	var def string
	_, err = pgx.ForEachRow(rows, []any{&d.ref, &d.name, &d.pk, &unique, &def, &d.hnsw}, func() error {
		tail := def
		if i := strings.Index(def, " USING "); i >= 0 {
			tail = def[i:]
		}
		d.key = fmt.Sprintf("pk=%v unique=%v%s", d.pk, unique, tail)
		out = append(out, d)
		return nil
	})
	return out, err
}

// renameIndexes gives the promoted table's indexes stable names: the name
// of the old live table's index with the same definition (LIKE copied it,
// under a name derived from the stage's); otherwise, as on a table made by
// Create, <table>_pkey for the primary key and <table>_<vector>_hnsw for
// the HNSW index, and for others the stage table's name prefix replaced by
// the live one. A name already taken is left alone. Runs after the old
// table is dropped, so its names are free.
func (s *Store) renameIndexes(ctx context.Context, tx pgx.Tx, oid uint32, stageTable string, old []indexDef) error {
	list, err := indexDefs(ctx, tx, oid, s.vecCol)
	if err != nil {
		return s.wrap("promote (list indexes)", err)
	}
	byKey := map[string][]string{}
	for _, o := range old {
		byKey[o.key] = append(byKey[o.key], o.name)
	}
	for _, x := range list {
		var want string
		switch {
		case len(byKey[x.key]) > 0:
			want, byKey[x.key] = byKey[x.key][0], byKey[x.key][1:]
		case x.pk:
			want = identName(s.table + "_pkey")
		case x.hnsw:
			want = identName(s.table + "_" + s.vecCol + "_hnsw")
		case strings.HasPrefix(x.name, stageTable):
			want = identName(s.table + strings.TrimPrefix(x.name, stageTable))
		default:
			continue
		}
		if want == x.name {
			continue
		}
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = $1
			AND relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = $2))`, want, oid).Scan(&taken); err != nil {
			return s.wrap("promote", err)
		}
		if taken {
			continue
		}
		if _, err := tx.Exec(ctx, "ALTER INDEX "+x.ref+" RENAME TO "+q(want)); err != nil {
			return s.wrap("promote (rename index "+x.ref+")", err)
		}
	}
	return nil
}

// DropStage drops the stage table; a missing one is not an error.
func (s *Store) DropStage(ctx context.Context, name string) error {
	st, err := s.stageStore(name)
	if err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return st.wrap("drop stage", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, st.qualified()); err != nil {
		return st.wrap("drop stage", err)
	}
	if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+st.qualified()); err != nil {
		return st.wrap("drop stage", err)
	}
	return st.wrap("drop stage", tx.Commit(ctx))
}

// Stages lists the stage tables of the live table (tables named
// <table>__rp_<name> whose comment carries the stage marker) with their
// row counts.
func (s *Store) Stages(ctx context.Context) ([]adapters.StageInfo, error) {
	prefix := s.table + stageInfix
	schema := "current_schema()"
	args := []any{prefix}
	if s.schema != "" {
		schema = "$2"
		args = append(args, s.schema)
	}
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_class c
		WHERE c.relkind = 'r' AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = `+schema+`)
		  AND left(c.relname, length($1)) = $1
		  AND left(coalesce(obj_description(c.oid, 'pg_class'), ''), `+strconv.Itoa(len(stageMarker))+`) = `+literal(stageMarker)+`
		ORDER BY c.relname`, args...)
	if err != nil {
		return nil, s.wrap("list stages", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.wrap("list stages", err)
	}
	out := []adapters.StageInfo{}
	for _, n := range names {
		name := strings.TrimPrefix(n, prefix)
		if name == "old" || checkStageName(name) != nil {
			continue
		}
		var count int64
		if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM "+s.ident(n)).Scan(&count); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42P01" {
				continue // dropped meanwhile
			}
			return nil, s.wrap("list stages", err)
		}
		out = append(out, adapters.StageInfo{Name: name, Points: count})
	}
	return out, nil
}

var _ adapters.StageLister = (*Store)(nil)
