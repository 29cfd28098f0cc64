package pgvector

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// Scan streams the table through COPY ... TO STDOUT (FORMAT binary): the
// fastest way PostgreSQL has to hand rows to a client, parsed here without
// per-row allocation.
func (s *Store) Scan(ctx context.Context, fn func(p *parity.Point) error) error {
	return s.scan(ctx, "", "", fn)
}

// ScanBuckets pushes the bucket filter down: the bucket of a row is computed
// in SQL from the same SHA-256 the verifier uses, so only those rows travel.
func (s *Store) ScanBuckets(ctx context.Context, f adapters.BucketFilter, fn func(p *parity.Point) error) error {
	cond, err := s.bucketCond(f)
	if err != nil || len(f.Keep) == 0 {
		return err
	}
	return s.scan(ctx, cond, "", fn)
}

var _ adapters.RangeSharder = (*Store)(nil)

// RowShards reports whether ScanShard can split the table by heap block
// range: a plain table (not a view or a partitioned table, which have no
// blocks of their own) on PostgreSQL 14 or later (TID Range Scan).
func (s *Store) RowShards(ctx context.Context) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT c.relkind = 'r' FROM pg_class c WHERE c.oid = to_regclass($1)), false)
		AND current_setting('server_version_num')::int >= 140000`, s.qualified()).Scan(&ok)
	if err != nil {
		return false, s.wrap("inspect", err)
	}
	return ok, nil
}

// ScanShard streams the rows of heap blocks [i*B/n, (i+1)*B/n) through a
// TID Range Scan, B being the table's block count when the shard starts:
// each shard reads only its own pages. The last shard's range is open
// ended, so rows on pages added after another shard counted B are not lost.
func (s *Store) ScanShard(ctx context.Context, i, n int, fn func(p *parity.Point) error) error {
	if n < 1 || i < 0 || i >= n {
		return fmt.Errorf("pgvector: shard %d/%d: want 0 <= i < n", i, n)
	}
	var blocks int64
	if err := s.pool.QueryRow(ctx, `SELECT pg_relation_size(to_regclass($1)) / current_setting('block_size')::bigint`, s.qualified()).Scan(&blocks); err != nil {
		return s.wrap("scan", err)
	}
	return s.scan(ctx, "", tidCond(blocks, i, n), fn)
}

// tidCond is the ctid predicate of shard i of n over a table of blocks
// heap blocks.
func tidCond(blocks int64, i, n int) string {
	lo, hi := blocks*int64(i)/int64(n), blocks*int64(i+1)/int64(n)
	if i == n-1 {
		return fmt.Sprintf("ctid >= '(%d,0)'::tid", lo)
	}
	return fmt.Sprintf("ctid >= '(%d,0)'::tid AND ctid < '(%d,0)'::tid", lo, hi)
}

// bucketCond is the SQL predicate selecting f's buckets, over the d that
// selectSQL computes per row.
func (s *Store) bucketCond(f adapters.BucketFilter) (string, error) {
	if !parity.ValidBuckets(f.Buckets) {
		return "", fmt.Errorf("pgvector: bucket count %d is not a power of two in [2, 65536]", f.Buckets)
	}
	if len(f.Keep) == 0 {
		return "", nil
	}
	k := 0
	for 1<<k < f.Buckets {
		k++
	}
	// Top k bits of the first two bytes of sha256('ragparity/bucket/v1' || id).
	expr := fmt.Sprintf(`((get_byte(h.d, 0) << 8 | get_byte(h.d, 1)) >> %d)`, 16-k)
	contiguous := f.Keep[len(f.Keep)-1]-f.Keep[0] == len(f.Keep)-1
	if contiguous {
		return fmt.Sprintf("%s BETWEEN %d AND %d", expr, f.Keep[0], f.Keep[len(f.Keep)-1]), nil
	}
	var b strings.Builder
	for i, v := range f.Keep {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprint(&b, v)
	}
	return fmt.Sprintf("%s = ANY('{%s}'::int[])", expr, b.String()), nil
}

var _ adapters.UniqueIDs = (*Store)(nil)

// IDsUnique reports whether a valid, non-partial unique index (or the
// primary key) covers the id column alone: then no id can be read twice.
func (s *Store) IDsUnique(ctx context.Context) (bool, error) {
	var unique bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index x JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
		WHERE x.indrelid = to_regclass($1) AND x.indisunique AND x.indisvalid AND x.indnkeyatts = 1 AND x.indpred IS NULL AND x.indexprs IS NULL AND a.attname = $2)`,
		s.qualified(), s.idCol).Scan(&unique)
	if err != nil {
		return false, s.wrap("inspect", err)
	}
	return unique, nil
}

