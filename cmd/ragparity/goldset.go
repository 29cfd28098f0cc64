package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/ragparity/ragparity/goldset"
)

var goldsetHelp = help("goldset")

func runGoldset(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	verb, code, ok := pickVerb("goldset", args, []string{"validate", "sample"}, goldsetHelp, stdout, stderr)
	if !ok {
		return code
	}
	if verb == "validate" {
		return goldsetValidate(args[1:], stdout, stderr)
	}
	return goldsetSample(args[1:], stdout, stderr)
}

func goldsetValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("goldset validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if fs.NArg() != 1 {
		return fail(stderr, errors.New("goldset validate takes one PATH"))
	}
	s, err := goldset.Load(fs.Arg(0))
	if err != nil {
		return fail(stderr, err)
	}
	para, anchors := 0, 0
	for _, q := range s.Questions {
		para += len(q.Paraphrases)
		if q.Anchor != "" {
			anchors++
		}
	}
	fmt.Fprintf(stdout, "%s: valid %s gold set: %d questions, %d paraphrases, %d anchors, sha256 %s\n", s.Source, s.Format, len(s.Questions), para, anchors, s.Digest())
	return ExitEqual
}

func goldsetSample(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("goldset sample", flag.ContinueOnError)
	from := fs.String("from", "", "gold set to sample (required)")
	n := fs.Int("n", 50, "number of questions")
	seed := fs.Uint64("seed", 7, "sample seed (the same seed gives the same sample)")
	out := fs.String("out", "", "write the sample here (JSONL) instead of stdout")
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	if *from == "" {
		return fail(stderr, errors.New("goldset sample needs --from PATH"))
	}
	s, err := goldset.Load(*from)
	if err != nil {
		return fail(stderr, err)
	}
	sample, err := s.Sample(*n, *seed)
	if err != nil {
		return fail(stderr, err)
	}
	if *n > len(s.Questions) {
		fmt.Fprintf(stderr, "note: %s has %d questions, fewer than --n %d: the sample is the whole set\n", *from, len(s.Questions), *n)
	}
	if *out == "" {
		if err := sample.WriteJSONL(stdout); err != nil {
			return fail(stderr, err)
		}
		return ExitEqual
	}
	if err := sample.WriteJSONLFile(*out); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stderr, "wrote %d of %d questions (seed %d) to %s, sha256 %s\n", len(sample.Questions), len(s.Questions), *seed, *out, sample.Digest())
	return ExitEqual
}
