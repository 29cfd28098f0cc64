package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/config"
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

// regionScan is one region's result or error.
type regionScan struct {
	Region *config.Region
	Scan   *verifier.Scan
	Spill  *verifier.Spill
	Err    error
}

// scanRegions hashes the named regions concurrently, each under the
// config's timeout.
func scanRegions(ctx context.Context, cfg *config.Config, regions []*config.Region, shard verifier.Shard, spill bool, prog *progress) []regionScan {
	out := make([]regionScan, len(regions))
	var wg sync.WaitGroup
	for i, r := range regions {
		out[i].Region = r
		wg.Add(1)
		go func(rs *regionScan) {
			defer wg.Done()
			rs.Scan, rs.Spill, rs.Err = scanRegion(ctx, cfg, rs.Region, shard, spill, prog.fn(rs.Region.Name))
		}(&out[i])
	}
	wg.Wait()
	prog.done()
	return out
}

func scanRegion(ctx context.Context, cfg *config.Config, r *config.Region, shard verifier.Shard, spill bool, prog func(int64)) (*verifier.Scan, *verifier.Spill, error) {
	if r.Vectors == "" {
		return nil, nil, fmt.Errorf("region %s: no vectors URL in %s", r.Name, cfg.File)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	store, err := adapters.OpenVector(ctx, r.Vectors)
	if err != nil {
		return nil, nil, fmt.Errorf("region %s: %w", r.Name, err)
	}
	defer store.Close()
	declared, err := declaredSettings(cfg, r)
	if err != nil {
		return nil, nil, err
	}
	opts := verifier.Options{Buckets: cfg.Hash.Buckets, Tolerance: cfg.Hash.Tolerance, Shard: shard,
		Declared: declared, Progress: prog}
	var sp *verifier.Spill
	if spill {
		sp, err = verifier.NewSpill("", cfg.Hash.Buckets)
		if err != nil {
			return nil, nil, fmt.Errorf("region %s: %w", r.Name, err)
		}
		opts.Spill = sp
	}
	s, err := verifier.HashStore(ctx, store, opts)
	if err != nil {
		if sp != nil {
			sp.Close()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, fmt.Errorf("region %s: no complete answer within %v (timeout): %w", r.Name, cfg.Timeout, err)
		}
		return nil, nil, fmt.Errorf("region %s: %w", r.Name, err)
	}
	return s, sp, nil
}

// selectRegions returns the regions named (all when names is empty).
func selectRegions(cfg *config.Config, names []string) ([]*config.Region, error) {
	if len(names) == 0 {
		out := make([]*config.Region, len(cfg.Regions))
		for i := range cfg.Regions {
			out[i] = &cfg.Regions[i]
		}
		return out, nil
	}
	var out []*config.Region
	for _, n := range names {
		r, err := cfg.Region(n)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
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
