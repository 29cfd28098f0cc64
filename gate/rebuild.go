package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/replicate"
)

// RebuildOptions are one `rebuild` run's choices.
type RebuildOptions struct {
	// Source names the texts: a folder, a BEIR corpus, or a blob store URL
	// (replicate.OpenSource).
	Source string
	// Regions are the target regions (default: every one with vectors).
	Regions []string
	// RunID names the run; "" derives it from the source manifest, the
	// analyzers, the model tag and the settings.
	RunID string
	// Resume continues an interrupted run from its checkpoint.
	Resume bool
	// Wait waits for another run rebuilding a target region instead of
	// failing.
	Wait    bool
	Promote bool
	// BatchDocs are claimed, embedded and written together.
	BatchDocs int
	// Progress is called with the number of documents done.
	Progress func(n int)
}

// checkpoint is what an interrupted rebuild leaves for Resume.
type checkpoint struct {
	RunID   string    `json:"run_id"`
	Owner   string    `json:"owner"`
	Source  string    `json:"source"`
	Regions []string  `json:"regions"`
	Started time.Time `json:"started"`
}

// Rebuild chunks, embeds (each chunk once, through the embedding cache)
// and writes every target region's stage behind the idempotency fence,
// then compares the stages and, with Promote, swaps them in. One run per
// region at a time: a region another run holds fails (or with Wait, waits)
// before anything is written. An interrupted run leaves a checkpoint under
// the cache that Resume continues with the same writer identity. The
// Result is non-nil whenever stages were written, also with an error.
func Rebuild(ctx context.Context, cfg *config.Config, o RebuildOptions) (*replicate.Result, error) {
	src, err := replicate.OpenSource(o.Source)
	if err != nil {
		return nil, err
	}
	if cfg.Embedder == "" {
		return nil, fmt.Errorf("%s: rebuild needs an embedder (add `embedder: glove` for the offline default); its model tag is hashed into every region's settings", cfg.File)
	}
	inner, err := OpenEmbedder(cfg.Embedder)
	if err != nil {
		return nil, err
	}
	targets, closeTargets, err := Targets(ctx, cfg, o.Regions)
	defer closeTargets()
	if err != nil {
		return nil, err
	}
	if err := replicate.CheckTargets(targets); err != nil {
		return nil, err
	}
	var names []string
	for _, t := range targets {
		names = append(names, t.Region)
	}
	// One rebuild per region: say who is at it before touching anything
	// another run holds (the embedding cache is one file per host).
	if !o.Resume {
		if err := waitIdle(ctx, targets, o.Wait, func(run string) string {
			return fmt.Sprintf("(if that run was interrupted, finish it with --resume --run-id %s once its lease of %s has run out)", run, cfg.Fence.Lease)
		}); err != nil {
			return nil, err
		}
	}
	cached, err := EmbeddingCache(cfg, inner)
	if err != nil {
		return nil, err
	}
	defer cached.Close()
	dim := inner.Dim()
	if dim == 0 {
		v, err := cached.Embed(ctx, []string{"dimension probe"})
		if err != nil {
			return nil, err
		}
		dim = len(v[0])
	}
	cspec := CollectionSpec(cfg, dim)
	id := o.RunID
	if id == "" {
		if id, err = replicate.DeriveRunID(ctx, src, inner.ModelTag(), cspec, targets); err != nil {
			return nil, fmt.Errorf("%w (nothing written, the live index is untouched)", err)
		}
	}
	cp, err := loadCheckpoint(cfg, id, o.Resume, o.Source, names)
	for err != nil {
		// A run in progress also leaves a checkpoint: say who is at it,
		// or with Wait, wait for it to finish and look again.
		berr := replicate.Busy(ctx, targets, "")
		if berr == nil {
			return nil, err
		}
		if !o.Wait {
			if !o.Resume {
				berr = fmt.Errorf("%w (if that run was interrupted, finish it with --resume --run-id %s once its lease of %s has run out)", berr, id, cfg.Fence.Lease)
			}
			return nil, berr
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, berr
		}
		cp, err = loadCheckpoint(cfg, id, o.Resume, o.Source, names)
	}
	host, _ := os.Hostname()
	res, err := replicate.Rebuild(ctx, targets, replicate.Options{
		Source: src, Embedder: cached, Spec: cspec, RunID: id, Owner: cp.Owner, Host: host, Wait: o.Wait,
		Lease: cfg.Fence.Lease, TTL: cfg.Fence.FailoverWindow + 24*time.Hour, Window: cfg.Fence.FailoverWindow,
		BatchDocs: o.BatchDocs, Promote: o.Promote, Buckets: cfg.Hash.Buckets, Progress: o.Progress,
	})
	var busy *replicate.LeaseError
	if errors.As(err, &busy) && res == nil {
		if !o.Resume {
			os.Remove(checkpointPath(cfg, id))
		}
		return nil, err
	}
	if err != nil && res == nil {
		return nil, fmt.Errorf("%w (resume with --resume --run-id %s)", err, id)
	}
	os.Remove(checkpointPath(cfg, id))
	return res, err
}

// waitIdle returns nil once no other run holds a target region; without
// wait it returns the holder's error with hint(its run id) appended.
func waitIdle(ctx context.Context, targets []replicate.Target, wait bool, hint func(run string) string) error {
	for {
		berr := replicate.Busy(ctx, targets, "")
		if berr == nil {
			return nil
		}
		if !wait {
			run := "RUN"
			var le *replicate.LeaseError
			if errors.As(berr, &le) && le.Holder.RunID != "" {
				run = le.Holder.RunID
			}
			return fmt.Errorf("%w %s", berr, hint(run))
		}
		if sleep(ctx, 500*time.Millisecond) != nil {
			return berr
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func checkpointPath(cfg *config.Config, id string) string {
	return filepath.Join(cfg.CacheRoot(), "rebuild", id+".json")
}

// loadCheckpoint starts a run (refusing to silently restart an interrupted
// one) or, with resume, reuses the interrupted run's writer identity.
func loadCheckpoint(cfg *config.Config, id string, resume bool, source string, regions []string) (*checkpoint, error) {
	p := checkpointPath(cfg, id)
	b, err := os.ReadFile(p)
	switch {
	case err == nil && !resume:
		return nil, fmt.Errorf("rebuild %s was interrupted (checkpoint %s): pass --resume to finish it, or --run-id NEW to start another", id, p)
	case err != nil && resume:
		return nil, fmt.Errorf("nothing to resume: no checkpoint for rebuild %s at %s", id, p)
	case err == nil:
		var cp checkpoint
		if json.Unmarshal(b, &cp) != nil || cp.Owner == "" {
			return nil, fmt.Errorf("checkpoint %s is corrupt; remove it and start again", p)
		}
		return &cp, nil
	}
	cp := &checkpoint{RunID: id, Owner: replicate.NewOwner(), Source: source, Regions: regions, Started: time.Now().UTC()}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	b, _ = json.MarshalIndent(cp, "", "  ")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	return cp, os.Rename(tmp, p)
}
