package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/gate"
)

// signedVerdictFile writes a verdict signed by the key in dir and returns
// its path.
func signedVerdictFile(t *testing.T, keyDir string) (string, *gate.Verdict) {
	t.Helper()
	signer, err := gate.LoadSigner(filepath.Join(keyDir, gate.PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	v := &gate.Verdict{
		ID: "v1", Release: "r1", CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute), Decision: gate.Fail,
		Regions: []gate.RegionVerdict{
			{Name: "a", Admit: true, IndexHash: "h1"},
			{Name: "b", Admit: false, IndexHash: "h2", Reasons: []string{"failed index_hash"}},
		},
		Checks:       []gate.Check{{Name: "index_hash", Status: gate.Fail, Evidence: []string{"b: doc-7 differs"}, FailedRegions: []string{"b"}}},
		InputsDigest: "abc",
	}
	if err := signer.Sign(v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	p := filepath.Join(t.TempDir(), "verdict.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, v
}

func TestVerdictKeygenAndVerify(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	code, out, errOut := runCLI(t, "verdict", "keygen", "--out", keys)
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	priv, pub := filepath.Join(keys, gate.PrivateKeyFile), filepath.Join(keys, gate.PublicKeyFile)
	if fi, err := os.Stat(priv); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v mode %v, want 0600", err, fi.Mode())
	}
	pb, _ := os.ReadFile(pub)
	if !strings.HasPrefix(string(pb), "-----BEGIN PUBLIC KEY-----") || !strings.Contains(out, "key id") {
		t.Fatalf("public key file / output: %s\n%s", pb, out)
	}
	if code, _, _ := runCLI(t, "verdict", "keygen", "--out", keys); code != ExitUnknown {
		t.Fatalf("keygen over an existing pair: exit %d, want 2", code)
	}
	file, v := signedVerdictFile(t, keys)
	otherKeys := filepath.Join(t.TempDir(), "other")
	runCLI(t, "verdict", "keygen", "--out", otherKeys)

	tamper := func(t *testing.T, edit func(string) string) string {
		b, _ := os.ReadFile(file)
		p := filepath.Join(t.TempDir(), "tampered.json")
		s := edit(string(b))
		if s == string(b) {
			t.Fatal("the edit changed nothing")
		}
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	notJSON := filepath.Join(t.TempDir(), "x.json")
	os.WriteFile(notJSON, []byte("verdict: pass\n"), 0o644)
	badKey := filepath.Join(t.TempDir(), "bad.pub")
	os.WriteFile(badKey, []byte("not a key\n"), 0o644)

	for _, tc := range []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"Valid", []string{file, "--key", pub}, ExitEqual, "valid: verdict v1"},
		{"ValidKeyFlagFirst", []string{"--key", pub, file}, ExitEqual, "valid"},
		{"ValidWithPrivateKeyFile", []string{file, "--key", priv}, ExitEqual, "valid"},
		{"TamperedAdmission", []string{tamper(t, func(s string) string {
			return strings.Replace(s, `"admit": false`, `"admit": true`, 1)
		}), "--key", pub}, ExitDiffer, "INVALID"},
		{"TamperedExpiry", []string{tamper(t, func(s string) string {
			return strings.Replace(s, v.ExpiresAt.Format(time.RFC3339Nano), v.ExpiresAt.Add(time.Hour).Format(time.RFC3339Nano), 1)
		}), "--key", pub}, ExitDiffer, "INVALID"},
		{"ReorderedAndReindentedStillValid", []string{tamper(t, func(s string) string {
			var m map[string]any
			json.Unmarshal([]byte(s), &m)
			b, _ := json.Marshal(m) // sorted keys, no indentation
			return string(b)
		}), "--key", pub}, ExitEqual, "valid"},
		{"UncoveredField", []string{tamper(t, func(s string) string {
			return strings.Replace(s, "{", `{"admit_all": true,`, 1)
		}), "--key", pub}, ExitDiffer, "not covered by the signature"},
		{"Unsigned", []string{tamper(t, func(s string) string {
			return strings.Replace(s, v.Signature, "", 1)
		}), "--key", pub}, ExitDiffer, "unsigned"},
		{"OtherKey", []string{file, "--key", filepath.Join(otherKeys, gate.PublicKeyFile)}, ExitDiffer, "INVALID"},
		{"NotJSON", []string{notJSON, "--key", pub}, ExitUnknown, "not a verdict"},
		{"MissingFile", []string{filepath.Join(t.TempDir(), "none.json"), "--key", pub}, ExitUnknown, "no such file"},
		{"BadKey", []string{file, "--key", badKey}, ExitUnknown, "not an Ed25519 key"},
		{"NoKey", []string{file}, ExitUnknown, "--key"},
		{"TwoFiles", []string{file, file, "--key", pub}, ExitUnknown, "one FILE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"verdict", "verify"}, tc.args...)...)
			if code != tc.want {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.want, out, errOut)
			}
			if !strings.Contains(out+errOut, tc.msg) {
				t.Fatalf("output lacks %q\nstdout: %s\nstderr: %s", tc.msg, out, errOut)
			}
		})
	}
}

