// Package pgvector reads and writes a PostgreSQL table with a pgvector
// column, through pgx v5.
//
// URL: postgres://user@host:5432/db?sslmode=disable&table=chunks&id=id&vector=embedding&payload=metadata&text=content
// (schema=NAME optional). table, id and vector are required; payload and
// text are optional. Every other query parameter goes to the driver.
//
// Staged rebuilds (Stage, Promote; see stage.go) load a table
// <table>__rp_<stage> with COPY and swap it in; table names containing
// "__rp_" are reserved for them.
package pgvector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxvec "github.com/pgvector/pgvector-go/pgx"
	"github.com/ragparity/ragparity/adapters"
)

func init() {
	adapters.RegisterVector("postgres", Open)
	adapters.RegisterVector("postgresql", Open)
}

var (
	_ adapters.VectorStore   = (*Store)(nil)
	_ adapters.BucketScanner = (*Store)(nil)
	_ adapters.Stager        = (*Store)(nil)
)

// ourParams are the URL parameters ragparity consumes; the rest go to pgx.
var ourParams = []string{"table", "schema", "id", "vector", "payload", "text", "where", "collection"}

// pgxParams are the parameters pgx itself reads (pgconn's connection
// settings, pgx's and pgxpool's own) and the runtime parameters commonly
// set from a URL. Anything else would reach PostgreSQL as a runtime
// parameter and fail the connection ("unrecognized configuration
// parameter"), so Open refuses it, naming it.
var pgxParams = []string{
	"host", "port", "database", "dbname", "user", "password", "passfile", "connect_timeout",
	"sslmode", "sslkey", "sslcert", "sslcertmode", "sslrootcert", "sslnegotiation", "sslpassword", "sslsni",
	"krbspn", "krbsrvname", "target_session_attrs", "service", "servicefile",
	"min_protocol_version", "max_protocol_version", "channel_binding", "require_auth",
	"statement_cache_capacity", "description_cache_capacity", "default_query_exec_mode",
	"pool_max_conns", "pool_min_conns", "pool_min_idle_conns", "pool_max_conn_lifetime", "pool_max_conn_idle_time",
	"pool_health_check_period", "pool_max_conn_lifetime_jitter", "pool_ping_timeout",
	"application_name", "search_path", "options", "timezone", "statement_timeout", "lock_timeout",
	"idle_in_transaction_session_timeout", "client_encoding", "datestyle",
}

// checkParams refuses a parameter neither ragparity nor pgx knows.
func checkParams(q url.Values) error { return CheckURLParams(q, ourParams) }

