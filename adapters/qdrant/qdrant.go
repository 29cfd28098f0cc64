// Package qdrant reads and writes a Qdrant collection over gRPC with the
// official client (github.com/qdrant/go-client). The URL is
//
//	qdrant://host:6334/collection?text=content&page_size=1000&tls=false&api_key=...
//
// Its parts:
//   - host:port is Qdrant's gRPC endpoint (default port 6334).
//   - text names the payload key holding the chunk text (optional).
//   - page_size is the number of points per Scroll page (default 1000).
//   - tls=true connects with TLS (default false).
//   - api_key authenticates; QDRANT_API_KEY is used when the URL has none.
//     The key never appears in error messages.
//
// Collection names resolve through Qdrant aliases, as every Qdrant points
// call does. Staged rebuilds (Stage, Promote; see stage.go) need the name
// to be an alias, which they switch to a new collection
// <alias>__rp_<stage>; names containing "__rp_" are reserved for them.
package qdrant

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

const (
	defaultPort     = 6334
	defaultPageSize = 1000
	maxPageSize     = 100000
	// upsertBatch is the number of points per Upsert request.
	upsertBatch = 256
	// maxRecvBytes lifts gRPC's 4 MiB default so a page of large vectors
	// (1000 × 3072 float32 is 12 MiB) fits in one Scroll response.
	maxRecvBytes = 512 << 20
)

func init() { adapters.RegisterVector("qdrant", Open) }

// Store is one Qdrant collection.
type Store struct {
	client   *qdrant.Client
	addr     string // host:port, for messages
	coll     string
	textKey  string
	pageSize uint32
	// vectors are the vector= names read and hashed (nil: all).
	vectors []string
	// borrowed is set on a stage's store: the client is the live store's
	// and Close leaves it open.
	borrowed bool
}

var _ adapters.VectorStore = (*Store)(nil)

// Open opens the collection a qdrant:// URL names. It does not contact the
// server; the first call does.
func Open(ctx context.Context, u *url.URL) (adapters.VectorStore, error) {
	return open(u)
}

// config is what a qdrant:// URL says.
type config struct {
	host     string
	port     int
	coll     string
	textKey  string
	pageSize uint32
	tls      bool
	apiKey   string
	// vectors, when set (vector=NAME[,NAME]), are the named vectors hashed
	// and read; the others are left out (a hybrid collection hashed on its
	// dense vector only, say).
	vectors []string
}

func parseURL(u *url.URL) (config, error) {
	c := config{host: u.Hostname(), port: defaultPort, pageSize: defaultPageSize}
	if !strings.EqualFold(u.Scheme, "qdrant") {
		return c, fmt.Errorf("qdrant: URL scheme %q, want qdrant://", u.Scheme)
	}
	if c.host == "" {
		c.host = "localhost"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return c, fmt.Errorf("qdrant: URL port %q is not a port number", p)
		}
		c.port = n
	}
	c.coll = strings.Trim(u.Path, "/")
	if c.coll == "" {
		return c, fmt.Errorf("qdrant: URL names no collection (want qdrant://host:%d/<collection>)", defaultPort)
	}
	if strings.Contains(c.coll, "/") {
		return c, fmt.Errorf("qdrant: URL path %q: want a single collection name", c.coll)
	}
	for k, vs := range u.Query() {
		v := ""
		if len(vs) > 0 {
			v = vs[len(vs)-1]
		}
		switch k {
		case "text":
			c.textKey = v
		case "page_size":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxPageSize {
				return c, fmt.Errorf("qdrant: URL page_size=%q: want an integer from 1 to %d", v, maxPageSize)
			}
			c.pageSize = uint32(n)
		case "tls":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return c, fmt.Errorf("qdrant: URL tls=%q: want true or false", v)
			}
			c.tls = b
		case "api_key":
			c.apiKey = v
		case "vector":
			for _, n := range strings.Split(v, ",") {
				if n = strings.TrimSpace(n); n != "" {
					c.vectors = append(c.vectors, n)
				}
			}
			if len(c.vectors) == 0 {
				return c, fmt.Errorf("qdrant: URL vector=%q: want one or more vector names, comma-separated", v)
			}
			sort.Strings(c.vectors)
		default:
			return c, fmt.Errorf("qdrant: unknown URL parameter %q (known: text, page_size, tls, api_key, vector)", k)
		}
	}
	if c.apiKey == "" {
		c.apiKey = os.Getenv("QDRANT_API_KEY")
	}
	return c, nil
}

