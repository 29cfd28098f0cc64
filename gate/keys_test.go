package gate

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadSigner(t *testing.T) {
	t.Run("EphemeralWithoutConfig", func(t *testing.T) {
		s, err := LoadSigner("")
		if err != nil {
			t.Fatal(err)
		}
		if !s.Ephemeral || !strings.HasPrefix(s.KeyID(), EphemeralKeyPrefix) {
			t.Fatalf("key id %q ephemeral=%v", s.KeyID(), s.Ephemeral)
		}
		v := testVerdict("v1", t0, region("a"))
		if err := s.Sign(v); err != nil {
			t.Fatal(err)
		}
		if v.KeyID != s.KeyID() {
			t.Fatalf("verdict key_id %q, want %q", v.KeyID, s.KeyID())
		}
		if err := v.Verify(s.Public()); err != nil {
			t.Fatal(err)
		}
	})
	dir := t.TempDir()
	priv, pub, pk, err := WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("KeygenModes", func(t *testing.T) {
		fi, err := os.Stat(priv)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Fatalf("private key mode %o, want 600", got)
		}
		if _, _, _, err := WriteKeyPair(dir); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("second keygen in the same folder: %v, want a refusal", err)
		}
	})
	t.Run("FromFilePEM", func(t *testing.T) {
		s, err := LoadSigner(priv)
		if err != nil {
			t.Fatal(err)
		}
		if s.Ephemeral || !s.Public().Equal(pk) || s.KeyID() != KeyID(pk) {
			t.Fatalf("loaded %s ephemeral=%v, want %s", s.KeyID(), s.Ephemeral, KeyID(pk))
		}
	})
	t.Run("FromEnvSeed", func(t *testing.T) {
		seed := make([]byte, ed25519.SeedSize)
		seed[0] = 7
		t.Setenv("RP_TEST_KEY", base64.StdEncoding.EncodeToString(seed))
		s, err := LoadSigner("env:RP_TEST_KEY")
		if err != nil {
			t.Fatal(err)
		}
		if !s.Key.Equal(ed25519.NewKeyFromSeed(seed)) {
			t.Fatal("env seed did not give its key")
		}
	})
	t.Run("FromEnvPEM", func(t *testing.T) {
		b, _ := os.ReadFile(priv)
		t.Setenv("RP_TEST_KEY", string(b))
		s, err := LoadSigner("env:RP_TEST_KEY")
		if err != nil || !s.Public().Equal(pk) {
			t.Fatalf("env PEM: %v", err)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, spec := range []string{"env:RP_TEST_UNSET_KEY", filepath.Join(dir, "missing.key"), pub} {
			if _, err := LoadSigner(spec); err == nil {
				t.Errorf("LoadSigner(%q) succeeded", spec)
			}
		}
	})
	t.Run("ParsePublicKey", func(t *testing.T) {
		pubPEM, _ := os.ReadFile(pub)
		privPEM, _ := os.ReadFile(priv)
		for name, in := range map[string][]byte{
			"PKIX":       pubPEM,
			"PrivateKey": privPEM,
			"Base64Raw":  []byte(base64.StdEncoding.EncodeToString(pk) + "\n"),
		} {
			got, err := ParsePublicKey(in)
			if err != nil || !got.Equal(pk) {
				t.Errorf("%s: %v", name, err)
			}
		}
		for _, bad := range []string{"", "not a key", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", base64.StdEncoding.EncodeToString([]byte("short"))} {
			if _, err := ParsePublicKey([]byte(bad)); !errors.Is(err, ErrBadKey) {
				t.Errorf("ParsePublicKey(%q) = %v, want ErrBadKey", bad, err)
			}
		}
	})
}

