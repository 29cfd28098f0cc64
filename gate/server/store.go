package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ragparity/ragparity/adapters/pgvector"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/internal/urlsafe"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Store keeps every verdict (history) so that replicas sharing it answer
// the same latest verdict. Every method takes ctx first and is safe for
// concurrent use.
type Store interface {
	// Put appends a verdict. Putting the same verdict twice is a no-op;
	// another verdict under an existing id is ErrConflict.
	Put(ctx context.Context, v *gate.Verdict) error
	// Latest returns the newest verdict (by created_at, then id) for the
	// release, or for any release when release is "". ErrNotFound when
	// there is none.
	Latest(ctx context.Context, release string) (*gate.Verdict, error)
	// Get returns the verdict with that id, or ErrNotFound.
	Get(ctx context.Context, id string) (*gate.Verdict, error)
	// List returns up to limit verdicts of the release ("" = any), newest
	// first.
	List(ctx context.Context, release string, limit int) ([]*gate.Verdict, error)
	// PutBaseline appends a release baseline (history is kept; the same
	// baseline twice is a no-op).
	PutBaseline(ctx context.Context, b *gate.Baseline) error
	// LatestBaseline returns the newest baseline of the release, or
	// ErrNotFound. It is returned as stored: gate.CheckBaseline checks it.
	LatestBaseline(ctx context.Context, release string) (*gate.Baseline, error)
	// ListBaselines returns up to limit baselines of the release ("" =
	// any), newest first.
	ListBaselines(ctx context.Context, release string, limit int) ([]*gate.Baseline, error)
	Close() error
}

var (
	// ErrNotFound: no such verdict (or baseline).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a different verdict already has this id.
	ErrConflict = errors.New("a different verdict already has this id")
)

// DefaultStoreTable is the table verdicts are kept in unless the store
// URL says ?table=NAME.
const DefaultStoreTable = "ragparity_verdicts"

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// OpenStore opens a verdict store by URL:
//
//	""                        sqlite file cacheRoot/verdicts.db
//	sqlite:///abs/path.db     embedded SQLite file (created, WAL mode)
//	postgres://user@host/db   PostgreSQL, shared by replicas
//
// Either may take ?table=NAME (default ragparity_verdicts); the table is
// created if missing.
func OpenStore(ctx context.Context, raw, cacheRoot string) (Store, error) {
	if raw == "" {
		raw = "sqlite://" + filepath.ToSlash(filepath.Join(cacheRoot, "verdicts.db"))
	}
	u, err := urlsafe.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("verdict store (gate.store): %w", err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("verdict store (gate.store): query: %w", err)
	}
	if u.Scheme == "postgres" || u.Scheme == "postgresql" {
		if err := pgvector.CheckURLParams(q, []string{"table"}); err != nil {
			return nil, fmt.Errorf("verdict store (gate.store): %w", err)
		}
	}
	table := q.Get("table")
	if table == "" {
		table = DefaultStoreTable
	}
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("verdict store: table %q: want lower-case letters, digits and _", table)
	}
	q.Del("table")
	u.RawQuery = q.Encode()
	switch u.Scheme {
	case "sqlite", "sqlite3":
		path := u.Path
		if u.Opaque != "" { // sqlite:relative/path.db
			path = u.Opaque
		}
		if u.Host != "" { // sqlite://relative/path.db
			path = filepath.Join(u.Host, path)
		}
		if path == "" {
			return nil, errors.New("verdict store: sqlite URL has no path (want sqlite:///path/verdicts.db)")
		}
		return openSQLite(ctx, filepath.FromSlash(path), table)
	case "postgres", "postgresql":
		return openPostgres(ctx, u.String(), table)
	default:
		return nil, fmt.Errorf("verdict store: unknown scheme %q (want sqlite:///path or postgres://...)", u.Scheme)
	}
}

// DetailStore is the ability to keep a verdict's detail (per-question
// probe results, Merkle bucket maps, blob diffs: not signed) beside it, so
// that a report rebuilt from a stored verdict shows it. Both stores have it.
type DetailStore interface {
	// PutDetail stores the detail of verdict id (replacing any).
	PutDetail(ctx context.Context, id string, d *gate.Detail) error
	// GetDetail returns it, or ErrNotFound.
	GetDetail(ctx context.Context, id string) (*gate.Detail, error)
}

var (
	_ DetailStore = (*sqliteStore)(nil)
	_ DetailStore = (*pgStore)(nil)
)

// storedDetail is a detail's stored form.
type storedDetail struct {
	Probes     *gate.ProbeDetail `json:"probes,omitempty"`
	BucketMaps []gate.BucketMap  `json:"bucket_maps,omitempty"`
	BlobDiffs  []gate.BlobDiff   `json:"blob_diffs,omitempty"`
}

