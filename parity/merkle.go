package parity

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
)

// Leaf is one Merkle bucket: the number of its points and the sum, modulo
// 2^256, of their point digests read as big-endian integers. Addition is
// commutative, so the leaf does not depend on scan order.
type Leaf struct {
	Count uint64
	Sum   Digest
}

// Add adds a point digest to the leaf.
func (l *Leaf) Add(d Digest) {
	l.Count++
	var carry uint64
	for i := 3; i >= 0; i-- {
		a := binary.BigEndian.Uint64(l.Sum[i*8:])
		b := binary.BigEndian.Uint64(d[i*8:])
		s, c := bits.Add64(a, b, carry)
		carry = c
		binary.BigEndian.PutUint64(l.Sum[i*8:], s)
	}
}

// Merge adds another leaf (of the same bucket, from another scan worker).
func (l *Leaf) Merge(o Leaf) {
	cnt := l.Count + o.Count
	l.Add(o.Sum)
	l.Count = cnt
}

// Hash is the leaf's hash in the tree.
func (l *Leaf) Hash() Digest {
	var b [64]byte
	buf := append(b[:0], tagLeaf...)
	buf = binary.BigEndian.AppendUint64(buf, l.Count)
	buf = append(buf, l.Sum[:]...)
	return sha256.Sum256(buf)
}

// Root computes the Merkle root over leaves (len a power of two): each inner
// node is SHA-256("ragparity/node/v1" || left || right).
func Root(leaves []Leaf) Digest {
	level := make([]Digest, len(leaves))
	for i := range leaves {
		level[i] = leaves[i].Hash()
	}
	var b [128]byte
	for len(level) > 1 {
		next := level[:len(level)/2]
		for i := range next {
			buf := append(b[:0], tagNode...)
			buf = append(buf, level[2*i][:]...)
			buf = append(buf, level[2*i+1][:]...)
			next[i] = sha256.Sum256(buf)
		}
		level = next
	}
	if len(level) == 0 {
		return Digest{}
	}
	return level[0]
}

// Hex returns the lower-case hex form.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// ParseDigest parses a 64-hex-digit digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return d, fmt.Errorf("not a 64-hex-digit SHA-256 digest: %q", s)
	}
	copy(d[:], b)
	return d, nil
}

// IndexHash = SHA-256("index/v2" || settings_digest || content_root).
func IndexHash(settings, content Digest) Digest {
	var b [80]byte
	buf := append(b[:0], tagIndex...)
	buf = append(buf, settings[:]...)
	buf = append(buf, content[:]...)
	return sha256.Sum256(buf)
}

// String returns the hex form.
func (d Digest) String() string { return d.Hex() }

// Node is an inner node of the tree: SHA-256("ragparity/node/v1" || left
// || right).
func Node(left, right Digest) Digest {
	var b [128]byte
	buf := append(b[:0], tagNode...)
	buf = append(buf, left[:]...)
	buf = append(buf, right[:]...)
	return sha256.Sum256(buf)
}

// Levels returns every level of the tree over leaves (len a power of two):
// Levels(l)[0] is the root alone, Levels(l)[d] the 2^d nodes at depth d,
// the last level the leaves' hashes.
func Levels(leaves []Leaf) [][]Digest {
	if len(leaves) == 0 {
		return nil
	}
	level := make([]Digest, len(leaves))
	for i := range leaves {
		level[i] = leaves[i].Hash()
	}
	out := [][]Digest{level}
	for len(level) > 1 {
		next := make([]Digest, len(level)/2)
		for i := range next {
			next[i] = Node(level[2*i], level[2*i+1])
		}
		out = append(out, next)
		level = next
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// RootOfNodes is the root over the nodes of one level (len a power of
// two): Root(leaves) == RootOfNodes(Levels(leaves)[d]) for every depth d.
func RootOfNodes(nodes []Digest) Digest {
	if len(nodes) == 0 {
		return Digest{}
	}
	level := append([]Digest(nil), nodes...)
	for len(level) > 1 {
		for i := 0; i < len(level)/2; i++ {
			level[i] = Node(level[2*i], level[2*i+1])
		}
		level = level[:len(level)/2]
	}
	return level[0]
}
