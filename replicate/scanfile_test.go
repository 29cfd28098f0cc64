package replicate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanTextFileAgreesWithTextDocument: the streaming check reads files
// larger than its buffer, with multi-byte runes across read boundaries,
// and accepts and refuses what the in-memory check does, with the same
// revision.
func TestScanTextFileAgreesWithTextDocument(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("Ångström ﬁle 日本語 ", 40000) // > 256 KiB, runes straddle reads
	for name, content := range map[string]string{
		"big":      big,
		"bigBad":   big[:len(big)-1] + "\xff",
		"nul":      "abc\x00def",
		"blank":    " \n\t\u3000 ",
		"cut":      big[:300001],
		"plain":    "hello world",
		"badEarly": "\xc3(" + big,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		rev, err := scanTextFile(p)
		text, werr := textDocument(p, []byte(content))
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Errorf("%s: streaming %v, in memory %v", name, err, werr)
			continue
		}
		if err == nil && rev != contentRevision(text) {
			t.Errorf("%s: revision %s, want %s", name, rev, contentRevision(text))
		}
	}
}
