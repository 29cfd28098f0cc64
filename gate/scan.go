package gate

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/agent"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/verifier"
)

// RegionScan is one region's INDEX_HASH scan, or why there is none.
type RegionScan struct {
	Region *config.Region
	Scan   *verifier.Scan
	// Spill holds the per-point digests for a diff (ScanOptions.Spill):
	// a local spill, or the region's agent serving them; Close releases
	// it.
	Spill verifier.BucketRecords
	Err   error

	remote *agent.Remote
}

// Close releases the region's spill.
func (r *RegionScan) Close() {
	if r.Spill != nil {
		r.Spill.Close()
		r.Spill = nil
	}
}

// ScanOptions tune ScanRegions.
type ScanOptions struct {
	Shard verifier.Shard
	// Spill keeps per-point digests so the scans can be diffed.
	Spill bool
	// Tolerant asks for the tolerant content root (also config
	// hash.tolerant).
	Tolerant bool
	// Progress, when set, returns a per-region callback for points read.
	Progress func(region string) func(points int64)
	// AgentCounter, when set, counts the bytes moved to and from regional
	// agents.
	AgentCounter *agent.Counter

	// pair: two agent regions of a diff fetch only the subtrees where
	// their trees differ (agent.CompletePair), leaving partial leaves.
	pair bool
}

// ScanRegions hashes the regions concurrently, each under the config's
// per-region timeout, with the settings DeclaredSettings adds. It is the
// one place every command and the gate hash regions. A region with an
// agent (regions[].agent) is read from its agent's signed answers, checked
// before they become a Scan (Scan.Via says which path was used); an agent
// that cannot be verified is that region's Err alone.
func ScanRegions(ctx context.Context, cfg *config.Config, regions []*config.Region, o ScanOptions) []RegionScan {
	out := make([]RegionScan, len(regions))
	var wg sync.WaitGroup
	for i, r := range regions {
		out[i].Region = r
		wg.Add(1)
		go func(rs *RegionScan) {
			defer wg.Done()
			var prog func(int64)
			if o.Progress != nil {
				prog = o.Progress(rs.Region.Name)
			}
			if rs.Region.Agent != nil {
				rs.remote, rs.Err = scanAgent(ctx, cfg, rs.Region, o)
				if rs.Err == nil {
					rs.Scan = rs.remote.Scan
					if rs.Scan.Leaves != nil && o.Spill {
						rs.Spill = rs.remote
					}
				}
				return
			}
			var sp *verifier.Spill
			rs.Scan, sp, rs.Err = scanRegion(ctx, cfg, rs.Region, o, prog)
			if sp != nil {
				rs.Spill = sp
			}
		}(&out[i])
	}
	wg.Wait()
	if o.Spill {
		completeAgents(ctx, cfg, out, o.pair)
	}
	return out
}

func scanRegion(ctx context.Context, cfg *config.Config, r *config.Region, o ScanOptions, prog func(int64)) (*verifier.Scan, *verifier.Spill, error) {
	if r.Vectors == "" {
		return nil, nil, fmt.Errorf("region %s: no vectors URL (nor agent) in %s", r.Name, cfg.File)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	declared, err := DeclaredSettings(cfg, r)
	if err != nil {
		return nil, nil, err
	}
	store, err := adapters.OpenVector(ctx, r.Vectors)
	if err != nil {
		return nil, nil, fmt.Errorf("region %s: %w", r.Name, err)
	}
	defer store.Close()
	opts := verifier.Options{Buckets: cfg.Hash.Buckets, Tolerance: cfg.Hash.Tolerance, Tolerant: o.Tolerant || cfg.Hash.Tolerant,
		Shard: o.Shard, Declared: declared, Progress: prog}
	var sp *verifier.Spill
	if o.Spill {
		sp, err = verifier.NewSpill("", cfg.Hash.Buckets)
		if err != nil {
			return nil, nil, fmt.Errorf("region %s: %w", r.Name, err)
		}
		opts.Spill = sp
	}
	s, err := verifier.HashStore(ctx, store, opts)
	if err != nil {
		if sp != nil {
			sp.Close()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, fmt.Errorf("region %s: no complete answer within %v (timeout): %w", r.Name, cfg.Timeout, err)
		}
		return nil, nil, fmt.Errorf("region %s: %w", r.Name, err)
	}
	return s, sp, nil
}

// SelectRegions returns the regions named (all when names is empty).
func SelectRegions(cfg *config.Config, names []string) ([]*config.Region, error) {
	if len(names) == 0 {
		out := make([]*config.Region, len(cfg.Regions))
		for i := range cfg.Regions {
			out[i] = &cfg.Regions[i]
		}
		return out, nil
	}
	var out []*config.Region
	for _, n := range names {
		r, err := cfg.Region(n)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// DiffRegions scans two regions with spills and diffs them
// (verifier.Diff: only the points of differing buckets are compared). o's
// Shard and Spill are ignored.
func DiffRegions(ctx context.Context, cfg *config.Config, from, to string, o ScanOptions) (*verifier.DiffResult, error) {
	sel, err := SelectRegions(cfg, []string{from, to})
	if err != nil {
		return nil, err
	}
	o.Shard, o.Spill, o.pair = verifier.Shard{}, true, true
	res := ScanRegions(ctx, cfg, sel, o)
	defer func() {
		for i := range res {
			res[i].Close()
		}
	}()
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return verifier.Diff(from, to, res[0].Scan, res[1].Scan, res[0].Spill, res[1].Spill)
}
