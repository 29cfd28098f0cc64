package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
	"github.com/ragparity/ragparity/reports"
)

// gateFlags are shared by verify and serve.
type gateFlags struct {
	commonFlags
	goldset  string
	report   string
	baseline string
}

func (g *gateFlags) add(fs *flag.FlagSet) {
	g.commonFlags.add(fs)
	fs.StringVar(&g.goldset, "goldset", "", "gold set (YAML/JSONL, or a BEIR folder) for the probe check")
	fs.StringVar(&g.baseline, "baseline", "", "release baseline file (default: gate.baseline, else the verdict store's newest baseline of the release)")
	fs.StringVar(&g.report, "report", "", "also write the verdict's report to this path (.html, .json, .md or .xml for JUnit), replaced after each verification")
}

// checkReport refuses a --report path whose format cannot be told, before
// anything runs.
func (g *gateFlags) checkReport() error {
	if g.report == "" {
		return nil
	}
	if _, err := reports.FormatForPath(g.report); err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	return nil
}

// loadSigner loads gate.signing_key; ephemeral (and said so) when none
// is configured.
func loadSigner(cfg *config.Config, stderr io.Writer) (*gate.Signer, error) {
	signer, err := gate.LoadSigner(cfg.Gate.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("%s: gate.signing_key: %w", cfg.File, err)
	}
	if signer.Ephemeral {
		fmt.Fprintf(stderr, "note: no gate.signing_key configured; signing with an ephemeral key %s\n", signer.KeyID())
	}
	return signer, nil
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var gf gateFlags
	gf.add(fs)
	childResult := fs.Bool("child-result", false, "internal (serve --verify-nice): print the verdict and its detail for the serving parent and record nothing")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ragparity verify --config FILE [--goldset PATH] [--json] [--report out.html]\n\nRuns the failover gate's checks (index_hash, blobs, health, probes, dedupe_kv)\nconcurrently, each with its own timeout, and prints one signed verdict.\nEvery region is decided on its own against the release baseline (or, without\none, the agreeing majority of the regions): a region that is down or drifted is\nblocked, the others stay admitted.\nExit 0 every region admitted, 1 a region failed, 2 none failed but some could\nnot be decided (unreachable, timed out, no reference).\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	cfg, err := gf.load()
	if err != nil {
		return fail(stderr, err)
	}
	if err := gf.checkReport(); err != nil {
		return fail(stderr, err)
	}
	noteTo := stderr
	if *childResult {
		noteTo = io.Discard // the parent signs; its own note said it
	}
	signer, err := loadSigner(cfg, noteTo)
	if err != nil {
		return fail(stderr, err)
	}
	// The verdict store: the release baseline is read from it (unless
	// one is given as a file) and the verdict and its detail are recorded
	// in it, like serve does.
	needStore := gf.baseline == "" && cfg.Gate.Baseline == ""
	store, err := server.OpenConfigStore(ctx, cfg)
	switch {
	case err != nil && needStore:
		return fail(stderr, fmt.Errorf("%w (the release baseline is read from it; pass --baseline FILE to use an exported one)", err))
	case err != nil:
		fmt.Fprintf(stderr, "warning: the verdict will not be recorded in the history store: %v\n", err)
		store = nil
	default:
		defer store.Close()
	}
	v, det, err := newVerifier(cfg, gf.goldset, gf.baseline, store, signer)(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	if *childResult {
		if err := server.WriteChildResult(stdout, v, det); err != nil {
			return fail(stderr, err)
		}
		return gateExit(v)
	}
	if store != nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		if err := server.Record(pctx, store, v, det); err != nil {
			fmt.Fprintf(stderr, "warning: the verdict was not recorded in the history store: %v\n", err)
		}
		cancel()
	}
	if gf.report != "" {
		if err := reports.WriteFile(gf.report, reports.NewModel(v, det)); err != nil {
			return fail(stderr, err)
		}
	}
	if gf.json {
		printJSON(stdout, v)
	} else {
		reports.WriteText(stdout, v)
	}
	return gateExit(v)
}

// gateExit: 0 when every region is admitted, 1 when any region failed,
// 2 when none failed but some could not be decided.
func gateExit(v *gate.Verdict) int {
	if v.Decision == gate.Pass {
		return ExitEqual
	}
	for _, r := range v.Regions {
		if r.Status == gate.Fail {
			return ExitDiffer
		}
	}
	return ExitUnknown
}
