package gate

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ragparity/ragparity/agent"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/parity"
)

// AgentClient is the client for a region's agent (regions[].agent): its
// trusted keys loaded, its TLS set up. counter, when set, counts the
// bytes moved.
func AgentClient(r *config.Region, counter *agent.Counter) (*agent.Client, error) {
	a := r.Agent
	if a == nil {
		return nil, fmt.Errorf("region %s has no agent", r.Name)
	}
	keys, err := agentKeys(r)
	if err != nil {
		return nil, err
	}
	hc, err := agent.NewHTTPClient(agent.HTTPOptions{CA: a.CA, Cert: a.Cert, Key: a.Key, Counter: counter})
	if err != nil {
		return nil, fmt.Errorf("region %s: agent: %w", r.Name, err)
	}
	return &agent.Client{URL: a.URL, Token: a.Token, Region: r.Name, Trusted: keys, MaxAge: a.MaxAge, HTTP: hc}, nil
}

// agentKeys loads regions[].agent.public_keys: each a PEM file, or the key
// itself (PEM or base64 of the 32 raw bytes).
func agentKeys(r *config.Region) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for i, spec := range r.Agent.PublicKeys {
		b, rerr := os.ReadFile(spec)
		if rerr != nil {
			b = []byte(spec)
		}
		k, err := ParsePublicKey(b)
		if err != nil {
			if rerr != nil {
				err = fmt.Errorf("neither a readable file (%v) nor a PEM or base64 32-byte public key", pathErr(rerr))
			}
			return nil, fmt.Errorf("region %s: agent.public_keys[%d]: %w", r.Name, i, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// scanAgent fetches a region's scan from its agent: the whole leaves, or
// with spill (a diff may follow) the tree nodes at half depth, completed
// by completeAgents against another region's leaves.
func scanAgent(ctx context.Context, cfg *config.Config, r *config.Region, o ScanOptions) (*agent.Remote, error) {
	if o.Shard.N > 1 {
		return nil, fmt.Errorf("region %s: its agent serves whole scans (hash it without --shard)", r.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	declared, err := DeclaredSettings(cfg, r)
	if err != nil {
		return nil, err
	}
	c, err := AgentClient(r, o.AgentCounter)
	if err != nil {
		return nil, err
	}
	c.Timeout = cfg.Timeout
	rem, err := c.Fetch(ctx, agent.FetchOptions{Buckets: cfg.Hash.Buckets, Tolerance: cfg.Hash.Tolerance, Declared: declared, Nodes: o.Spill})
	if err != nil {
		return nil, fmt.Errorf("region %s: %s: %w", r.Name, c.Name(), err)
	}
	return rem, nil
}

// completeAgents fills the leaves of agent scans fetched by tree nodes:
// against a region whose content root is the same (nothing more to
// fetch), else against any region with leaves (only the subtrees that
// differ are fetched), else in full; with pair, two agent regions fetch
// only the subtrees where they differ (agent.CompletePair). The agent then
// serves the records of differing buckets as the region's spill.
func completeAgents(ctx context.Context, cfg *config.Config, out []RegionScan, pair bool) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if pair && len(out) == 2 && out[0].remote != nil && out[1].remote != nil && out[0].Err == nil && out[1].Err == nil {
		// Two agent regions of a diff: neither has leaves to compare the
		// other's against; fetch only where their trees differ.
		errA, errB := agent.CompletePair(ctx, out[0].remote, out[1].remote)
		for i, err := range []error{errA, errB} {
			rs := &out[i]
			if err != nil {
				rs.Err = fmt.Errorf("region %s: %s: %w", rs.Region.Name, rs.remote.Name(), err)
				rs.Scan, rs.remote = nil, nil
				continue
			}
			rs.Spill = rs.remote
		}
		return
	}
	for i := range out {
		rs := &out[i]
		if rs.remote == nil || rs.Err != nil {
			continue
		}
		var ref []parity.Leaf
		want := rs.remote.Root()
		for j := range out {
			o := &out[j]
			if j == i || o.Err != nil || o.Scan == nil || o.Scan.Leaves == nil || o.Scan.Shard.N > 1 {
				continue
			}
			if ref == nil || o.Scan.ContentRoot() == want {
				ref = o.Scan.Leaves
			}
		}
		if err := rs.remote.Complete(ctx, ref); err != nil {
			rs.Err = fmt.Errorf("region %s: %s: %w", rs.Region.Name, rs.remote.Name(), err)
			rs.Scan, rs.remote = nil, nil
			continue
		}
		rs.Spill = rs.remote
	}
}

// AgentServer builds `ragparity agent` from a config: the region (name,
// else agent.region, else the only one), the signing key and token of
// agent:, and the TLS config (nil without agent.tls_cert). logf receives
// the agent's log lines.
func AgentServer(cfg *config.Config, name string, logf func(string, ...any)) (*agent.Server, *tls.Config, error) {
	a := cfg.Agent
	if name == "" {
		name = a.Region
	}
	var r *config.Region
	switch {
	case name != "":
		var err error
		if r, err = cfg.Region(name); err != nil {
			return nil, nil, err
		}
	case len(cfg.Regions) == 1:
		r = &cfg.Regions[0]
	default:
		return nil, nil, fmt.Errorf("%s: %d regions: name the agent's with --region or agent.region", cfg.File, len(cfg.Regions))
	}
	if r.Vectors == "" {
		return nil, nil, fmt.Errorf("%s: region %s has no vectors URL for the agent to scan", cfg.File, r.Name)
	}
	if strings.TrimSpace(a.SigningKey) == "" {
		return nil, nil, fmt.Errorf("%s: agent.signing_key is required (ragparity agent keygen --out DIR writes a pair)", cfg.File)
	}
	key, err := LoadPrivateKey(a.SigningKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: agent.signing_key: %w", cfg.File, err)
	}
	if a.Token == "" {
		return nil, nil, fmt.Errorf("%s: agent.token is required (use ${ENV}): the agent never serves unauthenticated", cfg.File)
	}
	if len(cfg.DeclaredSettings(r)) > 0 {
		logf("agent: the config's settings are not applied by the agent: the gate merges its own declared settings into what the agent serves")
	}
	srv, err := agent.New(agent.Options{Region: r.Name, Vectors: r.Vectors, Key: key, Token: a.Token, RequireClientCert: a.ClientCA != "", Buckets: cfg.Hash.Buckets,
		Tolerance: cfg.Hash.Tolerance, Interval: a.Interval, CheckEvery: a.CheckEvery, MaxAge: a.MaxAge, Timeout: cfg.Timeout,
		SpillDir: filepath.Join(cfg.CacheRoot(), "agent"), Logf: logf,
		Blobs: r.Blobs, BlobCacheDir: filepath.Join(cfg.CacheRoot(), "blobs"), RehashEvery: cfg.Blobs.RehashEvery})
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.CacheRoot(), "agent"), 0o700); err != nil {
		return nil, nil, err
	}
	var tc *tls.Config
	if a.TLSCert != "" {
		if tc, err = agent.ServerTLS(a.TLSCert, a.TLSKey, a.ClientCA); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", cfg.File, err)
		}
	}
	return srv, tc, nil
}
