package gate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/agent"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier/blob"
)

// RegionManifest is one region's blob manifest or error.
type RegionManifest struct {
	Region  *config.Region
	M       *blob.BlobManifest
	Warning string
	Err     error

	ctx    context.Context
	cancel context.CancelFunc
	store  adapters.BlobStore
	cache  *blob.BlobCache
	opts   blob.ManifestOptions
	// viaAgent: the manifest came from the region's agent (regions[].agent
	// without regions[].blobs); M.Location names the agent.
	viaAgent bool
}

// BlobOptions tune BuildManifests.
type BlobOptions struct {
	Mode    blob.BlobMode
	Workers int
	// NoCache reads every object (and refreshes the cache).
	NoCache bool
	// CacheDir holds the content-hash caches; "" is the user's default.
	CacheDir string
	// RehashEvery re-reads every cached object at least once per period
	// (config blobs.rehash_every); 0 trusts the cache until the object's
	// identity changes.
	RehashEvery time.Duration
	// Progress, when set, returns a per-region callback.
	Progress func(region string) func(objects, bytes int64)
	// AgentCounter, when set, counts the bytes moved to and from agents.
	AgentCounter *agent.Counter
}

func (r *RegionManifest) fail(cfg *config.Config, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no complete answer within %v (timeout): %w", cfg.Timeout, err)
	}
	r.Err, r.M = fmt.Errorf("region %s: blobs: %w", r.Region.Name, err), nil
}

// BuildManifests lists every region at once, plans checksum mode's trust
// across them, then hashes what is left, each region under the config's
// timeout. A region with an agent and no blobs URL gets the manifest its
// agent built (content mode), checked against the agent's signed hash.
func BuildManifests(ctx context.Context, cfg *config.Config, regions []*config.Region, o BlobOptions) []RegionManifest {
	out := make([]RegionManifest, len(regions))
	each := func(fn func(r *RegionManifest)) {
		var wg sync.WaitGroup
		for i := range out {
			if out[i].Err != nil {
				continue
			}
			wg.Add(1)
			go func(r *RegionManifest) {
				defer wg.Done()
				fn(r)
			}(&out[i])
		}
		wg.Wait()
	}
	for i, r := range regions {
		out[i].Region = r
		out[i].ctx, out[i].cancel = context.WithTimeout(ctx, cfg.Timeout)
	}
	defer func() {
		for i := range out {
			if out[i].store != nil {
				out[i].store.Close()
			}
			out[i].cancel()
		}
	}()
	each(func(r *RegionManifest) {
		if r.Region.Blobs == "" && r.Region.Agent != nil {
			r.viaAgent = true
			if o.Mode != blob.ModeContent {
				r.fail(cfg, fmt.Errorf("its agent serves content-mode manifests only (run with --mode content)"))
				return
			}
			c, err := AgentClient(r.Region, o.AgentCounter)
			if err != nil {
				r.fail(cfg, err)
				return
			}
			if r.M, err = c.FetchManifest(r.ctx, false); err != nil {
				r.fail(cfg, fmt.Errorf("%s: %w", c.Name(), err))
			}
			return
		}
		store, err := adapters.OpenBlob(r.ctx, r.Region.Blobs)
		if err != nil {
			r.fail(cfg, err)
			return
		}
		r.store = store
		r.opts = blob.ManifestOptions{Mode: o.Mode, Workers: o.Workers, NoCacheRead: o.NoCache, RehashEvery: o.RehashEvery}
		if o.Progress != nil {
			r.opts.Progress = o.Progress(r.Region.Name)
		}
		if o.Mode != blob.ModeETag {
			dir := o.CacheDir
			if dir == "" {
				if dir, err = blob.DefaultBlobCacheDir(); err != nil {
					r.Warning = fmt.Sprintf("region %s: %v; running without a cache", r.Region.Name, err)
				}
			}
			if dir != "" {
				c, err := blob.OpenBlobCache(dir, store.Location())
				switch {
				case err != nil:
					r.Warning = fmt.Sprintf("region %s: %v; running without a cache", r.Region.Name, err)
				case c.Rebuilt != "":
					r.Warning = fmt.Sprintf("region %s: blob cache %s not used (%s); rebuilding it", r.Region.Name, c.Path(), c.Rebuilt)
					r.cache = c
				default:
					r.cache = c
				}
				r.opts.Cache = r.cache
			}
		}
		r.M, err = blob.ListManifest(r.ctx, store, r.opts)
		if err != nil {
			r.saveCache(false)
			r.fail(cfg, err)
		}
	})
	if o.Mode == blob.ModeChecksum {
		var ms []*blob.BlobManifest
		for i := range out {
			if out[i].Err == nil && !out[i].viaAgent {
				ms = append(ms, out[i].M)
			}
		}
		blob.PlanBlobChecksums(ms)
	}
	each(func(r *RegionManifest) {
		if r.viaAgent {
			return // built and checked by the agent's answer
		}
		err := r.M.HashPending(r.ctx, r.store, r.opts)
		if err == nil {
			err = r.M.Finish()
		}
		r.saveCache(err == nil)
		if err != nil {
			r.fail(cfg, err)
		}
	})
	return out
}

