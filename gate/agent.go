package gate

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"

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
	return &agent.Client{URL: a.URL, Token: a.Token, Trusted: keys, MaxAge: a.MaxAge, HTTP: hc}, nil
}

// agentKeys loads regions[].agent.public_keys: each a PEM file, or the key
// itself (PEM or base64 of the 32 raw bytes).
func agentKeys(r *config.Region) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for i, spec := range r.Agent.PublicKeys {
		data := []byte(spec)
		if b, err := os.ReadFile(spec); err == nil {
			data = b
		}
		k, err := ParsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("region %s: agent.public_keys[%d]: %w (want a PEM file or base64 of the 32-byte key)", r.Name, i, err)
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
	rem, err := c.Fetch(ctx, agent.FetchOptions{Buckets: cfg.Hash.Buckets, Tolerance: cfg.Hash.Tolerance, Declared: declared, Nodes: o.Spill})
	if err != nil {
		return nil, fmt.Errorf("region %s: %s: %w", r.Name, c.Name(), err)
	}
	return rem, nil
}

// completeAgents fills the leaves of agent scans fetched by tree nodes:
// against a region whose content root is the same (nothing more to
// fetch), else against any region with leaves (only the subtrees that
// differ are fetched), else in full. The agent then serves the records of
// differing buckets as the region's spill.
func completeAgents(ctx context.Context, cfg *config.Config, out []RegionScan) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
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
