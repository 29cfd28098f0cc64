package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"time"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
	"github.com/ragparity/ragparity/replicate"
)

func init() {
	register("rebuild", "rebuild regions from source texts behind the idempotency fence", runRebuild)
}

// checkpoint is what an interrupted rebuild leaves for --resume.
type checkpoint struct {
	RunID   string    `json:"run_id"`
	Owner   string    `json:"owner"`
	Source  string    `json:"source"`
	Regions []string  `json:"regions"`
	Started time.Time `json:"started"`
}

func runRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	var cf commonFlags
	cf.add(fs)
	source := fs.String("source", "", "folder of text files, a BEIR corpus.jsonl (or a folder holding one), or a blob store URL of text files (s3://bucket/prefix?..., file:///path) (required)")
	var regions listFlag
	fs.Var(&regions, "regions", "target regions (comma-separated; default: every region with a vectors URL)")
	resume := fs.Bool("resume", false, "continue an interrupted run (reuses its fence claims)")
	promote := fs.Bool("promote", false, "swap the rebuilt indexes in when every region's INDEX_HASH agrees")
	runID := fs.String("run-id", "", "name of this rebuild (default: a digest of the source manifest (ids and revisions), analyzers, model tag and settings, so a replay of the same content writes nothing twice and changed content is a new run; pass a new one to rebuild again after a promote)")
	batch := fs.Int("batch", 64, "documents claimed, embedded and written together")
	wait := fs.Bool("wait", false, "when another run is rebuilding a target region, wait for it instead of exiting 2")
	mkBaseline := fs.Bool("baseline", false, "with --promote: then take the release baseline from the first rebuilt region (as `baseline create`: its health contract must claim the new INDEX_HASH; needs gate.signing_key)")
	baseGold := fs.String("goldset", "", "with --baseline: the gold set whose probe runs the baseline records")
	baseAccept := fs.String("accept-below-floor", "", "with --baseline: the reason a release below the quality floors gets a baseline anyway")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ragparity rebuild --config FILE --source SRC [--regions R1,R2] [--resume] [--promote] [--json]\n\nChunks every document with the configured analyzer, embeds each chunk once,\nwrites every target region's staged index behind the idempotency fence,\ncompares the regions' INDEX_HASHes and, with --promote, swaps the stages in.\nExit 0 on success, 1 when the rebuilt regions disagree, 2 on error (the live\nindexes are then untouched).\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	if *mkBaseline && !*promote {
		return fail(stderr, errors.New("rebuild --baseline needs --promote (a baseline records what the live index holds)"))
	}
	// main trades memory for less GC work (GOGC 400), which suits short
	// scans; a rebuild streams for minutes through transient batches, waits
	// mostly on the stores, and keeps its memory bounded instead (under
	// 200 MB RSS for a 100 MB source file, make bench), unless the user set
	// GOGC. Measured on that file: GOGC 400 peaks at 243 MB, 100 at 204,
	// 50 at 185 with no loss of speed.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if *source == "" {
		return fail(stderr, errors.New("rebuild needs --source"))
	}
	cfg, err := cf.load()
	if err != nil {
		return fail(stderr, err)
	}
	if cf.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cf.timeout)
		defer cancel()
	}
	src, err := replicate.OpenSource(*source)
	if err != nil {
		return fail(stderr, err)
	}
	if cfg.Embedder == "" {
		return fail(stderr, fmt.Errorf("%s: rebuild needs an embedder (add `embedder: glove` for the offline default); its model tag is hashed into every region's settings", cfg.File))
	}
	inner, err := gate.OpenEmbedder(cfg.Embedder)
	if err != nil {
		return fail(stderr, err)
	}
	targets, closeTargets, err := gate.Targets(ctx, cfg, regions)
	defer closeTargets()
	if err != nil {
		return fail(stderr, err)
	}
	var names []string
	for _, t := range targets {
		names = append(names, t.Region)
	}
	// One rebuild per region: say who is at it before touching anything
	// another run holds (the embedding cache is one file per host).
	for !*resume {
		berr := replicate.Busy(ctx, targets, "")
		if berr == nil {
			break
		}
		if !*wait {
			run := "RUN"
			var le *replicate.LeaseError
			if errors.As(berr, &le) && le.Holder.RunID != "" {
				run = le.Holder.RunID
			}
			return fail(stderr, fmt.Errorf("%w (if that run was interrupted, finish it with --resume --run-id %s once its lease of %s has run out)", berr, run, cfg.Fence.Lease))
		}
		select {
		case <-ctx.Done():
			return fail(stderr, berr)
		case <-time.After(500 * time.Millisecond):
		}
	}
	cached, err := gate.EmbeddingCache(cfg, inner)
	if err != nil {
		return fail(stderr, err)
	}
	defer cached.Close()
	dim := inner.Dim()
	if dim == 0 {
		v, err := cached.Embed(ctx, []string{"dimension probe"})
		if err != nil {
			return fail(stderr, err)
		}
		dim = len(v[0])
	}
	cspec := gate.CollectionSpec(cfg, dim)
	id := *runID
	if id == "" {
		if id, err = replicate.DeriveRunID(ctx, src, inner.ModelTag(), cspec, targets); err != nil {
			return fail(stderr, fmt.Errorf("%w (nothing written, the live index is untouched)", err))
		}
	}
	lease := cfg.Fence.Lease
	cp, err := loadCheckpoint(cfg, id, *resume, *source, names)
	for err != nil {
		// A run in progress also leaves a checkpoint: say who is at it,
		// or with --wait, wait for it to finish and look again.
		berr := replicate.Busy(ctx, targets, "")
		if berr == nil {
			return fail(stderr, err)
		}
		if !*wait {
			if !*resume {
				berr = fmt.Errorf("%w (if that run was interrupted, finish it with --resume --run-id %s once its lease of %s has run out)", berr, id, lease)
			}
			return fail(stderr, berr)
		}
		select {
		case <-ctx.Done():
			return fail(stderr, berr)
		case <-time.After(500 * time.Millisecond):
		}
		cp, err = loadCheckpoint(cfg, id, *resume, *source, names)
	}
	ttl := cfg.Fence.FailoverWindow + 24*time.Hour
	prog := scanProgress(stderr, cf.json)
	pf := prog.Points("documents")
	host, _ := os.Hostname()
	res, err := replicate.Rebuild(ctx, targets, replicate.Options{
		Source: src, Embedder: cached, Spec: cspec, RunID: id, Owner: cp.Owner, Host: host, Wait: *wait,
		Lease: lease, TTL: ttl, Window: cfg.Fence.FailoverWindow,
		BatchDocs: *batch, Promote: *promote, Buckets: cfg.Hash.Buckets,
		Progress: func(n int) {
			if pf != nil {
				pf(int64(n))
			}
		},
	})
	prog.Done()
	var busy *replicate.LeaseError
	if errors.As(err, &busy) && res == nil {
		if !*resume {
			os.Remove(checkpointPath(cfg, id))
		}
		return fail(stderr, err)
	}
	if err != nil && res == nil {
		return fail(stderr, fmt.Errorf("%w (resume with --resume --run-id %s)", err, id))
	}
	for _, s := range res.StaleStages {
		fmt.Fprintf(stderr, "warning: region %s has a stale stage of run %s (%d points): list with `ragparity stages list`, remove with `ragparity stages drop --region %s --run-id %s`\n", s.Region, s.RunID, s.Points, s.Region, s.RunID)
	}
	os.Remove(checkpointPath(cfg, id))
	code := ExitEqual
	if !res.Agree {
		code = ExitDiffer
	}
	if cf.json {
		printJSON(stdout, res)
	} else {
		printRebuild(res, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
	}
	if *mkBaseline && err == nil && res.Promoted && code == ExitEqual {
		if berr := rebuildBaseline(ctx, cfg, targets[0].Region, *baseGold, *baseAccept, stdout, cf.json); berr != nil {
			fmt.Fprintf(stderr, "Error: the rebuild was promoted, but no baseline was made: %v (take it with `ragparity baseline create` once the region answers its new contract)\n", berr)
			return ExitUnknown
		}
	}
	return code
}

