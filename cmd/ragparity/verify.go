package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/reports"
)

func init() {
	register("verify", "run every check of the failover gate and print one signed verdict", runVerify)
}

// gateFlags are shared by verify and serve.
type gateFlags struct {
	commonFlags
	goldset string
	report  string
}

func (g *gateFlags) add(fs *flag.FlagSet) {
	g.commonFlags.add(fs)
	fs.StringVar(&g.goldset, "goldset", "", "gold set (YAML/JSONL, or a BEIR folder) for the probe check")
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
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ragparity verify --config FILE [--goldset PATH] [--json] [--report out.html]\n\nRuns the failover gate's checks (index_hash, blobs, health, probes, dedupe_kv)\nconcurrently, each with its own timeout, and prints one signed verdict.\nExit 0 pass, 1 fail, 2 inconclusive (any check that errors or times out).\n\n")
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
	signer, err := loadSigner(cfg, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	verify, err := newVerifier(cfg, gf.goldset, signer)
	if err != nil {
		return fail(stderr, err)
	}
	v, det, err := verify(ctx)
	if err != nil {
		return fail(stderr, err)
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

func gateExit(v *gate.Verdict) int {
	switch v.Decision {
	case gate.Pass:
		return ExitEqual
	case gate.Fail:
		return ExitDiffer
	}
	return ExitUnknown
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
