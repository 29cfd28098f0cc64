package gate

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/config"
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
}

// BlobOptions tune BuildManifests.
type BlobOptions struct {
	Mode    blob.BlobMode
	Workers int
	// NoCache reads every object (and refreshes the cache).
	NoCache bool
	// CacheDir holds the content-hash caches; "" is the user's default.
	CacheDir string
	// Progress, when set, returns a per-region callback.
	Progress func(region string) func(objects, bytes int64)
}

func (r *RegionManifest) fail(cfg *config.Config, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no complete answer within %v (timeout): %w", cfg.Timeout, err)
	}
	r.Err, r.M = fmt.Errorf("region %s: blobs: %w", r.Region.Name, err), nil
}

// BuildManifests lists every region at once, plans checksum mode's trust
// across them, then hashes what is left, each region under the config's
// timeout.
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
		store, err := adapters.OpenBlob(r.ctx, r.Region.Blobs)
		if err != nil {
			r.fail(cfg, err)
			return
		}
		r.store = store
		r.opts = blob.ManifestOptions{Mode: o.Mode, Workers: o.Workers, NoCacheRead: o.NoCache}
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
			if out[i].Err == nil {
				ms = append(ms, out[i].M)
			}
		}
		blob.PlanBlobChecksums(ms)
	}
	each(func(r *RegionManifest) {
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

// blobCheck is the gate's blob manifest parity check: content mode, as the
// playbook requires (ETags are not content hashes).
func blobCheck(ctx context.Context, cfg *config.Config, o Options, det *Detail) (Check, map[string]string) {
	var with, without []string
	for _, r := range cfg.Regions {
		if r.Blobs != "" {
			with = append(with, r.Name)
		} else {
			without = append(without, r.Name)
		}
	}
	c := Check{Threshold: "every region's blob manifest (key, size, sha256 of content) equal"}
	if len(with) == 0 {
		c.Status = Inconclusive
		c.Error = "blob manifest parity is not available (configure regions[].blobs, or gate.skip: [blobs])"
		return c, nil
	}
	if len(without) > 0 {
		c.Status = Inconclusive
		c.Error = "regions without a blobs URL: " + strings.Join(without, ", ")
		return c, nil
	}
	regions, _ := SelectRegions(cfg, nil)
	ms := BuildManifests(ctx, cfg, regions, BlobOptions{Mode: blob.ModeContent, Workers: 16, CacheDir: filepath.Join(cfg.CacheRoot(), "blobs")})
	hashes := map[string]string{}
	var errs []string
	for _, m := range ms {
		if m.Err != nil {
			errs = append(errs, m.Err.Error())
			continue
		}
		hashes[m.Region.Name] = m.M.Hash().Hex()
	}
	if len(errs) > 0 {
		c.Status = Inconclusive
		c.Error = strings.Join(errs, "; ")
		return c, hashes
	}
	ref := reference(cfg, hashes)
	var refM *blob.BlobManifest
	var refName string
	for _, m := range ms {
		if hashes[m.Region.Name] == ref && refM == nil {
			refM, refName = m.M, m.Region.Name
		}
	}
	agree := 0
	for _, m := range ms {
		if hashes[m.Region.Name] == ref {
			agree++
			continue
		}
		c.FailedRegions = append(c.FailedRegions, m.Region.Name)
		d := blob.DiffManifests(refName, m.Region.Name, refM, m.M)
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
		c.Evidence = append(c.Evidence, capEvidence(m.Region.Name, items, o.MaxEvidence,
			fmt.Sprintf("keys (ragparity diff --blobs --from %s --to %s)", refName, m.Region.Name))...)
	}
	c.Figure = fmt.Sprintf("%d of %d regions agree (manifest %s)", agree, len(ms), short(ref))
	c.Status = Pass
	if len(c.FailedRegions) > 0 {
		c.Status = Fail
	}
	return c, hashes
}
