package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
)

var baselineHelp = help("baseline")

func runBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if _, code, ok := pickVerb("baseline", args, []string{"create", "show", "export", "import"}, baselineHelp, stdout, stderr); !ok {
		return code
	}
	fs := flag.NewFlagSet("baseline "+args[0], flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(stderr, baselineHelp); fs.PrintDefaults() }
	var cf commonFlags
	cf.add(fs)
	from := fs.String("from", "", "create: the region to take the baseline from")
	gold := fs.String("goldset", "", "create: gold set whose probe runs the baseline records")
	accept := fs.String("accept-below-floor", "", "create: the reason a release below the quality floors gets a baseline anyway (recorded and signed)")
	out := fs.String("out", "", "export: file to write")
	in := fs.String("in", "", "import: file to read")
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return flagExit(err)
	}
	cfg, err := cf.load()
	if err != nil {
		return fail(stderr, err)
	}
	signer, err := gate.LoadSigner(cfg.Gate.SigningKey)
	if err != nil {
		return fail(stderr, fmt.Errorf("%s: gate.signing_key: %w", cfg.File, err))
	}
	store, err := server.OpenConfigStore(ctx, cfg)
	if err != nil {
		return fail(stderr, err)
	}
	defer store.Close()

	switch args[0] {
	case "create":
		if *from == "" {
			return fail(stderr, errors.New("baseline create: --from REGION is required"))
		}
		b, err := gate.CreateBaseline(ctx, cfg, gate.CreateOptions{From: *from, Goldset: *gold, AcceptBelowFloor: *accept, Signer: signer})
		if errors.Is(err, gate.ErrBelowFloor) {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			return ExitDiffer
		}
		if err != nil {
			return fail(stderr, err)
		}
		if err := store.PutBaseline(ctx, b); err != nil {
			return fail(stderr, err)
		}
		return printBaseline(b, cf.json, stdout)
	case "show":
		b, err := server.LatestBaseline(ctx, cfg, store)
		if err != nil {
			return fail(stderr, err)
		}
		return printBaseline(b, cf.json, stdout)
	case "export":
		if *out == "" {
			return fail(stderr, errors.New("baseline export: --out FILE is required"))
		}
		b, err := server.LatestBaseline(ctx, cfg, store)
		if err != nil {
			return fail(stderr, err)
		}
		if err := gate.WriteBaselineFile(*out, b); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "baseline %s written to %s\n", b.ID, *out)
		return 0
	default: // import
		if *in == "" {
			return fail(stderr, errors.New("baseline import: --in FILE is required"))
		}
		b, _, err := server.ResolveBaseline(ctx, cfg, *in, nil, signer)
		if err != nil {
			return fail(stderr, err)
		}
		if err := store.PutBaseline(ctx, b); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "baseline %s of release %s imported into %v\n", b.ID, b.Release, store)
		return 0
	}
}

func printBaseline(b *gate.Baseline, asJSON bool, w io.Writer) int {
	if asJSON {
		printJSON(w, b)
	} else {
		b.WriteText(w)
	}
	return 0
}
