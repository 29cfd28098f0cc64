package pgvector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	pgv "github.com/pgvector/pgvector-go"
	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// opclassOf maps a canonical metric to pgvector's operator class.
func opclassOf(metric string) (string, error) {
	switch metric {
	case "cosine", "":
		return "vector_cosine_ops", nil
	case "l2":
		return "vector_l2_ops", nil
	case "dot":
		return "vector_ip_ops", nil
	case "l1":
		return "vector_l1_ops", nil
	}
	return "", fmt.Errorf("pgvector: unsupported metric %q (want cosine, l2, dot or l1)", metric)
}

func idType(k parity.IDKind) string {
	switch k {
	case parity.IDInt:
		return "bigint"
	case parity.IDUUID:
		return "uuid"
	}
	return "text"
}

// Create creates the table and its HNSW index.
func (s *Store) Create(ctx context.Context, spec adapters.CollectionSpec) error {
	if err := s.writable("create"); err != nil {
		return err
	}
	if len(spec.Vectors) != 1 || spec.Vectors[""] <= 0 {
		return fmt.Errorf("pgvector: %s: exactly one unnamed vector is supported (one vector column)", s.name())
	}
	opc, err := opclassOf(spec.Metric)
	if err != nil {
		return err
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.qualified()).Scan(&exists); err != nil {
		return s.wrap("create", err)
	}
	if exists {
		return fmt.Errorf("pgvector: table %s: %w", s.name(), adapters.ErrExists)
	}
	cols := []string{
		fmt.Sprintf("%s %s PRIMARY KEY", q(s.idCol), idType(spec.IDKind)),
		fmt.Sprintf("%s vector(%d) NOT NULL", q(s.vecCol), spec.Vectors[""]),
	}
	if s.payloadCol != "" {
		cols = append(cols, q(s.payloadCol)+" jsonb")
	}
	if s.textCol != "" {
		cols = append(cols, q(s.textCol)+" text")
	}
	var with []string
	if spec.HNSWM > 0 {
		with = append(with, fmt.Sprintf("m = %d", spec.HNSWM))
	}
	if spec.HNSWEfConstruction > 0 {
		with = append(with, fmt.Sprintf("ef_construction = %d", spec.HNSWEfConstruction))
	}
	idx := fmt.Sprintf("CREATE INDEX %s ON %s USING hnsw (%s %s)", q(s.table+"_"+s.vecCol+"_hnsw"), s.qualified(), q(s.vecCol), opc)
	if len(with) > 0 {
		idx += " WITH (" + strings.Join(with, ", ") + ")"
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.wrap("create", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "CREATE TABLE "+s.qualified()+" ("+strings.Join(cols, ", ")+")"); err != nil {
		return s.wrap("create", err)
	}
	if _, err := tx.Exec(ctx, idx); err != nil {
		return s.wrap("create index on", err)
	}
	return s.wrap("create", tx.Commit(ctx))
}

// colTypes is what the catalog says of the columns a write fills.
type colTypes struct {
	id      string // format_type of the id column (bigint, uuid, text, ...)
	idName  string // pg_type.typname of the id column (int8, uuid, text, ...)
	vecName string // vector or halfvec
}

func (s *Store) writeTypes(ctx context.Context, db interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, op string) (colTypes, error) {
	var ct colTypes
	err := db.QueryRow(ctx, `SELECT format_type(i.atttypid, i.atttypmod), ti.typname, tv.typname
		FROM pg_attribute i JOIN pg_type ti ON ti.oid = i.atttypid,
		     pg_attribute v JOIN pg_type tv ON tv.oid = v.atttypid
		WHERE i.attrelid = to_regclass($1) AND i.attname = $2 AND NOT i.attisdropped
		  AND v.attrelid = i.attrelid AND v.attname = $3 AND NOT v.attisdropped`,
		s.qualified(), s.idCol, s.vecCol).Scan(&ct.id, &ct.idName, &ct.vecName)
	if errors.Is(err, pgx.ErrNoRows) {
		return ct, fmt.Errorf("pgvector: %s %s: %w (or it has no columns %q and %q)", op, s.name(), adapters.ErrNotFound, s.idCol, s.vecCol)
	}
	return ct, s.wrap(op, err)
}

// writeColumns lists the columns a write fills, in order.
func (s *Store) writeColumns() []string {
	cols := []string{s.idCol, s.vecCol}
	if s.payloadCol != "" {
		cols = append(cols, s.payloadCol)
	}
	if s.textCol != "" {
		cols = append(cols, s.textCol)
	}
	return cols
}

// appendOptional appends to row the values of p for the optional columns
// the table has, in writeColumns order: the payload as JSON text and the
// text, each nil when p has none.
func (s *Store) appendOptional(row []any, p *parity.Point) []any {
	if s.payloadCol != "" {
		if p.Payload == nil {
			row = append(row, nil)
		} else {
			row = append(row, string(p.Payload))
		}
	}
	if s.textCol != "" {
		if p.HasText {
			row = append(row, p.Text)
		} else {
			row = append(row, nil)
		}
	}
	return row
}

// typedRows converts points to Go values pgx encodes in binary for the
// table's own column types (COPY FROM in binary format and plain INSERTs).
func (s *Store) typedRows(pts []parity.Point, ct colTypes) ([][]any, error) {
	rows := make([][]any, len(pts))
	for i := range pts {
		p := &pts[i]
		if len(p.Vectors) != 1 || p.Vectors[0].Name != "" {
			return nil, fmt.Errorf("pgvector: point %s: exactly one unnamed vector required", p.ID.S)
		}
		r := make([]any, 0, 4)
		switch ct.idName {
		case "int2", "int4", "int8":
			n, err := strconv.ParseInt(p.ID.S, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("pgvector: %s: id %q is not an integer (column %s is %s)", s.name(), p.ID.S, s.idCol, ct.id)
			}
			r = append(r, n)
		case "uuid":
			var u pgtype.UUID
			if err := u.Scan(p.ID.S); err != nil {
				return nil, fmt.Errorf("pgvector: %s: id %q is not a UUID (column %s is uuid)", s.name(), p.ID.S, s.idCol)
			}
			r = append(r, u)
		default:
			r = append(r, p.ID.S)
		}
		if ct.vecName == "halfvec" {
			r = append(r, pgv.NewHalfVector(p.Vectors[0].Values))
		} else {
			r = append(r, pgv.NewVector(p.Vectors[0].Values))
		}
		rows[i] = s.appendOptional(r, p)
	}
	return rows, nil
}

// Upsert writes points (insert or replace by id).
//
// On a live table it copies the points into a temporary table and merges
// them with INSERT ... ON CONFLICT in one transaction. On a stage (see
// Stage) it first COPYs the points straight into the table, the fastest
// bulk load PostgreSQL has; only when that hits an id already present (a
// resumed rebuild rewriting a chunk: unique_violation, rolled back) does
// it fall back to the merge, so the result is the same either way.
func (s *Store) Upsert(ctx context.Context, pts []parity.Point) error {
	if err := s.writable("upsert"); err != nil {
		return err
	}
	if len(pts) == 0 {
		return nil
	}
	for i := range pts {
		if len(pts[i].Vectors) != 1 || pts[i].Vectors[0].Name != "" {
			return fmt.Errorf("pgvector: point %s: exactly one unnamed vector required", pts[i].ID.S)
		}
	}
	if s.stage {
		err := s.copyDirect(ctx, pts)
		var pe *pgconn.PgError
		if err == nil || !errors.As(err, &pe) || pe.Code != "23505" {
			return err
		}
	}
	return s.merge(ctx, pts)
}

// copyDirect COPYs pts into the table in one transaction; it returns the
// raw *pgconn.PgError of a duplicate id (23505) so Upsert can fall back.
func (s *Store) copyDirect(ctx context.Context, pts []parity.Point) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.wrap("upsert", err)
	}
	defer tx.Rollback(ctx)
	ct, err := s.writeTypes(ctx, tx, "upsert into")
	if err != nil {
		return err
	}
	rows, err := s.typedRows(pts, ct)
	if err != nil {
		return err
	}
	var tbl pgx.Identifier
	if s.schema != "" {
		tbl = pgx.Identifier{s.schema, s.table}
	} else {
		tbl = pgx.Identifier{s.table}
	}
	if _, err := tx.CopyFrom(ctx, tbl, s.writeColumns(), pgx.CopyFromRows(rows)); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return pe
		}
		return s.wrap("upsert (copy)", err)
	}
	return s.wrap("upsert", tx.Commit(ctx))
}

