// Package gate combines every check of the failover gate (metrics.md) into
// one signed verdict per release, and answers router admission questions
// from it.
package gate

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ragparity/ragparity/parity"
)

// Status of a check, a region or the decision of a verdict (one type for
// the whole project: parity.Status).
type Status = parity.Status

const (
	Pass         = parity.Pass
	Fail         = parity.Fail
	Inconclusive = parity.Inconclusive
	Skipped      = parity.Skipped
	// Degraded: some regions are admitted, others are not (a decision).
	Degraded = parity.Degraded
)

// Check is one gate check's result.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Figure is the measured value and Threshold what it was held to,
	// both as text so that every check can state its own unit.
	Figure    string `json:"figure"`
	Threshold string `json:"threshold"`
	// Evidence names what failed: ids, keys, questions, fields.
	Evidence []string `json:"evidence"`
	// Warnings are findings that do not block (engine settings that differ
	// while gate.engine_parity is warn).
	Warnings []string `json:"warnings,omitempty"`
	// Regions that failed this check (empty when it passed or could not
	// run).
	FailedRegions []string `json:"failed_regions,omitempty"`
	// Regions is this check's result for each region, in config order:
	// every check is decided per region, against the reference.
	Regions   []CheckRegion `json:"regions,omitempty"`
	Error     string        `json:"error,omitempty"`
	ElapsedMS int64         `json:"elapsed_ms"`
	// Measures are the check's figures as numbers, exported as metrics
	// (names in metrics.go: delta_s, delta_s_drift, lambda_<state>,
	// dedupe_hits, dedupe_misses; any other name is exported as
	// ragparity_gate_check_measure).
	Measures []Measure `json:"measures,omitempty"`
}

// CheckRegion is one check's result for one region.
type CheckRegion struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Reason says why the region did not pass this check.
	Reason string `json:"reason,omitempty"`
}

// Measure is one number a check measured, for one region or ("") for all.
type Measure struct {
	Name   string  `json:"name"`
	Region string  `json:"region,omitempty"`
	Value  float64 `json:"value"`
}

// RegionVerdict is one region's admission and identity.
type RegionVerdict struct {
	Name string `json:"name"`
	// Status is pass (every check passed: admitted), fail (a check found
	// a difference) or inconclusive (a check could not run for it).
	Status       Status `json:"status"`
	Admit        bool   `json:"admit"`
	IndexHash    string `json:"index_hash,omitempty"`
	ManifestHash string `json:"manifest_hash,omitempty"`
	SchemaRev    string `json:"schema_rev,omitempty"`
	ModelTag     string `json:"model_tag,omitempty"`
	SecretsRev   string `json:"secrets_rev,omitempty"`
	// Reasons says why a region is not admitted.
	Reasons []string `json:"reasons,omitempty"`
}

// Verdict is the gate's signed answer for one release.
type Verdict struct {
	ID        string    `json:"id"`
	Release   string    `json:"release"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Decision is pass (every region admitted), degraded (some), fail (none
	// admitted, some failed) or inconclusive (none admitted, none failed).
	Decision Status `json:"decision"`
	// Reference says what every region was compared with: the release
	// baseline (BaselineID) or the agreeing majority of the regions.
	Reference    string          `json:"reference"`
	BaselineID   string          `json:"baseline_id,omitempty"`
	Regions      []RegionVerdict `json:"regions"`
	Checks       []Check         `json:"checks"`
	InputsDigest string          `json:"inputs_digest"`
	KeyID        string          `json:"key_id,omitempty"`
	Signature    string          `json:"signature,omitempty"`
}

// Region returns the named region's verdict.
func (v *Verdict) Region(name string) (*RegionVerdict, bool) {
	for i := range v.Regions {
		if v.Regions[i].Name == name {
			return &v.Regions[i], true
		}
	}
	return nil, false
}

// Expired reports whether the verdict no longer admits anything at t.
func (v *Verdict) Expired(t time.Time) bool { return !t.Before(v.ExpiresAt) }

// SigningBytes is the RFC 8785 canonical JSON of the verdict without its
// signature: what Sign signs and Verify checks.
func (v *Verdict) SigningBytes() ([]byte, error) {
	c := *v
	c.Signature = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return parity.CanonicalPayload(b)
}

// KeyID names a public key: the first 8 bytes of its SHA-256, hex.
func KeyID(pub ed25519.PublicKey) string {
	return fmt.Sprintf("%x", parity.SHA256(pub)[:8])
}

// Sign sets KeyID and Signature (Ed25519 over SigningBytes, base64).
func (v *Verdict) Sign(key ed25519.PrivateKey) error {
	v.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	b, err := v.SigningBytes()
	if err != nil {
		return err
	}
	v.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, b))
	return nil
}

// ErrBadSignature is returned by Verify for a verdict not signed by pub.
var ErrBadSignature = errors.New("verdict signature does not verify")

// Verify checks the signature against pub.
func (v *Verdict) Verify(pub ed25519.PublicKey) error {
	if v.Signature == "" {
		return fmt.Errorf("%w: the verdict is unsigned", ErrBadSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(v.Signature)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrBadSignature)
	}
	b, err := v.SigningBytes()
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, b, sig) {
		return fmt.Errorf("%w (key %s, signed by key %s)", ErrBadSignature, KeyID(pub), v.KeyID)
	}
	return nil
}

// Measure names that get their own metric families (Check.Measures). Any
// other name is exported as ragparity_gate_check_measure{check,name,region}.
const (
	// MeasureDeltaS is a region's largest ΔS over the gold set.
	MeasureDeltaS = "delta_s"
	// MeasureDeltaSDrift is the largest cross-region ΔS drift (region "").
	MeasureDeltaSDrift = "delta_s_drift"
	// MeasureLambdaPrefix + state (convergent, recursive, divergent,
	// chaotic) counts a region's probe runs in that λ state.
	MeasureLambdaPrefix = "lambda_"
	// MeasureDedupeHits and MeasureDedupeMisses count a region's replayed
	// fence keys found / not found in its dedupe KV.
	MeasureDedupeHits   = "dedupe_hits"
	MeasureDedupeMisses = "dedupe_misses"
	// MeasureHashUnix is when a region's index hash was computed (Unix
	// seconds), for hashes reused from a cache; without it the hash age is
	// the verdict's age.
	MeasureHashUnix = "hash_unix"
)
