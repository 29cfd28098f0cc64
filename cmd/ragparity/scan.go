package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/internal/termui"
	"github.com/ragparity/ragparity/verifier"
)

// commonFlags are shared by commands that read a config.
type commonFlags struct {
	config  string
	json    bool
	timeout time.Duration
}

func (c *commonFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "ragparity.yaml", "config file (YAML)")
	fs.BoolVar(&c.json, "json", false, "print one JSON document on stdout (no progress output)")
	fs.DurationVar(&c.timeout, "timeout", 0, "per-region time limit (default: the config's timeout, else 10m)")
}

func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		return errFlags
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "Error: unexpected argument %q\n", fs.Arg(0))
		return errFlags
	}
	return nil
}

func (c *commonFlags) load() (*config.Config, error) {
	cfg, err := config.Load(c.config)
	if err != nil {
		return nil, err
	}
	if c.timeout > 0 {
		cfg.Timeout = c.timeout
	}
	return cfg, nil
}

// scanProgress is the status line of a scan ("scanning points: eu 1200,
// us 900") on a terminal.
func scanProgress(stderr io.Writer, quiet bool) *termui.Line {
	return termui.NewLine(stderr, "scanning points: ", ", ", quiet)
}

// scanOptions are gate.ScanOptions with a progress line.
func scanOptions(l *termui.Line, shard verifier.Shard, spill bool) gate.ScanOptions {
	o := gate.ScanOptions{Shard: shard, Spill: spill}
	if l.On() {
		o.Progress = l.Points
	}
	return o
}

// listFlag collects a repeatable or comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
