package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate/server"
	"github.com/ragparity/ragparity/reports"
)

func init() {
	register("report", "render a stored verdict as HTML (with charts), Markdown, JSON and JUnit XML", runReport)
}

const reportHelp = `Usage: ragparity report --verdict FILE.json --out DIR [--config FILE] [--format html,md,json,junit]

Renders a stored verdict (as printed by 'verify --json', served by
GET /v1/verdicts/latest, or a report.json written by this command; - reads
stdin) into DIR:

  report.json  the verdict with its detail (schemas/verdict.schema.json)
  report.md    a pull-request comment (stays under GitHub's 65,536 characters)
  report.html  one self-contained page with charts (no network, no script)
  junit.xml    one test case per gate check, for CI test views

A verdict file carries only the signed summary; its detail (per-question
ΔS, drift and λ, Merkle buckets, blob diffs) is kept in the verdict store by
verify and serve: --config FILE reads it from gate.store. Without it the
report says the detail was not kept. Files are replaced atomically. The signature is not checked here; use
'ragparity verdict verify'. Exit 0 written, 2 bad input (unreadable file,
not a verdict, unknown format) or a write error.

`

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	verdict := fs.String("verdict", "", "verdict JSON file (- reads stdin)")
	out := fs.String("out", "", "directory to write the reports into (created if missing)")
	format := fs.String("format", "all", "formats to write, comma-separated: html, md, json, junit, or all")
	cfgPath := fs.String("config", "", "config whose gate.store holds the verdict's detail (verify and serve keep it there)")
	fs.Usage = func() { fmt.Fprint(stderr, reportHelp); fs.PrintDefaults() }
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	if *verdict == "" || *out == "" {
		return fail(stderr, errors.New("report needs --verdict FILE and --out DIR (see ragparity report -h)"))
	}
	formats, err := reports.ParseFormats(*format)
	if err != nil {
		return fail(stderr, fmt.Errorf("--format: %w", err))
	}
	m, err := reports.ReadFile(*verdict, os.Stdin)
	if pe := (*os.PathError)(nil); errors.As(err, &pe) {
		err = fmt.Errorf("--verdict: %w", err)
	}
	if err != nil {
		return fail(stderr, err)
	}
	if !m.HasDetail() && *cfgPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return fail(stderr, err)
		}
		d, err := server.LoadDetail(ctx, cfg.Gate.Store, cfg.CacheRoot(), m.Verdict.ID)
		switch {
		case errors.Is(err, server.ErrNotFound):
			fmt.Fprintf(stderr, "note: the verdict store keeps no detail for verdict %s\n", m.Verdict.ID)
		case err != nil:
			return fail(stderr, err)
		default:
			m = reports.NewModel(m.Verdict, d)
		}
	}
	if !m.HasDetail() {
		m.DetailNotKept = reports.DetailMeasured(m.Verdict)
	}
	paths, err := reports.WriteFormats(*out, m, formats...)
	if err != nil {
		return fail(stderr, err)
	}
	for _, p := range paths {
		fmt.Fprintln(stdout, p)
	}
	return 0
}
