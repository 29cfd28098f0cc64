// Package vectortest is the conformance suite every vector-store backend
// runs (the objstore AcceptanceTest / rclone fstests pattern). Each backend's
// _test.go builds a Harness and calls Run.
package vectortest

import (
	"context"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// Harness tells the suite how to get fresh stores of one backend.
type Harness struct {
	// Name of the backend as printed in the test log ("pgvector", ...).
	Name string
	// Target says what the suite ran against (e.g. "in-process qdrant gRPC
	// server" or "real server at host:port"); logged so a reader can see
	// which backends actually ran.
	Target string
	// New returns a store for a fresh, unique, not-yet-created collection;
	// it registers its own cleanup with t.Cleanup.
	New func(t *testing.T) adapters.VectorStore
	// Missing returns a reader for a collection that does not exist.
	Missing func(t *testing.T) adapters.VectorReader
	// IDKinds lists the id types the backend supports.
	IDKinds []parity.IDKind
	// Hang, if set, returns a reader whose store answers the first page of
	// a scan and then stops answering (blocks until the request context is
	// done). The suite checks a scan then fails within the context deadline.
	Hang func(t *testing.T) adapters.VectorReader
	// ShardsReadAll documents a backend that cannot filter a scan by
	// Merkle bucket (no adapters.BucketScanner): each `hash --shard i/N`
	// then reads the whole collection and keeps its own buckets. The suite
	// checks that this is what happens; without it, that each shard reads
	// only its own rows.
	ShardsReadAll bool
	// ShardsByRows documents a backend that splits `hash --shard i/N` of
	// a collection with unique ids by physical row range
	// (adapters.RangeSharder): each shard reads its own rows, which fall
	// in every bucket, and merge adds the shards' leaves. The suite checks
	// the shards' split kind is SplitRows with it, SplitBuckets without.
	ShardsByRows bool
}

// ctx returns a test context.
func ctx(t *testing.T) context.Context { return t.Context() }
