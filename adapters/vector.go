// Package adapters defines the small interfaces ragparity uses to read (and,
// for replication, write) a region's vector store and blob bucket, and a
// registry that opens the right backend from a URL scheme.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/ragparity/ragparity/internal/registry"
	"github.com/ragparity/ragparity/internal/urlsafe"
	"github.com/ragparity/ragparity/parity"
)

// ErrNotFound is wrapped by every backend when a table, collection, bucket
// or object does not exist.
var ErrNotFound = errors.New("not found")

// VectorReader reads one collection (table) of a vector store.
//
// Every call takes ctx first and must return promptly with ctx.Err()
// (wrapped) once ctx is done. A missing table or collection returns an error
// wrapping ErrNotFound.
type VectorReader interface {
	// Settings reports the collection's settings as the store declares them
	// (dimension, metric, ANN parameters, quantization, ...).
	Settings(ctx context.Context) (parity.Settings, error)
	// Scan calls fn once for every point, in any order, streaming: it never
	// holds the whole collection in memory. fn may keep nothing of p after it
	// returns (the reader may reuse buffers). A non-nil error from fn stops
	// the scan and is returned.
	Scan(ctx context.Context, fn func(p *parity.Point) error) error
	// Close releases connections.
	Close() error
}

// BucketFilter selects points by their Merkle bucket (see verifier). It is
// passed to readers that can filter server-side.
type BucketFilter struct {
	// Buckets is the number of buckets (a power of two).
	Buckets int
	// Keep lists the bucket numbers wanted, sorted ascending.
	Keep []int
}

// BucketScanner is an optional ability: a reader that can push a bucket
// filter down to the store reads only the points of those buckets. The
// bucket of a point is defined by parity.BucketOf on its canonical id.
type BucketScanner interface {
	ScanBuckets(ctx context.Context, f BucketFilter, fn func(p *parity.Point) error) error
}

// RangeSharder is an optional ability: a reader that can split its store
// into N parts by physical position (pgvector: heap block ranges read by a
// TID Range Scan), so N shards together read each row once. A shard's
// points then fall in any bucket: its leaves are partial leaves of every
// bucket, and merging adds them (verifier.SplitRows). The verifier uses it
// only when the store also reports unique ids (UniqueIDs): two copies of an
// id in different parts would escape the per-shard duplicate check.
type RangeSharder interface {
	// RowShards reports whether ScanShard can split this store now (for
	// pgvector: a plain table on PostgreSQL 14 or later).
	RowShards(ctx context.Context) (bool, error)
	// ScanShard streams part i of n (0 <= i < n); the n parts together
	// hold every row exactly once.
	ScanShard(ctx context.Context, i, n int, fn func(p *parity.Point) error) error
}

// UniqueIDs is an optional ability: a reader whose store guarantees that no
// id is held twice (a unique index or primary key on the id) says so, and
// the verifier then skips its duplicate-id check, whose memory grows with
// the collection. A store that cannot tell returns false.
type UniqueIDs interface {
	IDsUnique(ctx context.Context) (bool, error)
}

// Hit is one search result.
type Hit struct {
	ID parity.ID
	// Score is a similarity: higher is better. Stores that rank by a
	// distance (l2, l1) report its negative.
	Score float64
	// Text and HasText are as in parity.Point.
	Text    string
	HasText bool
	// Payload is the hit's payload as JSON (text field excluded), nil when
	// it has none.
	Payload []byte
}

// SearchParams pin the ANN search effort (0 = store default), or ask for
// an exact search.
type SearchParams struct {
	// Exact asks for a brute-force search that uses no ANN index (pgvector:
	// a sequential scan, index scans disabled in the search's transaction;
	// Qdrant: exact=true), so that two stores holding the same points
	// return the same hits whatever their index builds. EfSearch and Probes
	// are ignored when it is set. A store that is exact anyway (embedded)
	// accepts it.
	Exact bool
	// EfSearch is the HNSW candidate list size (pgvector hnsw.ef_search,
	// Qdrant hnsw_ef).
	EfSearch int
	// Probes is the number of IVFFlat lists probed (pgvector ivfflat.probes).
	Probes int
}