func (r *RegionManifest) saveCache(complete bool) {
	if r.cache == nil {
		return
	}
	if err := r.cache.Save(complete); err != nil {
		w := fmt.Sprintf("region %s: could not save the blob cache: %v", r.Region.Name, err)
		if r.Warning != "" {
			w = r.Warning + "; " + w
		}
		r.Warning = w
	}
}

// blobCheck is the gate's blob manifest parity check, per region: content
// mode, as the playbook requires (ETags are not content hashes), each
// region's manifest hash against the reference (the baseline's, else the
// agreeing majority's), the differing keys named.
func blobCheck(ctx context.Context, cfg *config.Config, o Options, det *Detail) (Check, map[string]string) {
	c := Check{Threshold: "every region's blob manifest (key, size, sha256 of content) equal to the reference's"}
	res := newResults(cfg)
	var with []*config.Region
	for i := range cfg.Regions {
		r := &cfg.Regions[i]
		if r.Blobs == "" && r.Agent == nil {
			res.inconclusive(r.Name, "no blobs URL (configure regions[].blobs or regions[].agent, or gate.skip: [blobs])")
			continue
		}
		with = append(with, r)
	}
	ms := BuildManifests(ctx, cfg, with, BlobOptions{Mode: blob.ModeContent, Workers: 16, CacheDir: filepath.Join(cfg.CacheRoot(), "blobs"), RehashEvery: cfg.Blobs.RehashEvery})
	hashes := map[string]string{}
	byName := map[string]*blob.BlobManifest{}
	for _, m := range ms {
		if m.Err != nil {
			res.inconclusive(m.Region.Name, m.Err.Error())
			continue
		}
		hashes[m.Region.Name] = m.M.Hash().Hex()
		byName[m.Region.Name] = m.M
	}
	var ref string
	var refM *blob.BlobManifest
	refName := "baseline"
	if b := o.Baseline; b != nil && b.Blobs != nil {
		ref = b.Blobs.ManifestHash
		m, err := b.Blobs.manifest()
		if err != nil {
			res.all(Inconclusive, err.Error())
			res.apply(&c)
			return c, hashes
		}
		refM = m
	} else {
		r, ok, why := majority(cfg, hashes, "the blob manifest")
		if o.Baseline != nil {
			why = "the baseline records no blob manifest (re-create it with regions[].blobs configured); " + why
		}
		if !ok {
			res.all(Inconclusive, why)
			res.apply(&c)
			c.Figure = "undecided: " + why
			return c, hashes
		}
		ref = r
	}
	faithful := 0
	for _, r := range cfg.Regions {
		if hashes[r.Name] == ref && byName[r.Name] != nil {
			faithful++
			if refM == nil {
				refM, refName = byName[r.Name], r.Name
			}
		}
	}
	for _, r := range cfg.Regions {
		m := byName[r.Name]
		if m == nil {
			continue
		}
		if hashes[r.Name] == ref {
			res.pass(r.Name)
			continue
		}
		d, err := diffManifests(ctx, cfg, refName, r.Name, refM, m)
		if err != nil {
			// The signed hashes differ: the region fails either way.
			res.fail(r.Name, fmt.Sprintf("manifest %s, the reference is %s (the differing keys could not be listed: %v)",
				parity.ShortHex(hashes[r.Name]), parity.ShortHex(ref), err))
			continue
		}
		bd := BlobDiff{From: d.From, To: d.To, OnlyInFrom: d.OnlyInFrom, OnlyInTo: d.OnlyInTo}
		for _, ch := range d.Changed {
			bd.Changed = append(bd.Changed, BlobChange{Key: ch.Key, Reason: ch.Reason})
		}
		det.addBlobDiff(bd)
		var items []string
		for _, k := range d.OnlyInFrom {
			items = append(items, fmt.Sprintf("key %q missing (present in %s)", k, refName))
		}
		for _, k := range d.OnlyInTo {
			items = append(items, fmt.Sprintf("key %q extra", k))
		}
		for _, ch := range d.Changed {
			items = append(items, fmt.Sprintf("key %q differs (%s)", ch.Key, ch.Reason))
		}
		c.Evidence = append(c.Evidence, capEvidence(r.Name, items, o.MaxEvidence,
			fmt.Sprintf("keys (ragparity diff --blobs --from %s --to %s)", refName, r.Name))...)
		res.fail(r.Name, fmt.Sprintf("manifest %s, the reference is %s: %d missing, %d extra, %d changed keys against %s",
			parity.ShortHex(hashes[r.Name]), parity.ShortHex(ref), len(d.OnlyInFrom), len(d.OnlyInTo), len(d.Changed), refName))
	}
	res.apply(&c)
	c.Figure = fmt.Sprintf("%d of %d regions equal the reference (manifest %s)", faithful, len(cfg.Regions), parity.ShortHex(ref))
	return c, hashes
}
