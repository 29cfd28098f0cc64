package gate

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// LoadPrivateKey reads an Ed25519 private key from a file path or env:NAME,
// as PEM (PKCS#8) or a base64 32-byte seed.
func LoadPrivateKey(spec string) (ed25519.PrivateKey, error) {
	var data []byte
	if name, ok := strings.CutPrefix(spec, "env:"); ok {
		v := os.Getenv(name)
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is empty", name)
		}
		data = []byte(v)
	} else {
		b, err := os.ReadFile(spec)
		if err != nil {
			return nil, err
		}
		data = b
	}
	if blk, _ := pem.Decode(data); blk != nil {
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec, err)
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: not an Ed25519 key", spec)
		}
		return ek, nil
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("want a PEM PKCS#8 Ed25519 key or a base64 32-byte seed")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
