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

// TakeBaseline creates the release baseline as o says (gate.CreateBaseline,
// signed with gate.signing_key, which it needs) and keeps it in the
// config's verdict store.
func TakeBaseline(ctx context.Context, cfg *config.Config, o gate.CreateOptions) (*gate.Baseline, error) {
	if o.Signer == nil {
		signer, err := gate.LoadSigner(cfg.Gate.SigningKey)
		if err != nil {
			return nil, fmt.Errorf("%s: gate.signing_key: %w", cfg.File, err)
		}
		o.Signer = signer
	}
	b, err := gate.CreateBaseline(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	store, err := OpenConfigStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	if err := store.PutBaseline(ctx, b); err != nil {
		return nil, err
	}
	return b, nil
}

// LatestBaseline is the store's newest baseline of the config's release,
// or an error saying how to make one.
func LatestBaseline(ctx context.Context, cfg *config.Config, store Store) (*gate.Baseline, error) {
	b, err := store.LatestBaseline(ctx, cfg.Release)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("no baseline of release %s in %v (ragparity baseline create --config %s --from REGION)", cfg.Release, store, cfg.File)
	}
	return b, err
}

// NewVerifier is gate.Run bound to the config and the gold set: before each
// verification it resolves the release baseline (ResolveBaseline: the file
// at baselinePath, else gate.baseline, else the store's newest of the
// release), so a baseline created while serve runs is used from the next
// one. A nil store with no baseline file verifies without a baseline.
func NewVerifier(cfg *config.Config, goldset, baselinePath string, store Store, signer *gate.Signer) VerifyFunc {
	return func(ctx context.Context) (*gate.Verdict, *gate.Detail, error) {
		b, keys, err := ResolveBaseline(ctx, cfg, baselinePath, store, signer)
		if err != nil {
			return nil, nil, err
		}
		return gate.Run(ctx, cfg, gate.Options{Signer: signer, Goldset: goldset, Baseline: b, BaselineKeys: keys})
	}
}
