package main

import (
	"context"
	"flag"
	"io"

	"github.com/ragparity/ragparity/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var o demo.Options
	fs.BoolVar(&o.Keep, "keep", false, "keep the demo's working folder (regions, caches) as well as the report")
	fs.BoolVar(&o.Verbose, "v", false, "print every command's full output")
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	if err := demo.Run(ctx, run, o, stdout); err != nil {
		return fail(stderr, err)
	}
	return ExitEqual
}
