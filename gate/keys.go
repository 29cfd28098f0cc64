package gate

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Signer signs verdicts with one Ed25519 key.
type Signer struct {
	Key ed25519.PrivateKey
	// Ephemeral is set for a key generated at start because none was
	// configured: its verdicts say so in key_id, and nobody else can
	// check them once the process is gone.
	Ephemeral bool
}

// EphemeralKeyPrefix starts the key_id of a verdict signed by an
// ephemeral key.
const EphemeralKeyPrefix = "ephemeral-"

// LoadSigner returns the signer for gate.signing_key: env:NAME, file:PATH,
// the key itself (${NAME} expanded) or a file path, holding a PEM PKCS#8
// key or a base64 32-byte seed (see LoadPrivateKey). An empty spec
// generates an ephemeral key. Errors never show the value.
func LoadSigner(spec string) (*Signer, error) {
	if strings.TrimSpace(spec) == "" {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return &Signer{Key: k, Ephemeral: true}, nil
	}
	k, err := LoadPrivateKey(spec)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return &Signer{Key: k}, nil
}

// Public returns the public key.
func (s *Signer) Public() ed25519.PublicKey { return s.Key.Public().(ed25519.PublicKey) }

// KeyID is what the signer writes in key_id: KeyID of the public key,
// prefixed with "ephemeral-" for an ephemeral key.
func (s *Signer) KeyID() string {
	id := KeyID(s.Public())
	if s.Ephemeral {
		return EphemeralKeyPrefix + id
	}
	return id
}

// Sign sets the verdict's key_id and signature. Signing is deterministic:
// signing a verdict twice with one key gives the same signature.
func (s *Signer) Sign(v *Verdict) error {
	v.KeyID = s.KeyID()
	b, err := v.SigningBytes()
	if err != nil {
		return err
	}
	v.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.Key, b))
	return nil
}

// MarshalPrivateKeyPEM encodes a private key as PEM PKCS#8.
func MarshalPrivateKeyPEM(k ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKeyPEM encodes a public key as PEM PKIX.
func MarshalPublicKeyPEM(k ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ErrBadKey is returned for key material that is not an Ed25519 key.
var ErrBadKey = errors.New("not an Ed25519 key")

// ParsePublicKey reads a public key: PEM PKIX ("PUBLIC KEY"), a PEM
// PKCS#8 private key (its public half), or base64 of the 32 raw bytes.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	if blk, _ := pem.Decode(data); blk != nil {
		switch blk.Type {
		case "PUBLIC KEY":
			k, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
			}
			if pk, ok := k.(ed25519.PublicKey); ok {
				return pk, nil
			}
			return nil, fmt.Errorf("%w: PUBLIC KEY holds a %T", ErrBadKey, k)
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
			}
			if sk, ok := k.(ed25519.PrivateKey); ok {
				return sk.Public().(ed25519.PublicKey), nil
			}
			return nil, fmt.Errorf("%w: PRIVATE KEY holds a %T", ErrBadKey, k)
		default:
			return nil, fmt.Errorf("%w: PEM block %q (want PUBLIC KEY)", ErrBadKey, blk.Type)
		}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: want PEM PKIX or base64 of 32 bytes", ErrBadKey)
	}
	return ed25519.PublicKey(raw), nil
}

// Key pair file names written by WriteKeyPair.
const (
	PrivateKeyFile = "verdict-signing.key"
	PublicKeyFile  = "verdict-signing.pub"
)

// WriteKeyPair generates an Ed25519 key pair in dir: PrivateKeyFile (PEM
// PKCS#8, mode 0600) and PublicKeyFile (PEM PKIX, 0644). It never
// overwrites an existing file.
func WriteKeyPair(dir string) (privPath, pubPath string, pub ed25519.PublicKey, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	privPEM, err := MarshalPrivateKeyPEM(priv)
	if err != nil {
		return "", "", nil, err
	}
	pubPEM, err := MarshalPublicKeyPEM(pub)
	if err != nil {
		return "", "", nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", nil, err
	}
	privPath, pubPath = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", nil, fmt.Errorf("%s already exists (not overwritten)", p)
		}
	}
	if err := writeExclusive(privPath, privPEM, 0o600); err != nil {
		return "", "", nil, err
	}
	if err := writeExclusive(pubPath, pubPEM, 0o644); err != nil {
		os.Remove(privPath)
		return "", "", nil, err
	}
	return privPath, pubPath, pub, nil
}

// writeExclusive creates path with mode (not widened by the umask being
// narrower than it: the mode is set explicitly) and fails if it exists.
func writeExclusive(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}