// Searcher is an optional ability: nearest-neighbour search by vector.
//
// Search returns at most k hits, best first, ties broken by canonical id
// ascending (SortHits), with their text and payload. The query vector is
// used as given: callers embed it with the model the index declares. A
// store that cannot tell which metric to rank by returns an error naming
// the problem; a missing collection returns an error wrapping ErrNotFound.
type Searcher interface {
	Search(ctx context.Context, vector []float32, k int, p SearchParams) ([]Hit, error)
}

// SortHits orders hits by score descending, then canonical id ascending.
func SortHits(h []Hit) {
	sort.SliceStable(h, func(i, j int) bool {
		if h[i].Score != h[j].Score {
			return h[i].Score > h[j].Score
		}
		return h[i].ID.S < h[j].ID.S
	})
}

// CollectionSpec describes a collection to create.
type CollectionSpec struct {
	// Vectors maps vector name ("" for the unnamed vector) to dimension.
	Vectors map[string]int
	// Metric is one of "cosine", "l2", "dot", "l1".
	Metric string
	// HNSW parameters; zero means the store's default.
	HNSWM              int
	HNSWEfConstruction int
	// IDKind is the id type the collection uses.
	IDKind parity.IDKind
}

// VectorWriter writes points; it is used only by replicate/ and by tests
// that load fixtures.
type VectorWriter interface {
	// Create creates the collection (replacing nothing: an existing
	// collection is an error wrapping ErrExists).
	Create(ctx context.Context, spec CollectionSpec) error
	// Upsert writes points (insert or replace by id).
	Upsert(ctx context.Context, pts []parity.Point) error
	// Drop removes the collection; a missing one is not an error.
	Drop(ctx context.Context) error
}

// ContentKeeper is implemented by a store that can be set up to drop a
// point's payload or text (pgvector keeps them only in the columns its URL
// names). A rebuild writes both and checks the stage holds them, so it
// asks first instead of writing points it cannot keep.
type ContentKeeper interface {
	// KeepsContent is nil when the store keeps both; otherwise it says
	// which it drops and how to keep it.
	KeepsContent() error
}

// Stager is an optional ability used by rebuilds: writes go to a staged
// (shadow) collection that readers of the live one never see, and Promote
// swaps it in atomically, so a reader sees either the whole old index or
// the whole new one.
type Stager interface {
	// Stage opens the staged collection called name, creating it for spec
	// when absent. Reopening an existing stage (a resumed rebuild) keeps
	// the points already written to it.
	Stage(ctx context.Context, name string, spec CollectionSpec) (VectorStore, error)
	// Promote atomically makes the staged collection the live one (creating
	// the live name when it did not exist yet). The stage is consumed; the
	// previous live data is removed. A name never staged is an error
	// wrapping ErrNotFound.
	Promote(ctx context.Context, name string) error
	// DropStage removes a staged collection; a missing one is not an error.
	DropStage(ctx context.Context, name string) error
}

// Sealer is an optional ability of a Stager whose stage differs from what
// Promote will publish until it is finished (pgvector builds the ANN index
// after the bulk load): Seal finishes the stage so that it hashes as it will
// once promoted. Promote still works on an unsealed stage.
type Sealer interface {
	Seal(ctx context.Context, name string) error
}

// ErrExists is wrapped when creating something that already exists.
var ErrExists = errors.New("already exists")

// VectorStore is a reader that can also write.
type VectorStore interface {
	VectorReader
	VectorWriter
}

// Opener opens a vector store from a parsed URL.
type Opener func(ctx context.Context, u *url.URL) (VectorStore, error)

var vectorOpeners registry.Registry[Opener]

