package gate

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/verifier"
)

func testBaseline(t testing.TB) (*Baseline, *Signer) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	s := &Signer{Key: k}
	b := &Baseline{Release: "r1", From: "a", Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Index:    IndexBaseline{IndexHash: strings.Repeat("ab", 32), Buckets: 16, Points: 1, Leaves: []verifier.LeafJSON{{Bucket: 3, Count: 1, Sum: strings.Repeat("01", 32)}}},
		Contract: map[string]string{"schema_rev": "s1", "model_tag": "m", "secrets_rev": "k"}}
	if err := s.SignBaseline(b); err != nil {
		t.Fatal(err)
	}
	return b, s
}

// TestCheckBaseline: a signed baseline of the release is accepted; one
// changed anywhere, of another release, signed by an untrusted key or with
// an ephemeral key is refused with the reason.
func TestCheckBaseline(t *testing.T) {
	b, s := testBaseline(t)
	trusted := []ed25519.PublicKey{s.Public()}
	if err := CheckBaseline(b, "r1", trusted); err != nil {
		t.Fatalf("a good baseline: %v", err)
	}
	tampered := *b
	tampered.Contract = map[string]string{"schema_rev": "s2", "model_tag": "m", "secrets_rev": "k"}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	for name, c := range map[string]struct {
		b       *Baseline
		release string
		keys    []ed25519.PublicKey
		want    string
	}{
		"Tampered":     {&tampered, "r1", trusted, "not signed by a trusted key"},
		"OtherRelease": {b, "r2", trusted, `is of release "r1"`},
		"UntrustedKey": {b, "r1", []ed25519.PublicKey{other.Public().(ed25519.PublicKey)}, "not signed by a trusted key"},
	} {
		if err := CheckBaseline(c.b, c.release, c.keys); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
	eph := &Signer{Key: s.Key, Ephemeral: true}
	if err := eph.SignBaseline(&Baseline{Release: "r1"}); err == nil {
		t.Errorf("an ephemeral key signed a baseline")
	}
}

// FuzzParseBaseline: any bytes parse to a baseline or an error, never a
// panic, and only the content that was signed passes CheckBaseline.
func FuzzParseBaseline(f *testing.F) {
	b, s := testBaseline(f)
	raw, _ := b.SigningBytes()
	f.Add([]byte(`{"format": "ragparity-baseline/v1"}`))
	f.Add([]byte(`not json`))
	f.Add(raw)
	f.Add([]byte(`{"format": "ragparity-baseline/v1", "release": "r1", "index": {"buckets": 3, "leaves": [{"b": 9, "n": 1, "sum": "zz"}]}, "signature": "AAAA"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pb, err := ParseBaseline("fuzz.json", data)
		if err != nil {
			return
		}
		// Only the signed content itself can pass.
		if err := CheckBaseline(pb, pb.Release, []ed25519.PublicKey{s.Public()}); err == nil {
			got, _ := pb.SigningBytes()
			if string(got) != string(raw) {
				t.Errorf("a baseline other than the signed one passed CheckBaseline:\n%s", got)
			}
		}
	})
}
