package gate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/goldset"
	"github.com/ragparity/ragparity/parity"
)

// Check names, in verdict order.
const (
	CheckIndexHash = "index_hash"
	CheckBlobs     = "blobs"
	CheckHealth    = "health"
	CheckProbes    = "probes"
	CheckDedupeKV  = "dedupe_kv"
)

// Options wire a gate run.
type Options struct {
	// Goldset is the gold set (YAML/JSONL, or a BEIR folder) for the
	// probe check; "" leaves it inconclusive unless skipped.
	Goldset string
	// Baseline is the release baseline every region is compared with; nil
	// compares regions with their agreeing majority. It must be signed by
	// the Signer's key or one of BaselineKeys, and be of cfg.Release.
	Baseline     *Baseline
	BaselineKeys []ed25519.PublicKey
	// Signer signs the verdict (required; LoadSigner).
	Signer *Signer
	// HTTPClient fetches health URLs (default: a client with no redirects
	// to other hosts and the check's timeout).
	HTTPClient *http.Client
	Now        func() time.Time
	// MaxEvidence bounds the ids or keys listed per region (default 20).
	MaxEvidence int
}

// Run runs every check of the failover gate concurrently, each under its
// own timeout, decides every region on its own against the reference (the
// baseline, else the agreeing majority) and returns the signed verdict and
// the detail behind it (for reports). A region a check could not verify is
// inconclusive and not admitted; it changes no other region's result.
func Run(ctx context.Context, cfg *config.Config, o Options) (*Verdict, *Detail, error) {
	if o.Signer == nil || o.Signer.Key == nil {
		return nil, nil, errors.New("gate: no signing key")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxEvidence == 0 {
		o.MaxEvidence = defaultMaxEvidence
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Baseline != nil {
		if err := CheckBaseline(o.Baseline, cfg.Release, append([]ed25519.PublicKey{o.Signer.Public()}, o.BaselineKeys...)); err != nil {
			return nil, nil, err
		}
	}
	var gold *goldset.Set
	if o.Goldset != "" {
		g, err := goldset.Load(o.Goldset)
		if err != nil {
			return nil, nil, fmt.Errorf("goldset: %w", err)
		}
		gold = g
	}
	inputs, err := inputsDigest(cfg, o.Baseline, gold)
	if err != nil {
		return nil, nil, err
	}
	start := o.Now()
	det := &Detail{}
	var (
		wg             sync.WaitGroup
		idx, blobs     Check
		probes, dedupe Check
		ix             *indexResult
		runs           *probeRuns
		manifests      map[string]string
		contracts      map[string]map[string]string
		healthDone     = make(chan struct{})
		idxDone        = make(chan struct{})
	)
	timed := func(name string, fn func(ctx context.Context) Check) Check {
		c, cancel := context.WithTimeout(ctx, cfg.CheckTimeout(name))
		defer cancel()
		t0 := time.Now()
		ch := fn(c)
		ch.Name = name
		ch.ElapsedMS = time.Since(t0).Milliseconds()
		if ch.Evidence == nil {
			ch.Evidence = []string{}
		}
		return ch
	}
	skipped := func(name string) (Check, bool) {
		if !cfg.Skipped(name) {
			return Check{}, false
		}
		c := Check{Name: name, Status: Skipped, Figure: "skipped by gate.skip", Evidence: []string{}}
		for _, r := range cfg.Regions {
			c.Regions = append(c.Regions, CheckRegion{Name: r.Name, Status: Skipped})
		}
		return c, true
	}
	wg.Add(4)
	go func() {
		defer wg.Done()
		defer close(idxDone)
		idx = timed(CheckIndexHash, func(ctx context.Context) Check {
			var c Check
			c, ix = indexCheck(ctx, cfg, o, det)
			return c
		})
	}()
	go func() {
		defer wg.Done()
		if c, ok := skipped(CheckBlobs); ok {
			blobs = c
			return
		}
		blobs = timed(CheckBlobs, func(ctx context.Context) Check {
			var c Check
			c, manifests = blobCheck(ctx, cfg, o, det)
			return c
		})
	}()
	go func() {
		defer wg.Done()
		defer close(healthDone)
		if cfg.Skipped(CheckHealth) {
			return
		}
		c, cancel := context.WithTimeout(ctx, cfg.CheckTimeout(CheckHealth))
		defer cancel()
		contracts = fetchContracts(c, cfg, o.HTTPClient)
	}()
	go func() {
		defer wg.Done()
		if _, ok := skipped(CheckProbes); ok {
			return
		}
		// The probes compare each region with the baseline's runs, or
		// with the regions the index check found faithful: they start
		// when it is done, under their own timeout.
		<-idxDone
		c, cancel := context.WithTimeout(ctx, cfg.CheckTimeout(CheckProbes))
		defer cancel()
		t0 := time.Now()
		runs = runProbes(c, cfg, o, gold, ix)
		runs.elapsed = time.Since(t0)
		if c.Err() != nil && runs.global == "" && runs.rep == nil {
			runs.global = fmt.Sprintf("timed out after %v", cfg.CheckTimeout(CheckProbes))
		}
	}()
	if c, ok := skipped(CheckDedupeKV); ok {
		dedupe = c
	} else {
		dedupe = timed(CheckDedupeKV, func(ctx context.Context) Check { return dedupeCheck(ctx, cfg) })
	}
	wg.Wait()
	<-healthDone
	health, ok := skipped(CheckHealth)
	if !ok {
		health = healthCheck(cfg, o, contracts, ix)
	}
	if probes, ok = skipped(CheckProbes); !ok {
		probes = probeCheck(cfg, o, runs, det)
	}

	v := &Verdict{
		ID:           newID(start),
		Release:      cfg.Release,
		CreatedAt:    start.UTC().Truncate(time.Millisecond),
		Checks:       []Check{idx, blobs, health, probes, dedupe},
		InputsDigest: inputs,
		Reference:    "majority: every region is compared with the largest group of regions that agree, when it is a strict majority of the configured regions (or gate.primary)",
	}
	if b := o.Baseline; b != nil {
		v.BaselineID = b.ID
		v.Reference = fmt.Sprintf("baseline %s of release %s (taken from %s at %s)", b.ID, b.Release, b.From, b.Created.UTC().Format(time.RFC3339))
	}
	v.ExpiresAt = v.CreatedAt.Add(cfg.Gate.VerdictTTL)
	decide(cfg, v, ix, manifests, contracts)
	if err := o.Signer.Sign(v); err != nil {
		return nil, nil, err
	}
	return v, det, nil
}

// decide gives every region its status (its worst check result), admits
// the regions that passed every check, and sets the decision.
func decide(cfg *config.Config, v *Verdict, ix *indexResult, manifests map[string]string, contracts map[string]map[string]string) {
	admitted, failed := 0, 0
	for _, r := range cfg.Regions {
		rv := RegionVerdict{Name: r.Name, Status: Pass, ManifestHash: manifests[r.Name]}
		if ix != nil {
			rv.IndexHash, rv.ModelTag = ix.hashes[r.Name].IndexHash, ix.hashes[r.Name].ModelTag
		}
		if ct := contracts[r.Name]; ct != nil {
			rv.SchemaRev, rv.SecretsRev = ct["schema_rev"], ct["secrets_rev"]
			if rv.ModelTag == "" {
				rv.ModelTag = ct["model_tag"]
			}
		}
		for _, c := range v.Checks {
			for _, cr := range c.Regions {
				if cr.Name != r.Name || cr.Status == Pass || cr.Status == Skipped {
					continue
				}
				if rank(cr.Status) > rank(rv.Status) {
					rv.Status = cr.Status
				}
				word := "failed"
				if cr.Status == Inconclusive {
					word = "could not verify"
				}
				reason := word + " " + c.Name
				if cr.Reason != "" {
					reason += ": " + cr.Reason
				}
				rv.Reasons = append(rv.Reasons, reason)
			}
		}
		rv.Admit = rv.Status == Pass
		switch {
		case rv.Admit:
			admitted++
		case rv.Status == Fail:
			failed++
		}
		v.Regions = append(v.Regions, rv)
	}
	switch {
	case admitted == len(cfg.Regions):
		v.Decision = Pass
	case admitted > 0:
		v.Decision = Degraded
	case failed > 0:
		v.Decision = Fail
	default:
		v.Decision = Inconclusive
	}
}

func newID(t time.Time) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "v" + t.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b)
}

