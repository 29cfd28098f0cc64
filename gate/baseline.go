package gate

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ragparity/ragparity/internal/termui"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/probe"
	"github.com/ragparity/ragparity/verifier"
	"github.com/ragparity/ragparity/verifier/blob"
)

// BaselineFormat names the baseline document format.
const BaselineFormat = "ragparity-baseline/v1"

// Baseline is the signed record of what a faithful region of one release
// looks like (metrics.md, "Failover gate"): every region is verified
// against it on its own, so a region's result never depends on whether
// another region answered, and a lone region can still be decided and
// localised.
type Baseline struct {
	Format  string    `json:"format"`
	ID      string    `json:"id"`
	Release string    `json:"release"`
	Created time.Time `json:"created_at"`
	// From names the region the baseline was taken from.
	From string `json:"from"`

	Index    IndexBaseline     `json:"index"`
	Blobs    *BlobBaseline     `json:"blobs,omitempty"`
	Contract map[string]string `json:"contract"`
	// ModelTag is the embedder's model tag the index declares.
	ModelTag string `json:"model_tag,omitempty"`
	// Probes is the probe baseline per question and seed (nil without a
	// gold set).
	Probes *probe.Baseline `json:"probes,omitempty"`
	// BelowFloor records a release accepted below the quality floors:
	// the floors it missed and the reason given.
	BelowFloor *BelowFloor `json:"below_floor,omitempty"`

	KeyID     string `json:"key_id,omitempty"`
	Signature string `json:"signature,omitempty"`
}

// IndexBaseline is the INDEX_HASH of the release and its Merkle leaves.
type IndexBaseline struct {
	IndexHash      string         `json:"index_hash"`
	SettingsDigest string         `json:"settings_digest"`
	Settings       map[string]any `json:"settings"`
	// EngineDigest and Engine are the engine settings (index type and
	// build parameters, quantization, storage): compared as a separate
	// finding, never part of INDEX_HASH.
	EngineDigest string         `json:"engine_digest"`
	Engine       map[string]any `json:"engine"`
	ContentRoot  string         `json:"content_root"`
	Points       int64          `json:"points"`
	Buckets      int            `json:"buckets"`
	// Leaves are the non-empty leaves (bucket, count, sum).
	Leaves []verifier.LeafJSON `json:"leaves"`
}

// BlobBaseline is the blob manifest of the release: its hash and every
// entry (key, size, sha256), so that a differing region's keys can be
// named with no other region to compare with.
type BlobBaseline struct {
	ManifestHash string      `json:"manifest_hash"`
	Objects      int64       `json:"objects"`
	Bytes        int64       `json:"bytes"`
	Entries      []BlobEntry `json:"entries"`
}

// BlobEntry is one object of a blob baseline.
type BlobEntry struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// BelowFloor is a release accepted below the quality floors.
type BelowFloor struct {
	Reason string   `json:"reason"`
	Missed []string `json:"missed"`
}

// NewIndexBaseline records a whole-index scan.
func NewIndexBaseline(s *verifier.Scan) IndexBaseline {
	ib := IndexBaseline{IndexHash: s.IndexHash().Hex(), SettingsDigest: s.SettingsDigest.Hex(),
		Settings: s.Settings.Hashed, EngineDigest: s.EngineDigest.Hex(), Engine: s.Settings.Engine, ContentRoot: s.ContentRoot().Hex(), Points: s.Points, Buckets: s.Buckets,
		Leaves: []verifier.LeafJSON{}}
	for b, l := range s.Leaves {
		if l.Count > 0 {
			ib.Leaves = append(ib.Leaves, verifier.LeafJSON{Bucket: b, Count: l.Count, Sum: l.Sum.Hex()})
		}
	}
	return ib
}

