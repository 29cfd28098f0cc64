package pgvector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// Scan streams the table through COPY ... TO STDOUT (FORMAT binary): the
// fastest way PostgreSQL has to hand rows to a client, parsed here without
// per-row allocation.
func (s *Store) Scan(ctx context.Context, fn func(p *parity.Point) error) error {
	return s.scan(ctx, "", fn)
}

// ScanBuckets pushes the bucket filter down: the bucket of a row is computed
// in SQL from the same SHA-256 the verifier uses, so only those rows travel.
func (s *Store) ScanBuckets(ctx context.Context, f adapters.BucketFilter, fn func(p *parity.Point) error) error {
	if f.Buckets < 2 || f.Buckets > 1<<16 || f.Buckets&(f.Buckets-1) != 0 {
		return fmt.Errorf("pgvector: bucket count %d is not a power of two in [2, 65536]", f.Buckets)
	}
	if len(f.Keep) == 0 {
		return nil
	}
	k := 0
	for 1<<k < f.Buckets {
		k++
	}
	// Top k bits of the first two bytes of sha256('ragparity/bucket/v1' || id).
	expr := fmt.Sprintf(`((get_byte(h.d, 0) << 8 | get_byte(h.d, 1)) >> %d)`, 16-k)
	contiguous := f.Keep[len(f.Keep)-1]-f.Keep[0] == len(f.Keep)-1
	var cond string
	if contiguous {
		cond = fmt.Sprintf("%s BETWEEN %d AND %d", expr, f.Keep[0], f.Keep[len(f.Keep)-1])
	} else {
		var b strings.Builder
		for i, v := range f.Keep {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprint(&b, v)
		}
		cond = fmt.Sprintf("%s = ANY('{%s}'::int[])", expr, b.String())
	}
	return s.scan(ctx, cond, fn)
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

func (s *Store) selectSQL(ti *tableInfo, cond string) string {
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
		sql += fmt.Sprintf(" CROSS JOIN LATERAL (SELECT sha256(convert_to('ragparity/bucket/v1' || %s::text, 'UTF8')) AS d) h", q(s.idCol))
		where = append(where, cond)
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

func (s *Store) scan(ctx context.Context, cond string, fn func(p *parity.Point) error) error {
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
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	sql := "COPY (" + s.selectSQL(ti, cond) + ") TO STDOUT (FORMAT binary)"
	go func() {
		_, err := conn.Conn().PgConn().CopyTo(ctx, pw, sql)
		pw.CloseWithError(err)
		done <- err
	}()
	perr := parseCopy(bufio.NewReaderSize(pr, 256<<10), idKind(ti.id.typ), s.payloadCol != "", s.textCol != "", fn)
	pr.CloseWithError(errStopped)
	cerr := <-done
	if perr != nil && !errors.Is(perr, errStopped) {
		if ctx.Err() != nil {
			return fmt.Errorf("pgvector: scan %s: %w", s.name(), ctx.Err())
		}
		if cerr != nil && !errors.Is(cerr, errStopped) && !errors.Is(perr, errCallback) {
			return s.wrap("scan", cerr)
		}
		return unwrapCallback(perr)
	}
	if cerr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("pgvector: scan %s: %w", s.name(), ctx.Err())
		}
		return s.wrap("scan", cerr)
	}
	return nil
}

var errStopped = errors.New("scan stopped")

// errCallback marks errors returned by the caller's fn.
var errCallback = errors.New("callback")

type callbackErr struct{ err error }

func (c callbackErr) Error() string   { return c.err.Error() }
func (c callbackErr) Unwrap() []error { return []error{c.err, errCallback} }

func unwrapCallback(err error) error {
	var c callbackErr
	if errors.As(err, &c) {
		return c.err
	}
	return err
}

// parseCopy parses PostgreSQL's binary COPY stream: a header, then per row
// an int16 field count and per field an int32 length (-1 for NULL) and the
// bytes. Vectors arrive in pgvector's binary form: int16 dim, int16 unused,
// dim big-endian float4.
func parseCopy(r *bufio.Reader, kind parity.IDKind, hasPayload, hasText bool, fn func(p *parity.Point) error) error {
	hdr := make([]byte, 19)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return fmt.Errorf("copy header: %w", err)
	}
	if !bytes.Equal(hdr[:11], copySignature) {
		return errors.New("copy header: bad signature")
	}
	if ext := binary.BigEndian.Uint32(hdr[15:19]); ext > 0 {
		if _, err := r.Discard(int(ext)); err != nil {
			return fmt.Errorf("copy header: %w", err)
		}
	}
	want := 2
	if hasPayload {
		want++
	}
	if hasText {
		want++
	}
	var p parity.Point
	p.Vectors = make([]parity.NamedVector, 1)
	var vals []float32
	var idBuf, payload, text, field []byte
	var b4 [4]byte
	readField := func(dst []byte) ([]byte, bool, error) {
		if _, err := io.ReadFull(r, b4[:]); err != nil {
			return dst, false, err
		}
		n := int32(binary.BigEndian.Uint32(b4[:]))
		if n < 0 {
			return dst[:0], false, nil
		}
		if cap(dst) < int(n) {
			dst = make([]byte, n)
		}
		dst = dst[:n]
		_, err := io.ReadFull(r, dst)
		return dst, true, err
	}
	for {
		var b2 [2]byte
		if _, err := io.ReadFull(r, b2[:]); err != nil {
			return fmt.Errorf("copy row: %w", err)
		}
		nf := int16(binary.BigEndian.Uint16(b2[:]))
		if nf == -1 {
			return nil
		}
		if int(nf) != want {
			return fmt.Errorf("copy row: %d fields, want %d", nf, want)
		}
		var ok bool
		var err error
		if idBuf, ok, err = readField(idBuf); err != nil {
			return fmt.Errorf("copy row: %w", err)
		} else if !ok {
			return errors.New("a row has a NULL id")
		}
		if field, ok, err = readField(field); err != nil {
			return fmt.Errorf("copy row: %w", err)
		}
		p.ID = parity.ID{Kind: kind, S: string(idBuf)}
		if !ok {
			p.Vectors = p.Vectors[:0]
		} else {
			if len(field) < 4 {
				return fmt.Errorf("id %s: short vector", p.ID.S)
			}
			dim := int(binary.BigEndian.Uint16(field[:2]))
			if len(field) != 4+4*dim {
				return fmt.Errorf("id %s: vector length %d does not match dim %d", p.ID.S, len(field), dim)
			}
			if cap(vals) < dim {
				vals = make([]float32, dim)
			}
			vals = vals[:dim]
			for i := range vals {
				vals[i] = math.Float32frombits(binary.BigEndian.Uint32(field[4+4*i:]))
			}
			p.Vectors = p.Vectors[:1]
			p.Vectors[0] = parity.NamedVector{Values: vals}
		}
		p.Payload = nil
		if hasPayload {
			if payload, ok, err = readField(payload); err != nil {
				return fmt.Errorf("copy row: %w", err)
			}
			if ok {
				p.Payload = payload
			}
		}
		p.Text, p.HasText = "", false
		if hasText {
			if text, ok, err = readField(text); err != nil {
				return fmt.Errorf("copy row: %w", err)
			}
			if ok {
				p.Text, p.HasText = string(text), true
			}
		}
		if err := fn(&p); err != nil {
			return callbackErr{err}
		}
	}
}