func TestSignatureTamper(t *testing.T) {
	s, _ := LoadSigner("")
	v := testVerdict("v1", t0, region("a"), blocked(region("b"), "failed index_hash"))
	if err := s.Sign(v); err != nil {
		t.Fatal(err)
	}
	again := *v
	if err := s.Sign(&again); err != nil || again.Signature != v.Signature {
		t.Fatal("re-signing with the same key changed the signature")
	}
	for name, mut := range map[string]func(v *Verdict){
		"AdmitRegion":  func(v *Verdict) { v.Regions[1].Admit = true },
		"Expiry":       func(v *Verdict) { v.ExpiresAt = v.ExpiresAt.Add(1) },
		"Measure":      func(v *Verdict) { v.Checks[1].Measures[0].Value = 0 },
		"KeyID":        func(v *Verdict) { v.KeyID = "someone-else" },
		"Decision":     func(v *Verdict) { v.Decision = Pass },
		"IndexHashLen": func(v *Verdict) { v.Regions[0].IndexHash += "0" },
	} {
		t.Run(name, func(t *testing.T) {
			c := *v
			c.Regions = append([]RegionVerdict(nil), v.Regions...)
			c.Checks = append([]Check(nil), v.Checks...)
			c.Checks[1].Measures = append([]Measure(nil), v.Checks[1].Measures...)
			mut(&c)
			if err := c.Verify(s.Public()); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("tampered verdict: %v, want ErrBadSignature", err)
			}
		})
	}
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func region(name string) RegionVerdict {
	return RegionVerdict{Name: name, Admit: true, IndexHash: "h1", SchemaRev: "s1", ModelTag: "m1", SecretsRev: "k1"}
}

func blocked(r RegionVerdict, why string) RegionVerdict {
	r.Admit = false
	r.Reasons = []string{why}
	return r
}

func testVerdict(id string, created time.Time, regions ...RegionVerdict) *Verdict {
	v := &Verdict{
		ID: id, Release: "r1", CreatedAt: created, ExpiresAt: created.Add(15 * time.Minute),
		Decision: Pass, Regions: regions, InputsDigest: "d",
		Checks: []Check{
			{Name: CheckIndexHash, Status: Pass, Figure: "equal", Evidence: []string{}, ElapsedMS: 1200},
			{Name: CheckProbes, Status: Pass, Evidence: []string{}, Measures: []Measure{
				{Name: MeasureDeltaSDrift, Value: 0.012},
				{Name: MeasureDeltaS, Region: "a", Value: 0.31},
			}},
		},
	}
	for _, r := range regions {
		if !r.Admit {
			v.Decision = Fail
			v.Checks[0].Status = Fail
			v.Checks[0].FailedRegions = append(v.Checks[0].FailedRegions, r.Name)
		}
	}
	return v
}

// gate.signing_key: ${RAGPARITY_SIGNING_KEY} is expanded by the config
// loader, so LoadSigner sees the PEM (or seed) itself; file:PATH names a
// file. No error ever shows key material.
func TestLoadSignerInlineAndNoLeak(t *testing.T) {
	dir := t.TempDir()
	priv, _, pk, err := WriteKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ := os.ReadFile(priv)
	seed := make([]byte, ed25519.SeedSize)
	seed[3] = 9
	b64 := base64.StdEncoding.EncodeToString(seed)
	t.Run("InlinePEM", func(t *testing.T) {
		s, err := LoadSigner(string(pemBytes))
		if err != nil || !s.Public().Equal(pk) {
			t.Fatalf("inline PEM: %v", err)
		}
	})
	t.Run("InlineSeed", func(t *testing.T) {
		s, err := LoadSigner(b64)
		if err != nil || !s.Key.Equal(ed25519.NewKeyFromSeed(seed)) {
			t.Fatalf("inline seed: %v", err)
		}
	})
	t.Run("FilePrefix", func(t *testing.T) {
		s, err := LoadSigner("file:" + priv)
		if err != nil || !s.Public().Equal(pk) {
			t.Fatalf("file:PATH: %v", err)
		}
	})
	t.Run("NoKeyMaterialInErrors", func(t *testing.T) {
		body := strings.Split(string(pemBytes), "\n")[1]
		broken := strings.Replace(string(pemBytes), body, body[:len(body)-8], 1)
		t.Setenv("RP_TEST_BROKEN_KEY", broken)
		for name, spec := range map[string]string{
			"BrokenPEMInline": broken,
			"BrokenPEMEnv":    "env:RP_TEST_BROKEN_KEY",
			"PEMWithoutBegin": strings.Join(strings.Split(string(pemBytes), "\n")[1:], "\n"),
			"ShortSeed":       b64[:20],
		} {
			_, err := LoadSigner(spec)
			if err == nil {
				t.Errorf("%s: LoadSigner succeeded", name)
				continue
			}
			if strings.Contains(err.Error(), body[:16]) || strings.Contains(err.Error(), b64[:12]) {
				t.Errorf("%s: error shows key material: %v", name, err)
			}
		}
	})
}
