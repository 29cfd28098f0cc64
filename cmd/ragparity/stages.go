package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/replicate"
)

func runStages(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	usage := "Usage: ragparity stages list|drop --config FILE [--region R1,R2] [--run-id ID] [--json]\n\n" +
		"list shows every region's staged indexes: the rebuild run they belong to,\n" +
		"their age, point count and whether they are promotable (a rebuild found\n" +
		"them to hold exactly what their source says, and they have not changed\n" +
		"since). drop removes the stage of --run-id, or without it every stage of\n" +
		"the selected regions; a region being rebuilt right now is left alone\n" +
		"(exit 2). Exit 0 on success, 2 on error.\n\n"
	verb, code, ok := pickVerb("stages", args, []string{"list", "drop"}, usage, stdout, stderr)
	if !ok {
		return code
	}
	fs := flag.NewFlagSet("stages "+verb, flag.ContinueOnError)
	var cf commonFlags
	cf.add(fs)
	var regions listFlag
	fs.Var(&regions, "region", "regions (comma-separated; default: every region with a vectors URL)")
	runID := fs.String("run-id", "", "the rebuild run whose stage to drop (default: every stage)")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return flagExit(err)
	}
	cfg, err := cf.load()
	if err != nil {
		return fail(stderr, err)
	}
	if cf.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cf.timeout)
		defer cancel()
	}
	ts, closeAll, err := gate.Targets(ctx, cfg, regions)
	defer closeAll()
	if err != nil {
		return fail(stderr, err)
	}
	list, err := replicate.ListStages(ctx, ts)
	if err != nil {
		return fail(stderr, err)
	}
	if verb == "list" {
		if cf.json {
			printJSON(stdout, list)
			return ExitEqual
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "no stages")
		}
		for _, s := range list {
			age := "unknown"
			if !s.Created.IsZero() {
				age = (time.Duration(s.AgeSec) * time.Second).String()
			}
			state := "promotable"
			if !s.Promotable {
				state = "not promotable: " + s.Why
			}
			fmt.Fprintf(stdout, "%s\t%s\t%d points\tage %s\t%s\n", s.Region, s.RunID, s.Points, age, state)
		}
		return ExitEqual
	}
	dropped, err := replicate.DropStages(ctx, ts, list, *runID)
	if cf.json {
		printJSON(stdout, map[string]any{"dropped": dropped})
	} else {
		for _, s := range dropped {
			fmt.Fprintf(stdout, "dropped %s\t%s\t%d points\n", s.Region, s.RunID, s.Points)
		}
	}
	if err != nil {
		return fail(stderr, err)
	}
	return ExitEqual
}
