package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Secret-bearing values never appear in a message, even when they make a
// URL unparseable (a password with an unescaped '/').
func TestSecretsNeverInMessages(t *testing.T) {
	const pw = "Zq7/x9Pw"
	dir := t.TempDir()
	region := fmt.Sprintf("regions:\n  - name: a\n    vectors: \"embedded://%s/v?collection=c\"\n", dir)
	t.Setenv("RP_STORE_PW", pw)
	t.Setenv("RP_PG_PW", pw)
	key := "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHkS81SEfGrLvtTSRGDG7b9tF7duOjIZ\n-----END PRIVATE KEY-----\n"
	t.Setenv("RP_BROKEN_SIGNING_KEY", key)
	cases := []struct{ name, cfg, want string }{
		{"StoreURL", "gate:\n  store: \"postgres://u:${RP_STORE_PW}@127.0.0.1:5432/db\"\n" + region, "gate.store"},
		{"RegionURL", fmt.Sprintf("regions:\n  - name: a\n    vectors: \"postgres://u:${RP_PG_PW}@127.0.0.1:5432/db\"\n"), "regions[0].vectors"},
		{"SigningKeyEnvPEM", "gate:\n  signing_key: ${RP_BROKEN_SIGNING_KEY}\n" + region, "gate.signing_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeConfig(t, tc.cfg)
			code, out, errOut := runCLI(t, "verify", "--config", cfg)
			all := out + errOut
			if code != ExitUnknown {
				t.Errorf("exit %d, want 2: %s", code, all)
			}
			for _, frag := range []string{pw, "Zq7", "x9Pw", "MC4CAQAw", "7duOjIZ"} {
				if strings.Contains(all, frag) {
					t.Errorf("output shows %q: %s", frag, all)
				}
			}
			if !strings.Contains(all, tc.want) {
				t.Errorf("output %q does not name %s", all, tc.want)
			}
		})
	}
	_ = os.Getenv
}