// CheckURLParams refuses a postgres URL parameter that is neither one of
// own (the caller's) nor one pgx reads, naming it and listing both.
func CheckURLParams(q url.Values, own []string) error {
	known := map[string]bool{}
	for _, p := range own {
		known[p] = true
	}
	for _, p := range pgxParams {
		known[p] = true
	}
	var unknown []string
	for k := range q {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return fmt.Errorf("unknown query parameter %q (ragparity's: %s; pgx's: %s)", unknown[0], strings.Join(own, ", "), strings.Join(pgxParams, ", "))
}

// Store is one table.
type Store struct {
	pool                               *pgxpool.Pool
	schema, table                      string
	idCol, vecCol, payloadCol, textCol string
	where                              string // redacted URL for messages
	// filter is the row filter of a shared table (where=, collection=):
	// an SQL predicate applied to scans, bucket scans and searches; ""
	// reads every row. filterDesc says it for settings and messages.
	filter, filterDesc string
	// stage is set on the store Stage returns: a bulk-load target whose
	// Upsert tries a plain COPY first (see Upsert).
	stage bool
	// borrowed is set when the pool belongs to another Store (a stage's
	// live store): Close then leaves it open.
	borrowed bool
}

// Open parses the URL and connects lazily (the pool dials on first use).
func Open(ctx context.Context, u *url.URL) (adapters.VectorStore, error) {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("pgvector: URL %s: query: %v (a ';' is not a separator: use '&'; percent-encode ';' inside a value)", adapters.Redact(u.String()), err)
	}
	if err := checkParams(q); err != nil {
		return nil, fmt.Errorf("pgvector: URL %s: %w", adapters.Redact(u.String()), err)
	}
	s := &Store{
		schema: q.Get("schema"), table: q.Get("table"),
		idCol: q.Get("id"), vecCol: q.Get("vector"), payloadCol: q.Get("payload"), textCol: q.Get("text"),
	}
	if s.idCol == "" {
		s.idCol = "id"
	}
	if s.vecCol == "" {
		s.vecCol = "embedding"
	}
	if s.table == "" {
		return nil, fmt.Errorf("pgvector: URL %s: missing table=NAME parameter", u.Redacted())
	}
	var conds, descs []string
	if w := strings.TrimSpace(q.Get("where")); w != "" {
		if strings.Contains(w, ";") {
			return nil, fmt.Errorf("pgvector: URL %s: where= is one SQL predicate (no ';')", u.Redacted())
		}
		conds = append(conds, "("+w+")")
		descs = append(descs, "where "+w)
	} else if q.Has("where") {
		return nil, fmt.Errorf("pgvector: URL %s: where= is empty", u.Redacted())
	}
	if c := q.Get("collection"); c != "" {
		// LangChain keeps every collection in one table; collection
		// uuids differ between regions, so the name is joined.
		coll := pgx.Identifier{"langchain_pg_collection"}.Sanitize()
		if s.schema != "" {
			coll = pgx.Identifier{s.schema, "langchain_pg_collection"}.Sanitize()
		}
		conds = append(conds, fmt.Sprintf("collection_id = (SELECT uuid FROM %s WHERE name = %s)", coll, sqlLiteral(c)))
		descs = append(descs, "langchain collection "+c)
	} else if q.Has("collection") {
		return nil, fmt.Errorf("pgvector: URL %s: collection= is empty", u.Redacted())
	}
	s.filter, s.filterDesc = strings.Join(conds, " AND "), strings.Join(descs, " and ")
	for _, p := range ourParams {
		q.Del(p)
	}
	cu := *u
	cu.RawQuery = q.Encode()
	s.where = cu.Redacted()
	cfg, err := pgxpool.ParseConfig(cu.String())
	if err != nil {
		return nil, fmt.Errorf("pgvector: URL %s: %w", s.where, adapters.RedactErr(err))
	}
	cfg.MaxConns = 4
	cfg.ConnConfig.BuildFrontend = bufferedFrontend
	cfg.ConnConfig.DialFunc = lowatDial(cfg.ConnConfig.DialFunc)
	if s.filter != "" {
		// A filter is SQL the config supplies: whatever it calls, reads
		// through it can write nothing.
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		// The vector type exists only once the extension is created; a
		// missing extension is reported by Settings, not here.
		if err := pgxvec.RegisterTypes(ctx, c); err != nil && !strings.Contains(err.Error(), "no rows") {
			return err
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgvector: %s: %w", s.where, adapters.RedactErr(err))
	}
	s.pool = pool
	return s, nil
}

// Close closes the pool. On a store returned by Stage it does nothing: the
// pool is the live store's.
func (s *Store) Close() error {
	if !s.borrowed {
		s.pool.Close()
	}
	return nil
}

// Pool exposes the connection pool (bench and tests use it).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// qualified returns the quoted table name.
func (s *Store) qualified() string {
	if s.schema != "" {
		return pgx.Identifier{s.schema, s.table}.Sanitize()
	}
	return pgx.Identifier{s.table}.Sanitize()
}

func (s *Store) name() string {
	if s.schema != "" {
		return s.schema + "." + s.table
	}
	return s.table
}

func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") {
		return fmt.Errorf("pgvector: %s %s: %w (%s)", op, s.name(), adapters.ErrNotFound, pe.Message)
	}
	return fmt.Errorf("pgvector: %s %s: %w", op, s.name(), adapters.RedactErr(err))
}

func q(ident string) string { return pgx.Identifier{ident}.Sanitize() }

// sqlLiteral quotes a string as an SQL literal (standard_conforming_strings:
// only ' is doubled; a NUL cannot be in a PostgreSQL string at all).
func sqlLiteral(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, "\x00", ""), "'", "''") + "'"
}

// from is the FROM target of reads: the table, with the row filter of a
// shared table.
func (s *Store) from() string {
	if s.filter == "" {
		return s.qualified()
	}
	return s.qualified() + " WHERE " + s.filter
}

// writable refuses writes through a filtered store: a rebuild or a fixture
// writes whole tables, never part of a shared one.
func (s *Store) writable(op string) error {
	if s.filter != "" {
		return fmt.Errorf("pgvector: %s %s: the URL filters rows (%s); ragparity writes whole tables only", op, s.name(), s.filterDesc)
	}
	return nil
}

// bufferedFrontend reads the server's messages through a 256 KiB buffer:
// pgx reads the socket 8 KiB at a time, so a scan of a 1.6 GB table makes
// 200,000 read calls, and with other scans sharing the CPUs (shards run in
// parallel) every one of them is a wake-up. A read now takes whatever the
// socket holds, up to the buffer.
func bufferedFrontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	return pgproto3.NewFrontend(bufio.NewReaderSize(r, 256<<10), w)
}
