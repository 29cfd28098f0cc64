package adapters

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, raw := range []string{
		"postgres://u:hunter22@h/db?table=t",
		"qdrant://h:6334/c?api_key=hunter22&text=content",
		"s3://b/p?endpoint=http://h&Secret_Access_Key=hunter22",
	} {
		got := Redact(raw)
		if strings.Contains(got, "hunter22") {
			t.Errorf("Redact(%q) = %q still holds the secret", raw, got)
		}
	}
	if got := Redact("qdrant://h:6334/c?text=content"); got != "qdrant://h:6334/c?text=content" {
		t.Errorf("Redact changed a URL without secrets: %q", got)
	}
}
