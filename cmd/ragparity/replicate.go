package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/replicate"
)

func runReplicate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if _, code, ok := pickVerb("replicate", args, []string{"blobs"}, "Usage: ragparity replicate blobs --config FILE --from R1 --to R2 [--delete [--allow-empty-source]] [--json]\n", stdout, stderr); !ok {
		return code
	}
	fs := flag.NewFlagSet("replicate blobs", flag.ContinueOnError)
	var cf commonFlags
	cf.add(fs)
	from := fs.String("from", "", "source region (required)")
	to := fs.String("to", "", "target region (required)")
	del := fs.Bool("delete", false, "also delete keys the target has and the source does not")
	allowEmpty := fs.Bool("allow-empty-source", false, "with --delete, run even when the source lists no object (empties the target)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: ragparity replicate blobs --config FILE --from R1 --to R2 [--delete [--allow-empty-source]] [--json]\n\nCopies every object missing from R2 or whose content (sha256) differs from R1's,\nchecks each copy's sha256, then hashes both sides again. Never deletes unless\n--delete; refuses regions whose stores overlap (one prefix or folder inside\nthe other) and --delete with an empty source unless --allow-empty-source;\nnever follows a symbolic link inside a file:// target. Exit 0 when R2 equals\nR1 afterwards, 1 when R2 still holds extra objects (no --delete), 2 on error.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return flagExit(err)
	}
	if *from == "" || *to == "" || *from == *to {
		return fail(stderr, errors.New("replicate blobs needs --from and --to naming two different regions"))
	}
	cfg, err := cf.load()
	if err != nil {
		return fail(stderr, err)
	}
	res, err := gate.CopyBlobs(ctx, cfg, *from, *to, replicate.CopyOptions{Delete: *del, AllowEmptySource: *allowEmpty})
	if err != nil {
		return fail(stderr, err)
	}
	if cf.json {
		printJSON(stdout, res)
	} else {
		if res.Equal {
			fmt.Fprintf(stdout, "replicate blobs %s -> %s: copied %d objects (%d bytes), deleted %d; verified equal\n", res.From, res.To, len(res.Copied), res.Bytes, len(res.Deleted))
		} else {
			fmt.Fprintf(stdout, "replicate blobs %s -> %s: copied %d; target still has %d extra objects (pass --delete)\n", res.From, res.To, len(res.Copied), len(res.Extra))
		}
		for _, k := range res.Copied {
			fmt.Fprintf(stdout, "  copied %s\n", k)
		}
		for _, k := range res.Deleted {
			fmt.Fprintf(stdout, "  deleted %s\n", k)
		}
		for _, k := range res.Extra {
			fmt.Fprintf(stdout, "  extra %s\n", k)
		}
	}
	if !res.Equal {
		return ExitDiffer
	}
	return ExitEqual
}
