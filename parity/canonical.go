package parity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"math"
	"slices"
	"unsafe"

	"github.com/gowebpki/jcs"
)

// Domain-separation tags. Changing any of them changes every hash: they are
// part of the published hash format (README, "Hash format").
const (
	tagBucket   = "ragparity/bucket/v1"
	tagVec      = "ragparity/vectors/v1"
	tagVecTol   = "ragparity/vectors-tolerant/v1"
	tagPayload  = "ragparity/payload/v1"
	tagText     = "ragparity/text/v1"
	tagPoint    = "ragparity/point/v1"
	tagLeaf     = "ragparity/leaf/v1"
	tagNode     = "ragparity/node/v1"
	tagSettings = "ragparity/settings/v2" // v2: semantic settings only
	tagEngine   = "ragparity/engine/v1"
	tagIndex    = "index/v2" // v2: engine settings left out of INDEX_HASH
)

// Digest is a SHA-256 value.
type Digest [32]byte

// PointDigests are the per-field digests of one point; the exact and
// tolerant point digests are derived from them.
type PointDigests struct {
	Vectors, VectorsTolerant, Payload, Text Digest
}

// CanonicalPayload returns the RFC 8785 (JCS) form of a JSON payload. A nil
// or empty payload and JSON null all canonicalise to "{}", since stores such
// as Qdrant cannot tell them apart.
func CanonicalPayload(raw []byte) ([]byte, error) {
	var p fastParser
	return p.canonicalPayload(nil, raw)
}

// canonicalPayload is CanonicalPayload appending to dst with p's buffers.
func (p *fastParser) canonicalPayload(dst, raw []byte) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return append(dst, "{}"...), nil
	}
	if out, ok := p.canonical(dst, raw); ok {
		return out, nil
	}
	out, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("canonical payload: %w", err)
	}
	return out, nil
}

// Hasher is a reusable per-goroutine hashing state.
type Hasher struct {
	buf, payload []byte
	json         fastParser
	h            hash.Hash
}

func AppendLP(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// Digests computes the field digests of p. tol is the tolerant digest's grid
// (e.g. 1e-6): each component is rounded to the nearest multiple of tol.
func (h *Hasher) Digests(p *Point, tol float64) (PointDigests, error) {
	return h.digests(p, tol, true)
}

// DigestsExact computes the field digests of p except the tolerant vectors
// digest, which it leaves zero: a third less hashing, for scans that need
// no tolerant root.
func (h *Hasher) DigestsExact(p *Point) (PointDigests, error) {
	return h.digests(p, 0, false)
}

func (h *Hasher) digests(p *Point, tol float64, tolerant bool) (PointDigests, error) {
	var d PointDigests
	// Vectors, exact: float32 little-endian bytes, vectors sorted by name.
	b := append(h.buf[:0], tagVec...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Vectors)))
	for i := range p.Vectors {
		v := &p.Vectors[i]
		if i > 0 && p.Vectors[i-1].Name >= v.Name {
			return d, fmt.Errorf("point %s: vectors not sorted by name or duplicated (%q, %q)", p.ID.S, p.Vectors[i-1].Name, v.Name)
		}
		b = AppendLP(b, v.Name)
		var err error
		if b, err = appendVector(b, v, p.ID.S, nil); err != nil {
			return d, err
		}
	}
	d.Vectors = sha256.Sum256(b)
	if tolerant {
		// Vectors, tolerant: each component rounded to the nearest multiple
		// of tol (in float64), then stored as float32 little-endian bytes.
		b = append(b[:0], tagVecTol...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.Vectors)))
		inv := 1 / tol
		for i := range p.Vectors {
			v := &p.Vectors[i]
			b = AppendLP(b, v.Name)
			var err error
			if b, err = appendVector(b, v, p.ID.S, func(x float32) float32 { return roundTo(x, inv, tol) }); err != nil {
				return d, err
			}
		}
		d.VectorsTolerant = sha256.Sum256(b)
	}
	h.buf = b

	cp, err := h.json.canonicalPayload(h.payload[:0], p.Payload)
	h.payload = cp
	if err != nil {
		return d, fmt.Errorf("point %s: %w", p.ID.S, err)
	}
	if h.h == nil {
		h.h = sha256.New()
	}
	hh := h.h
	hh.Reset()
	hh.Write([]byte(tagPayload))
	hh.Write(cp)
	hh.Sum(d.Payload[:0])

	hh.Reset()
	hh.Write([]byte(tagText))
	if p.HasText {
		hh.Write([]byte{1})
		io.WriteString(hh, p.Text)
	} else {
		hh.Write([]byte{0})
	}
	hh.Sum(d.Text[:0])
	return d, nil
}