// SnapshotMarker is an optional ability: a reader that can name the store
// it reads (StoreID: the same value for the same table or collection of the
// same server, nothing secret) and a marker of the state a scan starting
// now reads (Snapshot: pgvector the WAL position, Qdrant the collection's
// counts and status). Shards of one run must carry the same pair, or
// `merge` would combine leaves of different states.
type SnapshotMarker interface {
	SnapshotMarker(ctx context.Context) (storeID, snapshot string, err error)
}

// ChangeMarker is an optional ability: a cheap marker that changes
// whenever the store's content may have changed (pgvector: the table's
// identity, its file node and its insert/update/delete counters), so that
// a regional agent rescans when it moves. Narrower than SnapshotMarker's
// snapshot, which moves with any write to the cluster.
type ChangeMarker interface {
	ChangeMarker(ctx context.Context) (string, error)
}

// RegisterVector registers an opener for a URL scheme. Backends call it from
// init().
func RegisterVector(scheme string, o Opener) { vectorOpeners.Register(scheme, o) }

// VectorSchemes lists registered schemes, sorted.
func VectorSchemes() []string { return vectorOpeners.Schemes() }

// OpenVector opens the store a URL names.
func OpenVector(ctx context.Context, raw string) (VectorStore, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("vector store URL: %w", RedactErr(err))
	}
	o, ok := vectorOpeners.Lookup(u.Scheme)
	if !ok {
		return nil, fmt.Errorf("vector store URL %q: unknown scheme %q (known: %s)", Redact(raw), u.Scheme, strings.Join(VectorSchemes(), ", "))
	}
	return o(ctx, u)
}

// Redact removes a password and secret-looking query parameters (api_key,
// token, password, secret, ...) from a URL for messages.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return urlsafe.Unparseable(raw)
	}
	q := u.Query()
	changed := false
	for k := range q {
		lk := strings.ToLower(k)
		for _, s := range []string{"key", "token", "password", "secret", "passwd", "signature", "credential"} {
			if strings.Contains(lk, s) {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// RedactErr strips the URL text from a *url.Error, which would otherwise echo
// a password; a parse error also loses its quoted fragments (a part of the
// password shown as an "invalid port").
func RedactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Op == "parse" {
			_, perr := urlsafe.Parse(ue.URL)
			if perr == nil {
				perr = errors.New("not a valid URL")
			}
			return perr
		}
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// StageInfo describes one existing stage of a live collection.
type StageInfo struct {
	// Name is the stage name given to Stager.Stage.
	Name string
	// Points is the number of points in the stage.
	Points int64
}

// StageLister is an optional ability of a Stager: it lists the stages of
// its live collection that exist now, sorted by name. Rebuilds use it to
// tell a stage that is still there from one that was dropped (fence records
// belong to a stage), and `ragparity stages` to show them.
type StageLister interface {
	Stages(ctx context.Context) ([]StageInfo, error)
}

var stageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// CheckStageName is the one stage-name rule every Stager applies: letters,
// digits, '-' and '_', starting with a letter or digit, without "__" (the
// separator backends put between a collection and its stage) and none of
// the backend's reserved names. backend prefixes the error.
func CheckStageName(backend, name string, reserved ...string) error {
	bad := !stageNameRE.MatchString(name) || strings.Contains(name, "__")
	for _, r := range reserved {
		bad = bad || name == r
	}
	if !bad {
		return nil
	}
	msg := fmt.Sprintf("%s: stage name %q: want letters, digits, '-' and '_', without \"__\"", backend, name)
	for _, r := range reserved {
		msg += fmt.Sprintf(", and not %q", r)
	}
	return errors.New(msg)
}

// ServerPaced is an optional ability: a reader whose Scan streams points
// from a database server over one connection (PostgreSQL's COPY), so that
// the server, not hashing, sets the pace, says so. The verifier then hashes
// each point in the goroutine that reads it: handing points to worker
// goroutines buys no speed there, and each hand-off is a wake-up whose CPU
// the server needs when they share a machine.
type ServerPaced interface {
	ServerPaced() bool
}