// InputsDigest identifies what a verification is computed over: the
// config as written, its regions' (redacted) store URLs after ${ENV}
// expansion, the baseline and the gold set. A verdict whose inputs digest
// differs from the running config's is never used to admit.
func InputsDigest(cfg *config.Config, b *Baseline, goldPath string) (string, error) {
	var gold *goldset.Set
	if goldPath != "" {
		g, err := goldset.Load(goldPath)
		if err != nil {
			return "", fmt.Errorf("goldset: %w", err)
		}
		gold = g
	}
	return inputsDigest(cfg, b, gold)
}

// inputsDigest is InputsDigest over a loaded gold set (nil: none).
func inputsDigest(cfg *config.Config, b *Baseline, gold *goldset.Set) (string, error) {
	type in struct {
		Name, Vectors, Blobs, Health, DedupeKV string
		// Agent is the region's agent URL and trusted keys (absent
		// without one, so digests of configs without agents are as before).
		Agent string `json:",omitempty"`
	}
	var ins []in
	for _, r := range cfg.Regions {
		i := in{r.Name, adapters.Redact(r.Vectors), adapters.Redact(r.Blobs), adapters.Redact(r.Health), adapters.Redact(r.DedupeKV), ""}
		if a := r.Agent; a != nil {
			i.Agent = adapters.Redact(a.URL) + " " + strings.Join(a.PublicKeys, ",")
		}
		ins = append(ins, i)
	}
	doc := map[string]any{"release": cfg.Release, "config": cfg.SourceDigest(), "regions": ins}
	if b != nil {
		d, err := b.Digest()
		if err != nil {
			return "", err
		}
		doc["baseline"] = d
	}
	if gold != nil {
		doc["goldset"] = gold.Digest()
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return "", err
	}
	c, err := parity.CanonicalPayload(raw)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(parity.SHA256(c)), nil
}
