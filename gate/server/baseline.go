package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
)

// ResolveBaseline finds the baseline a verification of cfg uses: the file
// named by path (a flag), else gate.baseline, else the store's newest
// baseline of the release; nil (no error) when there is none. It is
// checked (signature by a trusted key, release) before it is returned: a
// tampered or foreign baseline is an error, never silently skipped.
func ResolveBaseline(ctx context.Context, cfg *config.Config, path string, store Store, signer *gate.Signer) (*gate.Baseline, []ed25519.PublicKey, error) {
	keys, err := BaselineKeys(cfg)
	if err != nil {
		return nil, nil, err
	}
	if path == "" {
		path = cfg.Gate.Baseline
	}
	var b *gate.Baseline
	switch {
	case path != "":
		if b, err = gate.ReadBaselineFile(path); err != nil {
			return nil, nil, err
		}
	case store != nil:
		b, err = store.LatestBaseline(ctx, cfg.Release)
		if errors.Is(err, ErrNotFound) {
			return nil, keys, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading the release baseline from the verdict store: %w", err)
		}
	default:
		return nil, keys, nil
	}
	trusted := append([]ed25519.PublicKey{signer.Public()}, keys...)
	if err := gate.CheckBaseline(b, cfg.Release, trusted); err != nil {
		return nil, nil, err
	}
	return b, keys, nil
}

// BaselineKeys loads gate.baseline_keys.
func BaselineKeys(cfg *config.Config) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for i, p := range cfg.Gate.BaselineKeys {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: gate.baseline_keys[%d]: %w", cfg.File, i, err)
		}
		k, err := gate.ParsePublicKey(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: gate.baseline_keys[%d] %s: %w", cfg.File, i, p, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
