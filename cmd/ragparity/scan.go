package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/verifier"
	"golang.org/x/term"
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

// progress prints one status line on stderr when it is a terminal.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	on     bool
	counts map[string]int64
	order  []string
}

func newProgress(stderr io.Writer, quiet bool) *progress {
	p := &progress{w: stderr, counts: map[string]int64{}}
	if f, ok := stderr.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		p.on = true
	}
	return p
}

func (p *progress) fn(region string) func(int64) {
	if !p.on {
		return nil
	}
	p.mu.Lock()
	p.order = append(p.order, region)
	p.mu.Unlock()
	return func(n int64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.counts[region] = n
		var parts []string
		for _, r := range p.order {
			parts = append(parts, fmt.Sprintf("%s %d", r, p.counts[r]))
		}
		fmt.Fprintf(p.w, "\r\033[Kscanning points: %s", strings.Join(parts, ", "))
	}
}

func (p *progress) done() {
	if p.on {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// scanOptions are gate.ScanOptions with this command's progress line.
func (p *progress) scanOptions(shard verifier.Shard, spill bool) gate.ScanOptions {
	o := gate.ScanOptions{Shard: shard, Spill: spill}
	if p.on {
		o.Progress = p.fn
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

func sortedKeys(m map[string]any) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}
