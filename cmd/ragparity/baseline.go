package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
	"github.com/ragparity/ragparity/internal/termui"
	"github.com/ragparity/ragparity/parity"
)

func init() {
	register("baseline", "make, show, export or import the signed release baseline every region is verified against", runBaseline)
}

const baselineHelp = `Usage: ragparity baseline create --config FILE --from REGION [--goldset PATH] [--accept-below-floor REASON] [--json]
       ragparity baseline show   --config FILE [--json]
       ragparity baseline export --config FILE --out FILE
       ragparity baseline import --config FILE --in FILE

The release baseline is the signed record of what a faithful region of the
release looks like: INDEX_HASH, settings and Merkle leaves, the blob
manifest, the health contract {schema_rev, model_tag, secrets_rev}, the
embedder's model tag and (with --goldset) the probe runs per question and
seed. verify and serve compare every region with it on its own, so a region
that is down or drifted never blocks the others, and a lone region can still
be decided and its differing ids localised.

create  takes it from REGION (reachable, its health contract true), checks the
        release quality floors when --goldset is given (refusing a release
        below them unless --accept-below-floor gives the reason, which is
        recorded and signed), signs it with gate.signing_key (required) and
        keeps it in the verdict store (gate.store) with its history.
show    prints the store's newest baseline of the config's release.
export  writes it to a file (for gate.baseline, --baseline, or another store).
import  checks a baseline file (signed by gate.signing_key or one of
        gate.baseline_keys, of the config's release) and stores it.

Exit 0 done, 1 the release is below the quality floors (create), 2 anything
else (bad input, unreachable region, refused baseline).
`

func runBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, baselineHelp)
		return ExitUnknown
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
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, baselineHelp)
		return 0
	case "create", "show", "export", "import":
	default:
		fmt.Fprintf(stderr, "Error: unknown baseline command %q\n\n%s", args[0], baselineHelp)
		return ExitUnknown
	}
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
		return 0
	}
	fmt.Fprintf(w, "baseline %s of release %s, taken from %s at %s, signed by key %s\n", b.ID, b.Release, b.From, b.Created.Format(time.RFC3339), b.KeyID)
	fmt.Fprintf(w, "  INDEX_HASH   %s (%d points, %d non-empty of %d buckets)\n", b.Index.IndexHash, b.Index.Points, len(b.Index.Leaves), b.Index.Buckets)
	if b.Blobs != nil {
		fmt.Fprintf(w, "  blobs        manifest %s (%d objects, %s)\n", b.Blobs.ManifestHash, b.Blobs.Objects, termui.Bytes(b.Blobs.Bytes))
	} else {
		fmt.Fprintf(w, "  blobs        none recorded\n")
	}
	fmt.Fprintf(w, "  contract     schema_rev=%s model_tag=%s secrets_rev=%s\n", b.Contract["schema_rev"], b.Contract["model_tag"], b.Contract["secrets_rev"])
	if b.Probes != nil {
		runs := 0
		for _, q := range b.Probes.Questions {
			runs += len(q.Runs)
		}
		fmt.Fprintf(w, "  probes       %d runs of %d questions (k=%d, seeds %v, %s search) on gold set %s\n", runs, len(b.Probes.Questions), b.Probes.K, b.Probes.Seeds, b.Probes.Search, parity.ShortHex(b.Probes.Gold.Digest))
	} else {
		fmt.Fprintf(w, "  probes       none recorded (create with --goldset)\n")
	}
	if bf := b.BelowFloor; bf != nil {
		fmt.Fprintf(w, "  BELOW THE QUALITY FLOORS, accepted: %q (missed: %v)\n", bf.Reason, bf.Missed)
	}
	return 0
}
