// Package agent is the regional agent (README "Regional agents"): Server
// scans one region next to its stores, caches the scan and serves its
// settings, Merkle leaves, tree nodes and the per-point records of chosen
// buckets, every answer signed with the agent's Ed25519 key; Client is
// how the gate fetches them and checks them (trusted key, signature, age,
// leaves against the signed root, records against the leaves) before
// anything downstream sees a verifier.Scan.
package agent

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier"
)

// Format names the wire format of every answer.
const Format = "ragparity-agent/v1"

// Headers of a signed answer. The body is the payload (JSON) as signed;
// the signature covers sigTag, the request's path and query, a newline
// and the body, so an answer cannot be replayed for another request.
const (
	HeaderKeyID     = "Ragparity-Agent-Key"
	HeaderSignature = "Ragparity-Agent-Signature"
	sigTag          = "ragparity/agent/v1\n"
)

// Answer is the payload of every endpoint. The common part ties it to one
// scan (ContentRoot, ScannedAt); the rest depends on the request.
type Answer struct {
	Format      string    `json:"format"`
	Region      string    `json:"region"`
	Buckets     int       `json:"buckets"`
	Tolerance   float64   `json:"tolerance"`
	ContentRoot string    `json:"content_root"`
	ScannedAt   time.Time `json:"scanned_at"`

	Summary  *Summary  `json:"summary,omitempty"`
	Leaves   *Leaves   `json:"leaves,omitempty"`
	Nodes    *Nodes    `json:"nodes,omitempty"`
	Records  *Records  `json:"records,omitempty"`
	Manifest *Manifest `json:"manifest,omitempty"`
}

// Summary is the scan without its leaves.
type Summary struct {
	// Settings are the store's own, before any declared settings: the gate
	// merges its config's declared settings as for a direct scan.
	Hashed              map[string]any `json:"settings"`
	Engine              map[string]any `json:"settings_engine"`
	Info                map[string]any `json:"settings_info"`
	Points              int64          `json:"points"`
	ContentRootTolerant string         `json:"content_root_tolerant"`
	ScanMS              int64          `json:"scan_ms"`
	StoreID             string         `json:"store_id,omitempty"`
	Snapshot            string         `json:"snapshot,omitempty"`
	Duplicates          map[string]int `json:"duplicates,omitempty"`
}

// Leaves are exact leaves [From, From+n): Counts holds n uvarints, Sums
// n×32 bytes.
type Leaves struct {
	From   int    `json:"from"`
	N      int    `json:"n"`
	Counts []byte `json:"counts"`
	Sums   []byte `json:"sums"`
}

// Nodes are every node of the tree at Depth (2^Depth hashes of 32 bytes).
type Nodes struct {
	Depth  int    `json:"depth"`
	Hashes []byte `json:"hashes"`
}

// Records are the per-point digests of Buckets, in the spill's record
// layout: bucket (uint32 BE), id kind (1 byte), id (uint32 BE length +
// bytes), then the vector, tolerant vector, payload and text digests.
type Records struct {
	Buckets []int  `json:"buckets"`
	Data    []byte `json:"data"`
}

// KeyID names a public key: the first 8 bytes of its SHA-256, hex (as
// gate.KeyID).
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return fmt.Sprintf("%x", h[:8])
}

func signingBytes(requestURI string, body []byte) []byte {
	b := make([]byte, 0, len(sigTag)+len(requestURI)+1+len(body))
	b = append(b, sigTag...)
	b = append(b, requestURI...)
	b = append(b, '\n')
	return append(b, body...)
}

func encodeLeaves(ls []parity.Leaf, from int) *Leaves {
	out := &Leaves{From: from, N: len(ls), Sums: make([]byte, 0, 32*len(ls))}
	for i := range ls {
		out.Counts = binary.AppendUvarint(out.Counts, ls[i].Count)
		out.Sums = append(out.Sums, ls[i].Sum[:]...)
	}
	return out
}

func (l *Leaves) decode() ([]parity.Leaf, error) {
	if l.N < 0 || l.N > 1<<16 || len(l.Sums) != 32*l.N {
		return nil, fmt.Errorf("leaves: %d sums bytes for %d leaves", len(l.Sums), l.N)
	}
	out := make([]parity.Leaf, l.N)
	c := l.Counts
	for i := range out {
		v, n := binary.Uvarint(c)
		if n <= 0 {
			return nil, errors.New("leaves: counts are truncated")
		}
		c = c[n:]
		out[i].Count = v
		copy(out[i].Sum[:], l.Sums[32*i:])
	}
	if len(c) != 0 {
		return nil, errors.New("leaves: trailing bytes after the counts")
	}
	return out, nil
}

func appendRecord(b []byte, r *verifier.SpillRecord) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(r.Bucket))
	b = append(b, byte(r.ID.Kind))
	b = parity.AppendLP(b, r.ID.S)
	b = append(b, r.Digests.Vectors[:]...)
	b = append(b, r.Digests.VectorsTolerant[:]...)
	b = append(b, r.Digests.Payload[:]...)
	return append(b, r.Digests.Text[:]...)
}

func decodeRecords(b []byte, fn func(r *verifier.SpillRecord) error) error {
	var r verifier.SpillRecord
	for len(b) > 0 {
		if len(b) < 9 {
			return errors.New("records: truncated header")
		}
		r.Bucket = int(binary.BigEndian.Uint32(b))
		r.ID.Kind = parity.IDKind(b[4])
		n := int(binary.BigEndian.Uint32(b[5:]))
		b = b[9:]
		if n < 0 || len(b) < n+128 {
			return errors.New("records: truncated record")
		}
		r.ID.S = string(b[:n])
		b = b[n:]
		copy(r.Digests.Vectors[:], b[0:32])
		copy(r.Digests.VectorsTolerant[:], b[32:64])
		copy(r.Digests.Payload[:], b[64:96])
		copy(r.Digests.Text[:], b[96:128])
		b = b[128:]
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

// log2 of a power of two.
func log2(n int) int {
	d := 0
	for 1<<d < n {
		d++
	}
	return d
}