// leaves returns the baseline's leaves as a full slice.
func (ib *IndexBaseline) leaves() ([]parity.Leaf, error) {
	if !parity.ValidBuckets(ib.Buckets) {
		return nil, fmt.Errorf("baseline: index buckets %d is not a power of two in [2, 65536]", ib.Buckets)
	}
	ls := make([]parity.Leaf, ib.Buckets)
	for _, l := range ib.Leaves {
		if l.Bucket < 0 || l.Bucket >= ib.Buckets {
			return nil, fmt.Errorf("baseline: leaf bucket %d out of range", l.Bucket)
		}
		sum, err := parity.ParseDigest(l.Sum)
		if err != nil {
			return nil, fmt.Errorf("baseline: leaf %d: %w", l.Bucket, err)
		}
		ls[l.Bucket] = parity.Leaf{Count: l.Count, Sum: sum}
	}
	return ls, nil
}

// NewBlobBaseline records a content-mode manifest.
func NewBlobBaseline(m *blob.BlobManifest) (*BlobBaseline, error) {
	if m.Partial() {
		return nil, fmt.Errorf("baseline: the blob manifest of %s holds only some of its entries (a regional agent's): a baseline records every entry", m.Location)
	}
	bb := &BlobBaseline{ManifestHash: m.Hash().Hex(), Objects: m.Objects, Bytes: m.Bytes, Entries: []BlobEntry{}}
	for _, e := range m.Entries {
		if e.Basis != blob.BasisContent && e.Basis != blob.BasisChecksumSHA256 {
			return nil, fmt.Errorf("baseline: blob %q has no content hash (basis %s)", e.Key, e.Basis)
		}
		bb.Entries = append(bb.Entries, BlobEntry{Key: e.Key, Size: e.Size, SHA256: hex.EncodeToString(e.SHA256[:])})
	}
	return bb, nil
}

// manifest rebuilds the baseline's manifest, for blob.DiffManifests.
func (bb *BlobBaseline) manifest() (*blob.BlobManifest, error) {
	m := &blob.BlobManifest{Location: "baseline", Mode: blob.ModeContent, Objects: bb.Objects, Bytes: bb.Bytes}
	for _, e := range bb.Entries {
		sha, err := parity.ParseDigest(e.SHA256)
		if err != nil {
			return nil, fmt.Errorf("baseline: blob %q: %w", e.Key, err)
		}
		m.Entries = append(m.Entries, blob.BlobEntry{Key: e.Key, Size: e.Size, SHA256: sha, Basis: blob.BasisContent})
	}
	if err := m.Finish(); err != nil {
		return nil, err
	}
	if h := m.Hash().Hex(); h != bb.ManifestHash {
		return nil, fmt.Errorf("baseline: blob entries hash to %s, not the recorded manifest %s", parity.ShortHex(h), parity.ShortHex(bb.ManifestHash))
	}
	return m, nil
}

// SigningBytes is the canonical JSON of the baseline without its
// signature.
func (b *Baseline) SigningBytes() ([]byte, error) {
	c := *b
	c.Signature = ""
	raw, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return parity.CanonicalPayload(raw)
}

// Digest identifies a baseline's content (its signing bytes' SHA-256).
func (b *Baseline) Digest() (string, error) {
	sb, err := b.SigningBytes()
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(parity.SHA256(sb)), nil
}

// SignBaseline gives the baseline its id and signature. An ephemeral key
// is refused: nobody could check the baseline later.
func (s *Signer) SignBaseline(b *Baseline) error {
	if s.Ephemeral {
		return errors.New("a baseline needs gate.signing_key: one signed with an ephemeral key could never be checked again")
	}
	b.Format = BaselineFormat
	b.KeyID, b.Signature = s.KeyID(), ""
	if b.ID == "" {
		d, err := b.Digest()
		if err != nil {
			return err
		}
		b.ID = "b" + b.Created.UTC().Format("20060102T150405Z") + "-" + d[:8]
	}
	sb, err := b.SigningBytes()
	if err != nil {
		return err
	}
	b.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.Key, sb))
	return nil
}

// ErrBaselineRefused wraps every reason a baseline is not used.
var ErrBaselineRefused = errors.New("baseline refused")

