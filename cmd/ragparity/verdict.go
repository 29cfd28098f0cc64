package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ragparity/ragparity/gate"
)

var verdictHelp = help("verdict")

func runVerdict(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	verb, code, ok := pickVerb("verdict", args, []string{"verify", "keygen"}, verdictHelp, stdout, stderr)
	if !ok {
		return code
	}
	if verb == "verify" {
		return runVerdictVerify(args[1:], stdout, stderr)
	}
	return runVerdictKeygen(args[1:], stdout, stderr)
}

func parseInterspersed(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, error) {
	fs.SetOutput(stderr)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, flag.ErrHelp
			}
			return nil, errFlags
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func runVerdictVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verdict verify", flag.ContinueOnError)
	keyPath := fs.String("key", "", "public key file (PEM PKIX, PEM private key, or base64 raw)")
	allowExpired := fs.Bool("allow-expired", false, "exit 0 for a valid verdict that has expired (audits)")
	fs.Usage = func() { fmt.Fprint(stderr, verdictHelp); fs.PrintDefaults() }
	pos, err := parseInterspersed(fs, args, stderr)
	if err != nil {
		return flagExit(err)
	}
	if len(pos) != 1 || *keyPath == "" {
		fmt.Fprint(stderr, "Error: want one FILE and --key PUB\n\n")
		fs.Usage()
		return ExitUnknown
	}
	kb, err := os.ReadFile(*keyPath)
	if err != nil {
		return fail(stderr, err)
	}
	pub, err := gate.ParsePublicKey(kb)
	if err != nil {
		return fail(stderr, fmt.Errorf("%s: %w", *keyPath, err))
	}
	var vb []byte
	if pos[0] == "-" {
		vb, err = io.ReadAll(io.LimitReader(os.Stdin, 64<<20))
	} else {
		vb, err = os.ReadFile(pos[0])
	}
	if err != nil {
		return fail(stderr, err)
	}
	v, err := gate.DecodeVerdict(vb)
	if errors.Is(err, gate.ErrAmbiguousJSON) {
		fmt.Fprintf(stderr, "INVALID: %s: %v\n", pos[0], err)
		return ExitDiffer
	}
	if err != nil {
		return fail(stderr, fmt.Errorf("%s: not a verdict: %w", pos[0], err))
	}
	if err := v.Verify(pub); err != nil {
		fmt.Fprintf(stderr, "INVALID: %s: %v\n", pos[0], err)
		return ExitDiffer
	}
	if now := time.Now(); v.Expired(now) {
		fmt.Fprintf(stdout, "valid but expired: verdict %s for release %s: %s, signed by key %s; expired at %s (no longer admits traffic)\n",
			v.ID, v.Release, strings.ToUpper(string(v.Decision)), v.KeyID, v.ExpiresAt.Format(time.RFC3339))
		if !*allowExpired {
			return ExitDiffer
		}
		return ExitEqual
	}
	fmt.Fprintf(stdout, "valid: verdict %s for release %s: %s, signed by key %s\n", v.ID, v.Release, strings.ToUpper(string(v.Decision)), v.KeyID)
	return ExitEqual
}

func runVerdictKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verdict keygen", flag.ContinueOnError)
	out := fs.String("out", "", "folder for verdict-signing.key and verdict-signing.pub (created 0700 if missing)")
	fs.Usage = func() { fmt.Fprint(stderr, verdictHelp); fs.PrintDefaults() }
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	if *out == "" {
		fmt.Fprint(stderr, "Error: --out DIR is required\n")
		return ExitUnknown
	}
	priv, pub, pk, err := gate.WriteKeyPair(*out)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "private key %s (mode 0600): set gate.signing_key: %s\npublic key  %s: ragparity verdict verify FILE --key %s\nkey id      %s\n",
		priv, priv, pub, pub, gate.KeyID(pk))
	return 0
}