// rebuildBaseline takes the release baseline from a region just promoted
// and stores it, as `baseline create` does.
func rebuildBaseline(ctx context.Context, cfg *config.Config, region, gold, accept string, stdout io.Writer, quiet bool) error {
	signer, err := gate.LoadSigner(cfg.Gate.SigningKey)
	if err != nil {
		return fmt.Errorf("%s: gate.signing_key: %w", cfg.File, err)
	}
	b, err := gate.CreateBaseline(ctx, cfg, gate.CreateOptions{From: region, Goldset: gold, AcceptBelowFloor: accept, Signer: signer})
	if err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, err := server.OpenStore(octx, cfg.Gate.Store, cfg.CacheRoot())
	cancel()
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.PutBaseline(ctx, b); err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(stdout, "baseline %s of release %s taken from %s\n", b.ID, b.Release, region)
	}
	return nil
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

func printRebuild(r *replicate.Result, w io.Writer) {
	fmt.Fprintf(w, "rebuild %s: %d documents, %d chunks, %d embedded, %d deduped, %dms\n", r.RunID, r.Documents, r.Chunks, r.Embedded, r.Deduped, r.ElapsedMS)
	names := make([]string, 0, len(r.Written))
	for n := range r.Written {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %s: written %d, dedupe hits %d, INDEX_HASH %s\n", n, r.Written[n], r.Dedupe[n].Hits, r.IndexHash[n])
	}
	switch {
	case r.Note != "":
		fmt.Fprintln(w, r.Note)
	case !r.Agree:
		fmt.Fprintln(w, "the rebuilt regions DISAGREE")
	case r.Promoted:
		fmt.Fprintln(w, "all rebuilt regions agree; promoted")
	default:
		fmt.Fprintln(w, "all rebuilt regions agree; staged, not promoted (pass --promote)")
	}
}
