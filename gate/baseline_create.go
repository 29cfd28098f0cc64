package gate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/goldset"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/probe"
	"github.com/ragparity/ragparity/verifier/blob"
)

// CreateOptions say how to take a baseline.
type CreateOptions struct {
	// From names the region the baseline is taken from: it must be
	// reachable and healthy (its health contract claims the INDEX_HASH
	// computed for it).
	From string
	// Goldset records the probe baseline ("" records none; verification
	// with probes then needs another baseline).
	Goldset string
	// AcceptBelowFloor, when set, is the reason a release that misses the
	// quality floors gets a baseline all the same (recorded and signed).
	AcceptBelowFloor string
	Signer           *Signer
	HTTPClient       *http.Client
}

// ErrBelowFloor is wrapped when a release misses the quality floors and
// no reason to accept it was given.
var ErrBelowFloor = errors.New("release below the quality floors")

// CreateBaseline takes the release baseline from one region: its
// INDEX_HASH and Merkle leaves, its blob manifest (when it has a blobs
// URL), its health contract (which must claim the computed INDEX_HASH and
// the index's model tag) and, with a gold set, its probe runs, checked
// against the release quality floors. The baseline is signed.
func CreateBaseline(ctx context.Context, cfg *config.Config, o CreateOptions) (*Baseline, error) {
	if o.Signer == nil || o.Signer.Key == nil {
		return nil, errors.New("baseline: no signing key")
	}
	if o.Signer.Ephemeral {
		return nil, fmt.Errorf("%s: baseline create needs gate.signing_key: a baseline signed with an ephemeral key could never be checked again", cfg.File)
	}
	r, err := cfg.Region(o.From)
	if err != nil {
		return nil, err
	}
	b := &Baseline{Release: cfg.Release, From: r.Name, Created: timeNow().UTC().Truncate(1e6)}

	scans := ScanRegions(ctx, cfg, []*config.Region{r}, ScanOptions{})
	if scans[0].Err != nil {
		return nil, fmt.Errorf("baseline: %w", scans[0].Err)
	}
	b.Index = NewIndexBaseline(scans[0].Scan)
	b.ModelTag, _ = scans[0].Scan.Settings.Hashed["model_tag"].(string)
	if n := len(scans[0].Scan.Duplicates); n > 0 {
		return nil, fmt.Errorf("baseline: region %s holds %d ids more than once: a faithful copy has one row per id", r.Name, n)
	}
	if b.Index.Points == 0 {
		return nil, fmt.Errorf("baseline: region %s holds no points: an empty index is no baseline", r.Name)
	}

	if r.Blobs != "" {
		ms := BuildManifests(ctx, cfg, []*config.Region{r}, BlobOptions{Mode: blob.ModeContent, Workers: 16, CacheDir: filepath.Join(cfg.CacheRoot(), "blobs")})
		if ms[0].Err != nil {
			return nil, fmt.Errorf("baseline: %w", ms[0].Err)
		}
		if b.Blobs, err = NewBlobBaseline(ms[0].M); err != nil {
			return nil, err
		}
	}

	if r.Health == "" {
		return nil, fmt.Errorf("%s: region %s has no health URL: the baseline records the contract {schema_rev, model_tag, secrets_rev} it answers", cfg.File, r.Name)
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	hctx, cancel := context.WithTimeout(ctx, cfg.CheckTimeout(CheckHealth))
	ct := fetchContracts(hctx, &config.Config{File: cfg.File, Regions: []config.Region{*r}}, hc)[r.Name]
	cancel()
	switch {
	case ct["_inconclusive"] != "":
		return nil, fmt.Errorf("baseline: region %s health: %s", r.Name, ct["_inconclusive"])
	case ct["_fail"] != "":
		return nil, fmt.Errorf("baseline: region %s health: %s", r.Name, ct["_fail"])
	case ct["index_hash"] != b.Index.IndexHash:
		return nil, fmt.Errorf("baseline: region %s claims index_hash %s but ragparity computed %s: a baseline comes from a region whose contract is true", r.Name, parity.ShortHex(ct["index_hash"]), parity.ShortHex(b.Index.IndexHash))
	case b.ModelTag != "" && ct["model_tag"] != b.ModelTag:
		return nil, fmt.Errorf("baseline: region %s claims model_tag %q but its index declares %q", r.Name, ct["model_tag"], b.ModelTag)
	}
	b.Contract = map[string]string{"schema_rev": ct["schema_rev"], "model_tag": ct["model_tag"], "secrets_rev": ct["secrets_rev"]}

	if o.Goldset != "" {
		if cfg.Embedder == "" {
			return nil, fmt.Errorf("%s: probes need an embedder (embedder: glove)", cfg.File)
		}
		gold, err := goldset.Load(o.Goldset)
		if err != nil {
			return nil, err
		}
		inner, err := OpenEmbedder(cfg.Embedder)
		if err != nil {
			return nil, err
		}
		cached, err := EmbeddingCache(cfg, inner)
		if err != nil {
			return nil, err
		}
		defer cached.Close()
		pc := cfg.GateProbe()
		rep, err := ProbeRegion(ctx, cfg, r, gold, cached, pc)
		if err != nil {
			return nil, fmt.Errorf("baseline: probes: %w", err)
		}
		if rr := rep.Region(r.Name); rr != nil && rr.Status != probe.Pass {
			return nil, fmt.Errorf("baseline: region %s's probes did not pass (%s%s): a baseline comes from a healthy region", r.Name, strings.Join(rr.Reasons, "; "), rr.Error)
		}
		if b.Probes, err = probe.RecordBaseline(rep, r.Name); err != nil {
			return nil, err
		}
		if missed := missedFloors(probe.CheckReleaseFloors(b.Probes, pc)); len(missed) > 0 {
			if strings.TrimSpace(o.AcceptBelowFloor) == "" {
				return nil, fmt.Errorf("%w: %s; fix the release, or record why it ships anyway with --accept-below-floor \"reason\"", ErrBelowFloor, strings.Join(missed, "; "))
			}
			b.BelowFloor = &BelowFloor{Reason: o.AcceptBelowFloor, Missed: missed}
		}
	}
	if err := o.Signer.SignBaseline(b); err != nil {
		return nil, err
	}
	return b, nil
}
