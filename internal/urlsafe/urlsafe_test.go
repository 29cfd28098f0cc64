package urlsafe

import (
	"strings"
	"testing"
)

func TestParseErrorsShowNoPart(t *testing.T) {
	for _, raw := range []string{
		"postgres://u:Zq7/x9Pw@127.0.0.1:5432/db",
		"redis://:Ab/c@h:6379/0",
		"postgres://u:p%zzword@h/db",
	} {
		_, err := Parse(raw)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", raw)
			continue
		}
		for _, frag := range []string{"Zq7", "x9Pw", "Ab", "zzword"} {
			if strings.Contains(raw, frag) && strings.Contains(err.Error(), frag) {
				t.Errorf("Parse(%q) error %q shows %q", raw, err, frag)
			}
		}
	}
	if got, want := Unparseable("postgres://u:Zq7/x9Pw@h/db"), "postgres://***@…"; got != want {
		t.Errorf("Unparseable = %q, want %q", got, want)
	}
}