// Duplicate or case-variant keys let another JSON reader see another
// verdict than the signed one: refused before the signature is checked.
// An expired verdict is "valid but expired" and exits non-zero unless
// --allow-expired.
func TestVerdictVerifyStrictJSONAndExpiry(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if code, _, errOut := runCLI(t, "verdict", "keygen", "--out", keys); code != 0 {
		t.Fatal(errOut)
	}
	pub := filepath.Join(keys, gate.PublicKeyFile)
	file, _ := signedVerdictFile(t, keys)
	b, _ := os.ReadFile(file)
	write := func(s string) string {
		p := filepath.Join(t.TempDir(), "v.json")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	for name, edited := range map[string]string{
		"DuplicateDecision":   strings.Replace(string(b), "{", `{"decision": "pass",`, 1),
		"CaseVariantDecision": strings.Replace(string(b), "{", `{"Decision": "pass",`, 1),
		"DuplicateNestedKey":  strings.Replace(string(b), `"admit": false`, `"admit": true, "admit": false`, 1),
		"CaseVariantNested":   strings.Replace(string(b), `"admit": false`, `"Admit": true, "admit": false`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "verdict", "verify", write(edited), "--key", pub)
			if code == ExitEqual || strings.Contains(out, "valid:") {
				t.Fatalf("exit %d, stdout %q: a verdict with ambiguous keys verified", code, out)
			}
			if !strings.Contains(errOut, "INVALID") {
				t.Errorf("stderr %q", errOut)
			}
		})
	}
	t.Run("Expired", func(t *testing.T) {
		signer, _ := gate.LoadSigner(filepath.Join(keys, gate.PrivateKeyFile))
		past := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Millisecond)
		v := &gate.Verdict{ID: "old", Release: "r1", CreatedAt: past, ExpiresAt: past.Add(15 * time.Minute), Decision: gate.Pass,
			Regions: []gate.RegionVerdict{{Name: "a", Admit: true}}, Checks: []gate.Check{}}
		if err := signer.Sign(v); err != nil {
			t.Fatal(err)
		}
		vb, _ := json.Marshal(v)
		p := write(string(vb))
		code, out, _ := runCLI(t, "verdict", "verify", p, "--key", pub)
		if code == ExitEqual || !strings.Contains(out, "valid but expired") {
			t.Errorf("expired: exit %d %q, want non-zero and 'valid but expired'", code, out)
		}
		if code, out, _ := runCLI(t, "verdict", "verify", p, "--key", pub, "--allow-expired"); code != ExitEqual {
			t.Errorf("--allow-expired: exit %d %q", code, out)
		}
	})
}
