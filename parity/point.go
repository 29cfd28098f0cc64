package parity

import "time"

// IDKind says how an id was typed in its store. The canonical string form
// alone takes part in hashing (see README "Hash format").
type IDKind uint8

const (
	IDString IDKind = iota
	IDInt
	IDUUID
)

// ID is a point id in canonical string form: integers in decimal, UUIDs in
// lower-case hyphenated form, text as stored.
type ID struct {
	Kind IDKind
	S    string
}

func (id ID) String() string { return id.S }

// NamedVector is one vector of a point. The unnamed (default) vector has
// Name "". It is dense (Values), sparse (Indices and Values) or a
// multivector (Multi vectors of len(Values)/Multi values each, in stored
// order: ColBERT-style late interaction).
type NamedVector struct {
	Name   string
	Values []float32
	// Indices are a sparse vector's dimensions, strictly ascending, one per
	// value; nil for a dense vector or a multivector.
	Indices []uint32
	// Sparse marks a sparse vector (an empty one has no Indices).
	Sparse bool
	// Multi is a multivector's vector count (0: not a multivector).
	Multi int
}

// Point is one stored point as a reader returns it.
type Point struct {
	ID ID
	// Vectors sorted by Name (readers must return them sorted).
	Vectors []NamedVector
	// Payload is the point's payload as JSON (any key order or spacing),
	// nil when the store has no payload for it. The text field, when the
	// region names one, is NOT part of Payload.
	Payload []byte
	// Text is the chunk text; HasText is false when the region has no text
	// field configured or the point has none.
	Text    string
	HasText bool
}

// Settings is what a store says about a collection.
//
// Hashed settings are the semantic ones, which change what retrieval
// returns for the same content (dimension, metric, model tag, analyzer and
// chunker versions, anything that changes stored values): they go into the
// settings digest and so into INDEX_HASH. Engine settings are how a store
// holds and indexes that content (index type and build parameters, index
// quantization, storage type and normalisation behaviour): they go into
// the engine digest, compared as a separate finding, so the same content in
// pgvector and in Qdrant has one INDEX_HASH. Info settings (engine name,
// on_disk, shard counts, points_count) are reported, never hashed.
type Settings struct {
	Hashed map[string]any
	Engine map[string]any
	Info   map[string]any
}

// NewSettings returns empty, non-nil Settings.
func NewSettings() Settings {
	return Settings{Hashed: map[string]any{}, Engine: map[string]any{}, Info: map[string]any{}}
}

// ObjectInfo describes one object as a listing (or a Stat) reports it.
type ObjectInfo struct {
	// Key is relative to the store's prefix, '/'-separated.
	Key  string
	Size int64
	// ETag as the store reports it, without quotes; "" when the store has
	// none. Not a content hash: see verifier (README "Blob manifest parity").
	ETag         string
	LastModified time.Time
	// Stored full-object checksums, base64 as S3 reports them; "" when the
	// store did not report one. A listing usually carries none: they come
	// from BlobStater.Stat.
	ChecksumSHA256, ChecksumCRC64NVME string
	// Identity is the store's own identity of this version of the object,
	// beyond size, ETag and last-modified: a local file's device, inode and
	// ctime; an S3 object's version id when the listing reports one. ""
	// when the store has none. The content-hash cache trusts an entry only
	// when all of them are unchanged.
	Identity string
}