// CheckBaseline verifies a baseline before use: its format, its signature
// by one of the trusted keys, and its release.
func CheckBaseline(b *Baseline, release string, trusted []ed25519.PublicKey) error {
	refuse := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBaselineRefused, fmt.Sprintf(format, a...))
	}
	if b.Format != BaselineFormat {
		return refuse("format %q, want %q", b.Format, BaselineFormat)
	}
	if b.Release != release {
		return refuse("baseline %s is of release %q, the config verifies %q", b.ID, b.Release, release)
	}
	sig, err := base64.StdEncoding.DecodeString(b.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return refuse("baseline %s has no valid signature", b.ID)
	}
	sb, err := b.SigningBytes()
	if err != nil {
		return refuse("baseline %s: %v", b.ID, err)
	}
	for _, k := range trusted {
		if ed25519.Verify(k, sb, sig) {
			if _, err := b.Index.leaves(); err != nil {
				return refuse("%v", err)
			}
			return nil
		}
	}
	return refuse("baseline %s (key %s) is not signed by a trusted key (gate.signing_key, gate.baseline_keys): tampered with, or made elsewhere", b.ID, b.KeyID)
}

// ReadBaselineFile reads a baseline document (as `baseline export` writes
// it); it does not check it (CheckBaseline does).
func ReadBaselineFile(path string) (*Baseline, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	return ParseBaseline(path, raw)
}

// ParseBaseline parses a baseline document; name is for messages.
func ParseBaseline(name string, raw []byte) (*Baseline, error) {
	if len(raw) > 256<<20 {
		return nil, fmt.Errorf("%s: larger than 256 MiB, not a baseline", name)
	}
	var b Baseline
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%s: not a baseline document: %w", name, err)
	}
	if b.Format != BaselineFormat {
		return nil, fmt.Errorf("%s: format %q, want %q", name, b.Format, BaselineFormat)
	}
	return &b, nil
}

// WriteBaselineFile writes a baseline atomically (temp file, rename).
func WriteBaselineFile(path string, b *Baseline) error {
	raw, err := json.MarshalIndent(b, "", " ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("baseline: %w", err)
	}
	return nil
}

// timeNow is time.Now, replaceable in tests.
var timeNow = time.Now

// WriteText prints the baseline for people.
func (b *Baseline) WriteText(w io.Writer) {
	fmt.Fprintf(w, "baseline %s of release %s, taken from %s at %s, signed by key %s\n", b.ID, b.Release, b.From, b.Created.Format(time.RFC3339), b.KeyID)
	fmt.Fprintf(w, "  INDEX_HASH   %s (%d points, %d non-empty of %d buckets)\n", b.Index.IndexHash, b.Index.Points, len(b.Index.Leaves), b.Index.Buckets)
	if b.Blobs != nil {
		fmt.Fprintf(w, "  blobs        manifest %s (%d objects, %s)\n", b.Blobs.ManifestHash, b.Blobs.Objects, termui.Bytes(b.Blobs.Bytes))
	} else {
		fmt.Fprintf(w, "  blobs        none recorded\n")
	}
	fmt.Fprintf(w, "  contract     schema_rev=%s model_tag=%s secrets_rev=%s\n", b.Contract["schema_rev"], b.Contract["model_tag"], b.Contract["secrets_rev"])
	if b.Probes != nil {
		runs := 0
		for _, q := range b.Probes.Questions {
			runs += len(q.Runs)
		}
		fmt.Fprintf(w, "  probes       %d runs of %d questions (k=%d, seeds %v, %s search) on gold set %s\n", runs, len(b.Probes.Questions), b.Probes.K, b.Probes.Seeds, b.Probes.Search, parity.ShortHex(b.Probes.Gold.Digest))
	} else {
		fmt.Fprintf(w, "  probes       none recorded (create with --goldset)\n")
	}
	if bf := b.BelowFloor; bf != nil {
		fmt.Fprintf(w, "  BELOW THE QUALITY FLOORS, accepted: %q (missed: %v)\n", bf.Reason, bf.Missed)
	}
}