// selectSQL selects the rows of the table matching cond, a predicate over
// the per-row bucket digest d (bucketCond), and tid, a predicate on ctid
// (tidCond); either may be "".
func (s *Store) selectSQL(ti *tableInfo, cond, tid string) string {
	cols := []string{q(s.idCol) + "::text", q(s.vecCol) + "::vector"}
	if s.payloadCol != "" {
		cols = append(cols, q(s.payloadCol)+"::text")
	}
	if s.textCol != "" {
		cols = append(cols, q(s.textCol)+"::text")
	}
	sql := "SELECT " + strings.Join(cols, ", ") + " FROM " + s.qualified()
	var where []string
	if cond != "" {
		// OFFSET 0 keeps the planner from inlining d into the predicate,
		// which would compute the SHA-256 once per reference to d (four
		// times a row for a BETWEEN over two bytes).
		sql += fmt.Sprintf(" CROSS JOIN LATERAL (SELECT sha256(convert_to('ragparity/bucket/v1' || %s::text, 'UTF8')) AS d OFFSET 0) h", q(s.idCol))
		where = append(where, cond)
	}
	if tid != "" {
		where = append(where, tid)
	}
	if s.filter != "" {
		where = append(where, s.filter)
	}
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	return sql
}

func idKind(typ string) parity.IDKind {
	switch typ {
	case "int2", "int4", "int8":
		return parity.IDInt
	case "uuid":
		return parity.IDUUID
	}
	return parity.IDString
}

var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

func (s *Store) scan(ctx context.Context, cond, tid string, fn func(p *parity.Point) error) error {
	// Re-read the catalog: the table may have changed since Settings.
	ti, err := s.inspect(ctx)
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.wrap("scan", err)
	}
	defer func() {
		if ctx.Err() != nil {
			// A store that stopped answering must not hold us up: drop the
			// connection at once instead of waiting for a cancel request.
			conn.Hijack().PgConn().Conn().Close()
			return
		}
		conn.Release()
	}()
	defer scanStream(conn.Conn().PgConn().Conn())()
	cp := newCopyParser(idKind(ti.id.typ), s.payloadCol != "", s.textCol != "", fn)
	sql := "COPY (" + s.selectSQL(ti, cond, tid) + ") TO STDOUT (FORMAT binary)"
	// The rows are parsed as pgconn hands over each CopyData message, in
	// this goroutine: no pipe, no second goroutine, no copy of the stream.
	_, cerr := conn.Conn().PgConn().CopyTo(ctx, cp, sql)
	if cerr == nil {
		cerr = cp.finish()
	}
	if cerr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pgvector: scan %s: %w", s.name(), ctx.Err())
		}
		var ce callbackErr
		if errors.As(cerr, &ce) {
			return ce.err
		}
		var pe parseErr
		if errors.As(cerr, &pe) {
			return pe.err
		}
		return s.wrap("scan", cerr)
	}
	return nil
}

// callbackErr carries an error returned by the caller's fn.
type callbackErr struct{ err error }

func (c callbackErr) Error() string { return c.err.Error() }

// parseErr is a malformed COPY stream.
type parseErr struct{ err error }

func (p parseErr) Error() string { return p.err.Error() }

// copyParser parses PostgreSQL's binary COPY stream as it is written to it:
// a header, then per row an int16 field count and per field an int32 length
// (-1 for NULL) and the bytes; -1 as the field count ends the stream.
// Vectors arrive in pgvector's binary form: int16 dim, int16 unused, dim
// big-endian float4. PostgreSQL sends a row per CopyData message, so a
// Write usually holds whole rows, parsed in place; a row split across
// writes is gathered in pending first.
type copyParser struct {
	kind                parity.IDKind
	hasPayload, hasText bool
	want                int
	fn                  func(p *parity.Point) error
	header, ended       bool
	pending             []byte
	p                   parity.Point
	vals                []float32
}