func open(u *url.URL) (*Store, error) {
	c, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	client, err := qdrant.NewClient(&qdrant.Config{
		Host:                   c.host,
		Port:                   c.port,
		APIKey:                 c.apiKey,
		UseTLS:                 c.tls,
		SkipCompatibilityCheck: true, // Open must not block on the network
		PoolSize:               1,
		GrpcOptions: []grpc.DialOption{
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)),
		},
	})
	if err != nil {
		// The client's errors carry the address, never the key.
		return nil, fmt.Errorf("qdrant: connect %s: %w", net.JoinHostPort(c.host, strconv.Itoa(c.port)), err)
	}
	return &Store{
		client:   client,
		addr:     net.JoinHostPort(c.host, strconv.Itoa(c.port)),
		coll:     c.coll,
		textKey:  c.textKey,
		pageSize: c.pageSize,
		vectors:  c.vectors,
	}, nil
}

// Client is the underlying Qdrant client.
func (s *Store) Client() *qdrant.Client { return s.client }

// Collection is the collection (or alias) name the URL names.
func (s *Store) Collection() string { return s.coll }

// Close releases the connection (on a store returned by Stage it does
// nothing: the connection is the live store's).
func (s *Store) Close() error {
	if s.borrowed {
		return nil
	}
	return s.client.Close()
}

// fail turns an RPC error into the adapter's error: ctx.Err() wrapped when
// the context ended, ErrNotFound wrapped for a missing collection,
// otherwise the gRPC code and Qdrant's message.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("qdrant: %s collection %q: %w", op, s.coll, cerr)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("qdrant: %s collection %q at %s: %w", op, s.coll, s.addr, err)
	}
	switch st.Code() {
	case codes.NotFound:
		return fmt.Errorf("qdrant: collection %q: %w", s.coll, adapters.ErrNotFound)
	case codes.DeadlineExceeded:
		return fmt.Errorf("qdrant: %s collection %q at %s: %s: %w", op, s.coll, s.addr, st.Message(), context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("qdrant: %s collection %q at %s: %s: %w", op, s.coll, s.addr, st.Message(), context.Canceled)
	}
	return fmt.Errorf("qdrant: %s collection %q at %s: %s: %s", op, s.coll, s.addr, st.Code(), st.Message())
}

// Scan scrolls through the collection page by page (page_size points,
// with payload and vectors), in Qdrant's id order.
//
// When the name is an alias, Scan resolves it once and scrolls the
// collection it points at, so that a Promote switching the alias mid-scan
// cannot mix two collections' pages: the scan reads the old collection to
// its end, or, when Promote deletes it first, fails with an error wrapping
// ErrReplaced. (A server that will not list aliases is scrolled by name.)
//
// The store has no ScanBuckets: a Qdrant filter can match ids only by
// listing them (has_id) or payload fields, never by a hash of the id. It
// splits `hash --shard i/N` by position in the scroll order instead
// (ScanShard), so N shards read each point once.
func (s *Store) Scan(ctx context.Context, fn func(p *parity.Point) error) error {
	name := s.coll
	if t := s.aliasTarget(ctx); t != "" {
		name = t
	}
	return s.scroll(ctx, name, nil, -1, fn)
}

// scroll pages through collection name from start (nil: the first point),
// calling fn for at most max points (-1: to the end). Starting from the
// first point, a name the alias pointed at that is gone before the first
// page is resolved again; later, it is ErrReplaced.
func (s *Store) scroll(ctx context.Context, name string, start *qdrant.PointId, max int64, fn func(p *parity.Point) error) error {
	var (
		p       parity.Point
		payload []byte
		emitted int64
	)
	offset := start
	limit := s.pageSize
	for retries := 0; ; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("qdrant: scan collection %q: %w", s.coll, err)
		}
		if max >= 0 && max-emitted < int64(limit) {
			if max == emitted {
				return nil
			}
			limit = uint32(max - emitted)
		}
		resp, err := s.client.GetPointsClient().Scroll(ctx, &qdrant.ScrollPoints{
			CollectionName: name,
			Offset:         offset,
			Limit:          &limit,
			WithPayload:    qdrant.NewWithPayload(true),
			WithVectors:    s.withVectors(),
		})
		if err != nil && name != s.coll && errIs(err, codes.NotFound) && ctx.Err() == nil {
			if start == nil && offset == nil && retries < 3 {
				// Replaced before the first page: nothing was read yet,
				// resolve the alias again.
				retries++
				if name = s.aliasTarget(ctx); name == "" {
					name = s.coll
				}
				continue
			}
			return fmt.Errorf("qdrant: scan collection %q (alias of %q): %w", s.coll, name, ErrReplaced)
		}
		if err != nil {
			return s.fail(ctx, "scan", err)
		}
		for _, rp := range resp.GetResult() {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("qdrant: scan collection %q: %w", s.coll, err)
			}
			if payload, err = s.toPoint(rp, &p, payload); err != nil {
				return err
			}
			if err := fn(&p); err != nil {
				return err
			}
			emitted++
		}
		next := resp.GetNextPageOffset()
		if next == nil {
			return nil
		}
		if len(resp.GetResult()) == 0 {
			return fmt.Errorf("qdrant: scan collection %q: server returned an empty page with a next offset", s.coll)
		}
		offset = next
	}
}