func marshalDetail(d *gate.Detail) (string, error) {
	b, err := json.Marshal(storedDetail{Probes: d.Probes, BucketMaps: d.BucketMaps, BlobDiffs: d.BlobDiffs})
	return string(b), err
}

func unmarshalDetail(doc string) (*gate.Detail, error) {
	var sd storedDetail
	if err := json.Unmarshal([]byte(doc), &sd); err != nil {
		return nil, fmt.Errorf("stored detail: %w", err)
	}
	return &gate.Detail{Probes: sd.Probes, BucketMaps: sd.BucketMaps, BlobDiffs: sd.BlobDiffs}, nil
}

func (s *sqliteStore) PutDetail(ctx context.Context, id string, d *gate.Detail) error {
	doc, err := marshalDetail(d)
	if err != nil {
		return fmt.Errorf("sqlite: put detail %s: %w", id, err)
	}
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s_details (id, doc) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`, s.table), id, doc); err != nil {
		return fmt.Errorf("sqlite: put detail %s: %w", id, err)
	}
	return nil
}

func (s *sqliteStore) GetDetail(ctx context.Context, id string) (*gate.Detail, error) {
	var doc string
	err := s.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT doc FROM %s_details WHERE id = ?`, s.table), id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get detail %s: %w", id, err)
	}
	return unmarshalDetail(doc)
}

func (s *pgStore) PutDetail(ctx context.Context, id string, d *gate.Detail) error {
	doc, err := marshalDetail(d)
	if err != nil {
		return fmt.Errorf("postgres: put detail %s: %w", id, err)
	}
	if _, err := s.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s_details (id, doc) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET doc = excluded.doc`, s.table), id, doc); err != nil {
		return fmt.Errorf("postgres: put detail %s: %w", id, err)
	}
	return nil
}

func (s *pgStore) GetDetail(ctx context.Context, id string) (*gate.Detail, error) {
	var doc string
	err := s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT doc FROM %s_details WHERE id = $1`, s.table), id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get detail %s: %w", id, err)
	}
	return unmarshalDetail(doc)
}

// LoadDetail opens the store a config names and reads a verdict's detail;
// ErrNotFound when it keeps none.
func LoadDetail(ctx context.Context, raw, cacheRoot, id string) (*gate.Detail, error) {
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := OpenStore(octx, raw, cacheRoot)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ds, ok := st.(DetailStore)
	if !ok {
		return nil, ErrNotFound
	}
	return ds.GetDetail(octx, id)
}

// Record stores a verdict and, when the store keeps it and d is not nil,
// its detail: what serve does after each verification, for verify.
func Record(ctx context.Context, st Store, v *gate.Verdict, d *gate.Detail) error {
	if err := st.Put(ctx, v); err != nil {
		return err
	}
	if ds, ok := st.(DetailStore); ok && d != nil {
		return ds.PutDetail(ctx, v.ID, d)
	}
	return nil
}

func marshalVerdict(v *gate.Verdict) (string, error) {
	if v.ID == "" {
		return "", errors.New("verdict has no id")
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func unmarshalVerdict(doc string) (*gate.Verdict, error) {
	v := new(gate.Verdict)
	if err := json.Unmarshal([]byte(doc), v); err != nil {
		return nil, fmt.Errorf("stored verdict: %w", err)
	}
	return v, nil
}

// ---------------------------------------------------------------- SQLite

type sqliteStore struct {
	db    *sql.DB
	table string
	path  string
}

func openSQLite(ctx context.Context, path, table string) (*sqliteStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &sqliteStore{db: db, table: table, path: path}
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			id TEXT PRIMARY KEY,
			release TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			decision TEXT NOT NULL,
			doc TEXT NOT NULL,
			stored_at INTEGER NOT NULL)`, table),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s_latest ON %s (release, created_at DESC, id DESC)`, table, table),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s_created ON %s (created_at DESC, id DESC)`, table, table),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s_baselines (
			id TEXT PRIMARY KEY,
			release TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			doc TEXT NOT NULL)`, table),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s_details (
			id TEXT PRIMARY KEY,
			doc TEXT NOT NULL)`, table),
	}
	for _, st := range stmts {
		if _, err := db.ExecContext(ctx, st); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: %s: %w", path, err)
		}
	}
	return s, nil
}

func (s *sqliteStore) String() string { return "sqlite://" + s.path }

func (s *sqliteStore) Put(ctx context.Context, v *gate.Verdict) error {
	doc, err := marshalVerdict(v)
	if err != nil {
		return fmt.Errorf("sqlite: put: %w", err)
	}
	res, err := s.db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (id, release, created_at, decision, doc, stored_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`, s.table),
		v.ID, v.Release, v.CreatedAt.UnixNano(), string(v.Decision), doc, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: put %s: %w", v.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var old string
		if err := s.db.QueryRowContext(ctx, fmt.Sprintf(`SELECT doc FROM %s WHERE id = ?`, s.table), v.ID).Scan(&old); err != nil {
			return fmt.Errorf("sqlite: put %s: %w", v.ID, err)
		}
		if old != doc {
			return fmt.Errorf("sqlite: put %s: %w", v.ID, ErrConflict)
		}
	}
	return nil
}

