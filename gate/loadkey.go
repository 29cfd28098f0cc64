package gate

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// LoadPrivateKey reads an Ed25519 private key, as PEM (PKCS#8) or a base64
// 32-byte seed, from:
//   - env:NAME, the environment variable NAME;
//   - file:PATH, the file PATH;
//   - the key itself (what gate.signing_key: ${NAME} expands to): a value
//     holding "-----BEGIN", or a base64 32-byte seed that is not a file;
//   - otherwise a plain file path.
//
// No error shows the value: it may be the key. Only env:NAME's name and
// file:PATH's path are named.
func LoadPrivateKey(spec string) (ed25519.PrivateKey, error) {
	var data []byte
	switch {
	case strings.HasPrefix(spec, "env:"):
		name := strings.TrimPrefix(spec, "env:")
		v := os.Getenv(name)
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is empty or not set", name)
		}
		k, err := parsePrivateKey([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("environment variable %s: %w", name, err)
		}
		return k, nil
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", path, pathErr(err))
		}
		k, err := parsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", path, err)
		}
		return k, nil
	case strings.Contains(spec, "-----BEGIN") || strings.Contains(spec, "\n"):
		data = []byte(spec)
	default:
		if _, err := os.Stat(spec); err != nil {
			if k, ok := seedKey(spec); ok {
				return k, nil
			}
			return nil, errors.New("the value is neither a readable key file nor a PEM key or base64 32-byte seed (value not shown; use env:NAME, ${NAME} or file:PATH)")
		}
		b, err := os.ReadFile(spec)
		if err != nil {
			return nil, fmt.Errorf("the key file cannot be read: %w", pathErr(err))
		}
		data = b
	}
	return parsePrivateKey(data)
}

// parsePrivateKey parses PEM PKCS#8 or a base64 seed; its errors never
// quote the input.
func parsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	if blk, _ := pem.Decode(data); blk != nil {
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, errors.New("the PEM block is not a valid PKCS#8 private key")
		}
		ek, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, errors.New("not an Ed25519 key")
		}
		return ek, nil
	}
	if k, ok := seedKey(string(data)); ok {
		return k, nil
	}
	return nil, errors.New("want a PEM PKCS#8 Ed25519 key or a base64 32-byte seed")
}

func seedKey(s string) (ed25519.PrivateKey, bool) {
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, false
	}
	return ed25519.NewKeyFromSeed(seed), true
}

// pathErr is an *fs.PathError's cause, without the path.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
