package pgvector

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	pgv "github.com/pgvector/pgvector-go"
	"github.com/ragparity/ragparity/adapters"
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

func idType(k adapters.IDKind) string {
	switch k {
	case adapters.IDInt:
		return "bigint"
	case adapters.IDUUID:
		return "uuid"
	}
	return "text"
}

// Create creates the table and its HNSW index.
func (s *Store) Create(ctx context.Context, spec adapters.CollectionSpec) error {
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

// Upsert copies the points into a temporary staging table and merges them
// with INSERT ... ON CONFLICT in one transaction.
func (s *Store) Upsert(ctx context.Context, pts []adapters.Point) error {
	if len(pts) == 0 {
		return nil
	}
	cols := []string{s.idCol, s.vecCol}
	if s.payloadCol != "" {
		cols = append(cols, s.payloadCol)
	}
	if s.textCol != "" {
		cols = append(cols, s.textCol)
	}
	rows := make([][]any, len(pts))
	for i := range pts {
		p := &pts[i]
		if len(p.Vectors) != 1 || p.Vectors[0].Name != "" {
			return fmt.Errorf("pgvector: point %s: exactly one unnamed vector required", p.ID.S)
		}
		r := []any{p.ID.S, pgv.NewVector(p.Vectors[0].Values)}
		if s.payloadCol != "" {
			if p.Payload == nil {
				r = append(r, nil)
			} else {
				r = append(r, string(p.Payload))
			}
		}
		if s.textCol != "" {
			if p.HasText {
				r = append(r, p.Text)
			} else {
				r = append(r, nil)
			}
		}
		rows[i] = r
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
	var idTyp string
	if err := tx.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2`, s.qualified(), s.idCol).Scan(&idTyp); err != nil {
		return s.wrap("upsert", err)
	}
	sel[0] = fmt.Sprintf(sel[0], idTyp)
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

// Drop drops the table if it exists.
func (s *Store) Drop(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, "DROP TABLE IF EXISTS "+s.qualified())
	return s.wrap("drop", err)
}