func (s *sqliteStore) one(ctx context.Context, query string, args ...any) (*gate.Verdict, error) {
	var doc string
	err := s.db.QueryRowContext(ctx, query, args...).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return unmarshalVerdict(doc)
}

func (s *sqliteStore) Latest(ctx context.Context, release string) (*gate.Verdict, error) {
	if release == "" {
		return s.one(ctx, fmt.Sprintf(`SELECT doc FROM %s ORDER BY created_at DESC, id DESC LIMIT 1`, s.table))
	}
	return s.one(ctx, fmt.Sprintf(`SELECT doc FROM %s WHERE release = ? ORDER BY created_at DESC, id DESC LIMIT 1`, s.table), release)
}

func (s *sqliteStore) Get(ctx context.Context, id string) (*gate.Verdict, error) {
	return s.one(ctx, fmt.Sprintf(`SELECT doc FROM %s WHERE id = ?`, s.table), id)
}

func (s *sqliteStore) List(ctx context.Context, release string, limit int) ([]*gate.Verdict, error) {
	q := fmt.Sprintf(`SELECT doc FROM %s WHERE (? = '' OR release = ?) ORDER BY created_at DESC, id DESC LIMIT ?`, s.table)
	rows, err := s.db.QueryContext(ctx, q, release, release, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list: %w", err)
	}
	defer rows.Close()
	var out []*gate.Verdict
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("sqlite: list: %w", err)
		}
		v, err := unmarshalVerdict(doc)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list: %w", err)
	}
	return out, nil
}

func (s *sqliteStore) Close() error { return s.db.Close() }

// ---------------------------------------------------------------- PostgreSQL

type pgStore struct {
	pool  *pgxpool.Pool
	table string
	host  string
}

func openPostgres(ctx context.Context, dsn, table string) (*pgStore, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.MaxConns > 4 {
		cfg.MaxConns = 4
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &pgStore{pool: pool, table: table, host: cfg.ConnConfig.Host}
	// Replicas start together: serialise the CREATEs (two concurrent
	// CREATE TABLE IF NOT EXISTS can still collide in pg_type).
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "ragparity:"+table); err != nil {
			return err
		}
		for _, st := range []string{
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
				id text PRIMARY KEY,
				release text NOT NULL,
				created_at timestamptz NOT NULL,
				decision text NOT NULL,
				doc text NOT NULL,
				stored_at timestamptz NOT NULL DEFAULT now())`, table),
			fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s_latest ON %s (release, created_at DESC, id DESC)`, table, table),
			fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s_created ON %s (created_at DESC, id DESC)`, table, table),
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s_baselines (
				id text PRIMARY KEY,
				release text NOT NULL,
				created_at timestamptz NOT NULL,
				doc text NOT NULL)`, table),
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s_details (
				id text PRIMARY KEY,
				doc text NOT NULL)`, table),
		} {
			if _, err := tx.Exec(ctx, st); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %s: create %s: %w", s.host, table, err)
	}
	return s, nil
}

func (s *pgStore) String() string { return "postgres://" + s.host + " table " + s.table }

func (s *pgStore) Put(ctx context.Context, v *gate.Verdict) error {
	doc, err := marshalVerdict(v)
	if err != nil {
		return fmt.Errorf("postgres: put: %w", err)
	}
	tag, err := s.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (id, release, created_at, decision, doc)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`, s.table),
		v.ID, v.Release, v.CreatedAt, string(v.Decision), doc)
	if err != nil {
		return fmt.Errorf("postgres: put %s: %w", v.ID, err)
	}
	if tag.RowsAffected() == 0 {
		var old string
		if err := s.pool.QueryRow(ctx, fmt.Sprintf(`SELECT doc FROM %s WHERE id = $1`, s.table), v.ID).Scan(&old); err != nil {
			return fmt.Errorf("postgres: put %s: %w", v.ID, err)
		}
		if old != doc {
			return fmt.Errorf("postgres: put %s: %w", v.ID, ErrConflict)
		}
	}
	return nil
}