func newCopyParser(kind parity.IDKind, hasPayload, hasText bool, fn func(p *parity.Point) error) *copyParser {
	c := &copyParser{kind: kind, hasPayload: hasPayload, hasText: hasText, want: 2, fn: fn}
	if hasPayload {
		c.want++
	}
	if hasText {
		c.want++
	}
	c.p.Vectors = make([]parity.NamedVector, 1)
	return c
}

func (c *copyParser) Write(b []byte) (int, error) {
	n := len(b)
	data := b
	if len(c.pending) > 0 {
		c.pending = append(c.pending, b...)
		data = c.pending
	}
	for len(data) > 0 {
		used, err := c.next(data)
		if err != nil {
			return 0, err
		}
		if used == 0 {
			break // an incomplete row: wait for more
		}
		data = data[used:]
	}
	if len(c.pending) > 0 {
		c.pending = append(c.pending[:0], data...) // memmove: data is inside pending
	} else if len(data) > 0 {
		c.pending = append(c.pending, data...)
	}
	return n, nil
}

// finish checks the stream ended properly.
func (c *copyParser) finish() error {
	if !c.ended || len(c.pending) > 0 {
		return parseErr{errors.New("copy: stream ended before its trailer")}
	}
	return nil
}

// next parses one unit (the header, a row or the trailer) at the start of
// d and returns the bytes it used, 0 when d holds only part of it.
func (c *copyParser) next(d []byte) (int, error) {
	if c.ended {
		return 0, parseErr{errors.New("copy: data after the trailer")}
	}
	if !c.header {
		if len(d) < 19 {
			return 0, nil
		}
		if !bytes.Equal(d[:11], copySignature) {
			return 0, parseErr{errors.New("copy header: bad signature")}
		}
		ext := int(binary.BigEndian.Uint32(d[15:19]))
		if ext < 0 || len(d) < 19+ext {
			return 0, nil
		}
		c.header = true
		return 19 + ext, nil
	}
	if len(d) < 2 {
		return 0, nil
	}
	nf := int16(binary.BigEndian.Uint16(d))
	if nf == -1 {
		c.ended = true
		return 2, nil
	}
	if int(nf) != c.want {
		return 0, parseErr{fmt.Errorf("copy row: %d fields, want %d", nf, c.want)}
	}
	// Field boundaries first: a row is parsed only once it is whole.
	var f [4][]byte
	var null [4]bool
	off := 2
	for i := 0; i < c.want; i++ {
		if len(d) < off+4 {
			return 0, nil
		}
		l := int32(binary.BigEndian.Uint32(d[off:]))
		off += 4
		if l < 0 {
			null[i] = true
			continue
		}
		if len(d) < off+int(l) {
			return 0, nil
		}
		f[i] = d[off : off+int(l)]
		off += int(l)
	}
	p := &c.p
	if null[0] {
		return 0, parseErr{errors.New("a row has a NULL id")}
	}
	p.ID = parity.ID{Kind: c.kind, S: string(f[0])}
	if null[1] {
		p.Vectors = p.Vectors[:0]
	} else {
		field := f[1]
		if len(field) < 4 {
			return 0, parseErr{fmt.Errorf("id %s: short vector", p.ID.S)}
		}
		dim := int(binary.BigEndian.Uint16(field[:2]))
		if len(field) != 4+4*dim {
			return 0, parseErr{fmt.Errorf("id %s: vector length %d does not match dim %d", p.ID.S, len(field), dim)}
		}
		if cap(c.vals) < dim {
			c.vals = make([]float32, dim)
		}
		vals := c.vals[:dim]
		src := field[4:]
		for i := range vals {
			vals[i] = math.Float32frombits(binary.BigEndian.Uint32(src[4*i:]))
		}
		p.Vectors = p.Vectors[:1]
		p.Vectors[0] = parity.NamedVector{Values: vals}
	}
	i := 2
	p.Payload = nil
	if c.hasPayload {
		if !null[i] {
			p.Payload = f[i]
		}
		i++
	}
	p.Text, p.HasText = "", false
	if c.hasText && !null[i] {
		p.Text, p.HasText = string(f[i]), true
	}
	if err := c.fn(p); err != nil {
		return 0, callbackErr{err}
	}
	return off, nil
}

var _ adapters.ServerPaced = (*Store)(nil)

// ServerPaced is true: one backend's COPY streams the rows, and hashing
// them in the reading goroutine keeps up with it (README "Benchmarks").
func (s *Store) ServerPaced() bool { return true }