// kindMarker stands where a dense vector's length would: no dense vector
// has 2^32-1 values, so a sparse vector or a multivector never encodes like
// a dense one.
const kindMarker = 0xFFFFFFFF

// appendVector appends one vector's canonical encoding (after its name):
//
//	dense:        u32be(len) || f32le(values)
//	sparse:       u32be(0xFFFFFFFF) || "s" || u32be(nnz) || u32be(indices ascending) || f32le(values)
//	multivector:  u32be(0xFFFFFFFF) || "m" || u32be(count) || u32be(dim) || f32le(vectors in stored order)
//
// with conv applied to every value (nil: the values as they are).
func appendVector(b []byte, v *NamedVector, id string, conv func(float32) float32) ([]byte, error) {
	switch {
	case v.Sparse:
		if len(v.Indices) != len(v.Values) {
			return b, fmt.Errorf("point %s: sparse vector %q has %d indices and %d values", id, v.Name, len(v.Indices), len(v.Values))
		}
		b = binary.BigEndian.AppendUint32(b, kindMarker)
		b = append(b, 's')
		b = binary.BigEndian.AppendUint32(b, uint32(len(v.Indices)))
		for i, ix := range v.Indices {
			if i > 0 && v.Indices[i-1] >= ix {
				return b, fmt.Errorf("point %s: sparse vector %q: indices not strictly ascending (%d, %d)", id, v.Name, v.Indices[i-1], ix)
			}
			b = binary.BigEndian.AppendUint32(b, ix)
		}
	case v.Multi > 0:
		if len(v.Values)%v.Multi != 0 {
			return b, fmt.Errorf("point %s: multivector %q: %d values are not %d vectors of one dimension", id, v.Name, len(v.Values), v.Multi)
		}
		b = binary.BigEndian.AppendUint32(b, kindMarker)
		b = append(b, 'm')
		b = binary.BigEndian.AppendUint32(b, uint32(v.Multi))
		b = binary.BigEndian.AppendUint32(b, uint32(len(v.Values)/v.Multi))
	default:
		b = binary.BigEndian.AppendUint32(b, uint32(len(v.Values)))
	}
	if conv == nil {
		// The exact encoding, the hot path: grow once, then store each
		// value's bits in place.
		if littleEndian && len(v.Values) > 0 {
			// In memory a []float32 already is its values' bits in
			// little-endian order: one copy.
			return append(b, unsafe.Slice((*byte)(unsafe.Pointer(&v.Values[0])), 4*len(v.Values))...), nil
		}
		n := len(b)
		b = slices.Grow(b, 4*len(v.Values))[:n+4*len(v.Values)]
		out := b[n:]
		for i, x := range v.Values {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
		}
		return b, nil
	}
	for _, x := range v.Values {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(conv(x)))
	}
	return b, nil
}

// roundTo rounds x to the nearest multiple of tol (inv = 1/tol); NaN and
// infinities pass through. -0 becomes +0.
func roundTo(x float32, inv, tol float64) float32 {
	r := float32(math.Round(float64(x)*inv) * tol)
	if r == 0 {
		return 0
	}
	return r
}

// PointDigest combines an id with field digests: the leaf contribution of a
// point. tolerant selects the tolerant vector digest.
func PointDigest(id string, d *PointDigests, tolerant bool) Digest {
	var b [256]byte
	buf := append(b[:0], tagPoint...)
	buf = AppendLP(buf, id)
	if tolerant {
		buf = append(buf, d.VectorsTolerant[:]...)
	} else {
		buf = append(buf, d.Vectors[:]...)
	}
	buf = append(buf, d.Payload[:]...)
	buf = append(buf, d.Text[:]...)
	return sha256.Sum256(buf)
}

// BucketOf returns the Merkle bucket of a canonical id: the top log2(n)
// bits of SHA-256("ragparity/bucket/v1" || id), n a power of two.
func BucketOf(id string, n int) int {
	var b [128]byte
	buf := append(append(b[:0], tagBucket...), id...)
	h := sha256.Sum256(buf)
	return int(binary.BigEndian.Uint32(h[:4]) >> (32 - log2(n)))
}

func log2(n int) uint {
	var k uint
	for (1 << k) < n {
		k++
	}
	return k
}

// ValidBuckets reports whether n is a usable bucket count.
func ValidBuckets(n int) bool { return n >= 2 && n <= 1<<16 && n&(n-1) == 0 }

// SHA256 is a convenience for callers that derive names from content.
func SHA256(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// littleEndian is whether this machine stores a float32's bits in
// little-endian order, the exact encoding's.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