func (s *pgStore) one(ctx context.Context, query string, args ...any) (*gate.Verdict, error) {
	var doc string
	err := s.pool.QueryRow(ctx, query, args...).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return unmarshalVerdict(doc)
}

func (s *pgStore) Latest(ctx context.Context, release string) (*gate.Verdict, error) {
	if release == "" {
		return s.one(ctx, fmt.Sprintf(`SELECT doc FROM %s ORDER BY created_at DESC, id DESC LIMIT 1`, s.table))
	}
	return s.one(ctx, fmt.Sprintf(`SELECT doc FROM %s WHERE release = $1 ORDER BY created_at DESC, id DESC LIMIT 1`, s.table), release)
}

func (s *pgStore) Get(ctx context.Context, id string) (*gate.Verdict, error) {
	return s.one(ctx, fmt.Sprintf(`SELECT doc FROM %s WHERE id = $1`, s.table), id)
}

func (s *pgStore) List(ctx context.Context, release string, limit int) ([]*gate.Verdict, error) {
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT doc FROM %s WHERE ($1 = '' OR release = $1)
		ORDER BY created_at DESC, id DESC LIMIT $2`, s.table), release, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list: %w", err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: list: %w", err)
	}
	out := make([]*gate.Verdict, 0, len(docs))
	for _, d := range docs {
		v, err := unmarshalVerdict(d)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *pgStore) Close() error { s.pool.Close(); return nil }

// ---------------------------------------------------------------- baselines

func marshalBaseline(b *gate.Baseline) (string, error) {
	if b.ID == "" {
		return "", errors.New("baseline has no id (not signed)")
	}
	raw, err := json.Marshal(b)
	return string(raw), err
}

func unmarshalBaselines(docs []string) ([]*gate.Baseline, error) {
	out := make([]*gate.Baseline, 0, len(docs))
	for _, d := range docs {
		b, err := gate.ParseBaseline("stored baseline", []byte(d))
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (s *sqliteStore) PutBaseline(ctx context.Context, b *gate.Baseline) error {
	doc, err := marshalBaseline(b)
	if err != nil {
		return fmt.Errorf("sqlite: put baseline: %w", err)
	}
	_, err = s.db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s_baselines (id, release, created_at, doc) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, s.table), b.ID, b.Release, b.Created.UnixNano(), doc)
	if err != nil {
		return fmt.Errorf("sqlite: put baseline %s: %w", b.ID, err)
	}
	return nil
}

func (s *sqliteStore) ListBaselines(ctx context.Context, release string, limit int) ([]*gate.Baseline, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf(`SELECT doc FROM %s_baselines WHERE (? = '' OR release = ?)
		ORDER BY created_at DESC, id DESC LIMIT ?`, s.table), release, release, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: baselines: %w", err)
	}
	defer rows.Close()
	var docs []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("sqlite: baselines: %w", err)
		}
		docs = append(docs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: baselines: %w", err)
	}
	return unmarshalBaselines(docs)
}

func (s *sqliteStore) LatestBaseline(ctx context.Context, release string) (*gate.Baseline, error) {
	return latestBaseline(ctx, s, release)
}

func (s *pgStore) PutBaseline(ctx context.Context, b *gate.Baseline) error {
	doc, err := marshalBaseline(b)
	if err != nil {
		return fmt.Errorf("postgres: put baseline: %w", err)
	}
	_, err = s.pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s_baselines (id, release, created_at, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO NOTHING`, s.table), b.ID, b.Release, b.Created, doc)
	if err != nil {
		return fmt.Errorf("postgres: put baseline %s: %w", b.ID, err)
	}
	return nil
}

func (s *pgStore) ListBaselines(ctx context.Context, release string, limit int) ([]*gate.Baseline, error) {
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT doc FROM %s_baselines WHERE ($1 = '' OR release = $1)
		ORDER BY created_at DESC, id DESC LIMIT $2`, s.table), release, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: baselines: %w", err)
	}
	docs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: baselines: %w", err)
	}
	return unmarshalBaselines(docs)
}

func (s *pgStore) LatestBaseline(ctx context.Context, release string) (*gate.Baseline, error) {
	return latestBaseline(ctx, s, release)
}

func latestBaseline(ctx context.Context, s Store, release string) (*gate.Baseline, error) {
	bs, err := s.ListBaselines(ctx, release, 1)
	if err != nil {
		return nil, err
	}
	if len(bs) == 0 {
		return nil, ErrNotFound
	}
	return bs[0], nil
}