// merge copies the points into a temporary table and merges them with
// INSERT ... ON CONFLICT in one transaction.
func (s *Store) merge(ctx context.Context, pts []parity.Point) error {
	cols := s.writeColumns()
	rows := make([][]any, len(pts))
	for i := range pts {
		p := &pts[i]
		r := []any{p.ID.S, pgv.NewVector(p.Vectors[0].Values)}
		rows[i] = s.appendOptional(r, p)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.wrap("upsert", err)
	}
	defer tx.Rollback(ctx)
	// Staging columns are text except the vector, so ids of any type and
	// JSON go through COPY and are cast once in SQL.
	stage := []string{q(s.idCol) + " text", q(s.vecCol) + " vector"}
	sel := []string{q(s.idCol) + "::" + "%s", q(s.vecCol)}
	if s.payloadCol != "" {
		stage = append(stage, q(s.payloadCol)+" text")
		sel = append(sel, q(s.payloadCol)+"::jsonb")
	}
	if s.textCol != "" {
		stage = append(stage, q(s.textCol)+" text")
		sel = append(sel, q(s.textCol))
	}
	ct, err := s.writeTypes(ctx, tx, "upsert into")
	if err != nil {
		return err
	}
	sel[0] = fmt.Sprintf(sel[0], ct.id)
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE ragparity_stage ("+strings.Join(stage, ", ")+") ON COMMIT DROP"); err != nil {
		return s.wrap("upsert", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"ragparity_stage"}, cols, pgx.CopyFromRows(rows)); err != nil {
		return s.wrap("upsert (copy)", err)
	}
	quoted := make([]string, len(cols))
	var set []string
	for i, c := range cols {
		quoted[i] = q(c)
		if i > 0 {
			set = append(set, q(c)+" = EXCLUDED."+q(c))
		}
	}
	sql := "INSERT INTO " + s.qualified() + " (" + strings.Join(quoted, ", ") + ") SELECT " + strings.Join(sel, ", ") +
		" FROM ragparity_stage ON CONFLICT (" + q(s.idCol) + ") DO UPDATE SET " + strings.Join(set, ", ")
	if _, err := tx.Exec(ctx, sql); err != nil {
		return s.wrap("upsert", err)
	}
	return s.wrap("upsert", tx.Commit(ctx))
}

