package adapters

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/ragparity/ragparity/internal/registry"
	"github.com/ragparity/ragparity/internal/urlsafe"
	"github.com/ragparity/ragparity/parity"
)

// ErrDenied is wrapped by every blob backend when the store refuses access
// (wrong credentials, missing permission).
var ErrDenied = errors.New("access denied")

// BlobReader reads one bucket (or folder) under a prefix.
//
// Every call takes ctx first and returns promptly with ctx.Err() (wrapped)
// once ctx is done. A missing bucket or folder returns an error wrapping
// ErrNotFound; refused access an error wrapping ErrDenied.
type BlobReader interface {
	// List calls fn once for every object under the prefix, in any order,
	// streaming (it never holds the whole listing). fn is never called
	// concurrently. A non-nil error from fn stops the listing and is
	// returned. An empty (existing) bucket calls fn zero times.
	List(ctx context.Context, fn func(parity.ObjectInfo) error) error
	// Open streams an object's bytes. A missing key returns an error
	// wrapping ErrNotFound. The caller closes the reader.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Location names the store without secrets (endpoint, bucket, prefix):
	// it keys the content-hash cache and appears in messages.
	Location() string
	// Close releases connections.
	Close() error
}

// BlobStater is an optional ability: a reader that can report an object's
// stored full-object checksums (an S3 HEAD with checksum mode). Checksums
// that are not full-object (composite multipart checksums) are left "".
type BlobStater interface {
	Stat(ctx context.Context, key string) (parity.ObjectInfo, error)
}

// BlobNamespacer is an optional ability: where a store's objects live, so
// that two stores can be checked for overlap before one is written from the
// other. Space names the container (an endpoint and bucket; "file" for the
// local file system) and Prefix the part of it the store covers, "/"-
// terminated, or "" for all of it.
type BlobNamespacer interface {
	Namespace() (space, prefix string)
}

// BlobsOverlap reports whether a and b share objects: the same container
// and one prefix inside (or equal to) the other. Stores that cannot say
// are compared by Location.
func BlobsOverlap(a, b BlobReader) bool {
	na, okA := a.(BlobNamespacer)
	nb, okB := b.(BlobNamespacer)
	if !okA || !okB {
		la, lb := strings.TrimSuffix(a.Location(), "/")+"/", strings.TrimSuffix(b.Location(), "/")+"/"
		return strings.HasPrefix(la, lb) || strings.HasPrefix(lb, la)
	}
	sa, pa := na.Namespace()
	sb, pb := nb.Namespace()
	return sa == sb && (strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa))
}

// ParallelLister is an optional ability: a reader whose List runs several
// listing requests at once, at most n (the caller's worker bound).
type ParallelLister interface {
	SetListWorkers(n int)
}

// BlobWriter writes objects; it is used by `replicate blobs` and by tests.
type BlobWriter interface {
	// Put stores size bytes from r under key, replacing any object there.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// BlobStore is a blob reader that can also write.
type BlobStore interface {
	BlobReader
	BlobWriter
}

// BlobOpener opens a blob store from a parsed URL.
type BlobOpener func(ctx context.Context, u *url.URL) (BlobStore, error)

var blobOpeners registry.Registry[BlobOpener]

// RegisterBlob registers a blob opener for a URL scheme. Backends call it
// from init().
func RegisterBlob(scheme string, o BlobOpener) { blobOpeners.Register(scheme, o) }

// BlobSchemes lists registered blob schemes, sorted.
func BlobSchemes() []string { return blobOpeners.Schemes() }

// OpenBlob opens the blob store a URL names (s3://bucket/prefix?...,
// file:///path).
func OpenBlob(ctx context.Context, raw string) (BlobStore, error) {
	u, err := urlsafe.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("blob store URL: %w", err)
	}
	o, ok := blobOpeners.Lookup(u.Scheme)
	if !ok {
		return nil, fmt.Errorf("blob store URL %q: unknown scheme %q (known: %s)", Redact(raw), u.Scheme, strings.Join(BlobSchemes(), ", "))
	}
	return o(ctx, u)
}
