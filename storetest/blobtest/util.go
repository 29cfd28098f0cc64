package blobtest

import (
	"crypto/sha256"
	"os"
	"testing"

	"github.com/ragparity/ragparity/parity"
)

func sha256Sum(b []byte) parity.Digest { return sha256.Sum256(b) }

// corruptFile flips one byte in the middle of a file.
func corruptFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("corrupt %s: %v", path, err)
	}
	if len(b) == 0 {
		t.Fatalf("corrupt %s: empty file", path)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