// WriteRowByRow inserts pts with one plain INSERT statement per point (one
// round trip each, no batching, no ON CONFLICT: an id already present is
// an error), all in one transaction so that the per-row cost measured is
// the statement, not a commit. It exists for the benchmark that compares
// it with the COPY path of Upsert; ragparity itself never uses it.
func (s *Store) WriteRowByRow(ctx context.Context, pts []parity.Point) error {
	if len(pts) == 0 {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return s.wrap("insert into", err)
	}
	defer tx.Rollback(ctx)
	ct, err := s.writeTypes(ctx, tx, "insert into")
	if err != nil {
		return err
	}
	rows, err := s.typedRows(pts, ct)
	if err != nil {
		return err
	}
	cols := s.writeColumns()
	quoted := make([]string, len(cols))
	params := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = q(c)
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	sql := "INSERT INTO " + s.qualified() + " (" + strings.Join(quoted, ", ") + ") VALUES (" + strings.Join(params, ", ") + ")"
	for _, r := range rows {
		if _, err := tx.Exec(ctx, sql, r...); err != nil {
			return s.wrap("insert into", err)
		}
	}
	return s.wrap("insert into", tx.Commit(ctx))
}

// Drop drops the table if it exists.
func (s *Store) Drop(ctx context.Context) error {
	if err := s.writable("drop"); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, "DROP TABLE IF EXISTS "+s.qualified())
	return s.wrap("drop", err)
}
