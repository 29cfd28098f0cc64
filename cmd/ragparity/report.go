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

var reportHelp = help("report")

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