var (
	_ adapters.UniqueIDs    = (*Store)(nil)
	_ adapters.RangeSharder = (*Store)(nil)
)

// IDsUnique is true: a point id is the collection's key (an upsert of an
// existing id replaces the point).
func (s *Store) IDsUnique(context.Context) (bool, error) { return true, nil }

// RowShards is true: ScanShard splits by position in the scroll order.
func (s *Store) RowShards(context.Context) (bool, error) { return true, nil }

// skipPage is how many ids one request of ScanShard's skip reads.
var skipPage int64 = 10000

// ScanShard reads the points at positions [i*C/n, (i+1)*C/n) of the scroll
// order (ascending id), C being the exact point count when the shard
// starts; the last shard reads to the end, so points added after another
// shard counted are not lost. The points before its range it skips by
// scrolling their ids only (no payload, no vectors): N shards read each
// point's payload and vectors once. Shards of a collection written between
// their starts may overlap or miss points; merge refuses shards whose
// snapshot markers (counts) differ.
func (s *Store) ScanShard(ctx context.Context, i, n int, fn func(p *parity.Point) error) error {
	if n < 1 || i < 0 || i >= n {
		return fmt.Errorf("qdrant: shard %d/%d: want 0 <= i < n", i, n)
	}
	name := s.coll
	if t := s.aliasTarget(ctx); t != "" {
		name = t
	}
	exact := true
	cr, err := s.client.GetPointsClient().Count(ctx, &qdrant.CountPoints{CollectionName: name, Exact: &exact})
	if err != nil {
		return s.fail(ctx, "count", err)
	}
	c := int64(cr.GetResult().GetCount())
	lo, hi := c*int64(i)/int64(n), c*int64(i+1)/int64(n)
	var start *qdrant.PointId
	for skip := lo; skip > 0; {
		limit := uint32(min(skip, skipPage))
		resp, err := s.client.GetPointsClient().Scroll(ctx, &qdrant.ScrollPoints{
			CollectionName: name,
			Offset:         start,
			Limit:          &limit,
			WithPayload:    qdrant.NewWithPayload(false),
			WithVectors:    qdrant.NewWithVectors(false),
		})
		if err != nil {
			return s.fail(ctx, "scan", err)
		}
		skip -= int64(len(resp.GetResult()))
		if start = resp.GetNextPageOffset(); start == nil {
			return nil // fewer points than counted: this shard's are gone
		}
		if len(resp.GetResult()) == 0 {
			return fmt.Errorf("qdrant: scan collection %q: server returned an empty page with a next offset", s.coll)
		}
	}
	max := hi - lo
	if i == n-1 {
		max = -1
	}
	return s.scroll(ctx, name, start, max, fn)
}

// toPoint fills p from a retrieved point, reusing p's slices and buf.
func (s *Store) toPoint(rp *qdrant.RetrievedPoint, p *parity.Point, buf []byte) ([]byte, error) {
	id, err := idFromProto(rp.GetId())
	if err != nil {
		return buf, fmt.Errorf("qdrant: scan collection %q: %w", s.coll, err)
	}
	p.ID = id
	if p.Vectors, err = appendVectors(p.Vectors[:0], rp.GetVectors()); err != nil {
		return buf, fmt.Errorf("qdrant: scan collection %q: point %s: %w", s.coll, id.S, err)
	}
	p.Text, p.HasText = "", false
	skip := ""
	if s.textKey != "" {
		if v, ok := rp.GetPayload()[s.textKey]; ok {
			if sv, ok := v.GetKind().(*qdrant.Value_StringValue); ok {
				p.Text, p.HasText = sv.StringValue, true
				skip = s.textKey
			}
		}
	}
	js, err := payloadJSON(buf, rp.GetPayload(), skip)
	if err != nil {
		return buf, fmt.Errorf("qdrant: scan collection %q: point %s: %w", s.coll, id.S, err)
	}
	p.Payload = js
	if js != nil {
		buf = js
	}
	return buf, nil
}

// errIs reports whether err carries the gRPC code c.
func errIs(err error, c codes.Code) bool {
	var se interface{ GRPCStatus() *status.Status }
	return errors.As(err, &se) && se.GRPCStatus().Code() == c
}

// withVectors selects every vector, or the vector= names.
func (s *Store) withVectors() *qdrant.WithVectorsSelector {
	if len(s.vectors) > 0 {
		return qdrant.NewWithVectorsInclude(s.vectors...)
	}
	return qdrant.NewWithVectors(true)
}
