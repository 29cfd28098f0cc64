// Command ragparity decides whether every region's retrieval stack is a
// faithful copy of the others.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"syscall"

	_ "github.com/ragparity/ragparity/adapters/all"
	_ "github.com/ragparity/ragparity/embed/all"
)

// Exit codes shared by every command.
const (
	ExitEqual   = 0 // equal / pass
	ExitDiffer  = 1 // different / fail
	ExitUnknown = 2 // could not tell: error, timeout, bad input
)

var version = "" // set with -ldflags "-X main.version=..."

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

// The commands, a file each (an init, not a map literal: demo runs the
// CLI, so the table would refer to itself).
func init() {
	register("agent", "run a region's agent: scan next to its stores, serve signed leaves to the gate (agent keygen: a key pair)", runAgent)
	register("baseline", "make, show, export or import the signed release baseline every region is verified against", runBaseline)
	register("demo", "the whole gate on the embedded default: build, verify, drift, catch, repair, report", runDemo)
	register("dev", "development helpers: 'dev qdrant' runs the in-process Qdrant test server", runDev)
	register("diff", "list the ids and settings that differ between two regions", runDiff)
	register("fence", "claim, complete and inspect writes on a region's idempotency fence (for scripts)", runFence)
	register("goldset", "validate a gold set, or write a fixed sample of one for nightly probes", runGoldset)
	register("hash", "print each region's INDEX_HASH, settings digest, content root and point count", runHash)
	register("manifest", "print each region's blob manifest hash and object count", runManifest)
	register("merge", "combine 'hash --shard i/N --json' outputs into the whole run's INDEX_HASH", runMerge)
	register("probe", "ask every region the gold questions: ΔS drift, retrieval quality, λ on two seeds", runProbe)
	register("rebuild", "rebuild regions from source texts behind the idempotency fence", runRebuild)
	register("replicate", "copy missing or differing blobs from one region to another (replicate blobs)", runReplicate)
	register("report", "render a stored verdict as HTML (with charts), Markdown, JSON and JUnit XML", runReport)
	register("serve", "serve router admission (/v1/admit) from a verdict kept fresh on a schedule", runServe)
	register("stages", "list or drop the staged indexes rebuilds left behind", runStages)
	register("verdict", "check a verdict's signature (verdict verify), make a signing key pair (verdict keygen)", runVerdict)
	register("verify", "run every check of the failover gate and print one signed verdict", runVerify)
}

func register(name, summary string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) int) {
	commands[name] = command{summary, run}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "ragparity %s: are all regions' retrieval stacks faithful copies?\n\nUsage: ragparity COMMAND [flags]\n\nCommands:\n", versionString())
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nExit codes: 0 equal/pass, 1 different/fail, 2 could not tell (error, timeout, bad input).\nRun 'ragparity COMMAND -h' for a command's flags.\n")
}

func main() {
	// Scans allocate many short-lived buffers and the heap stays small;
	// trade a little memory for less GC work unless the user set GOGC.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// RAGPARITY_CPUPROFILE=FILE writes a CPU profile of the whole run
	// (go tool pprof FILE), for performance reports.
	stopProfile := func() {}
	if p := os.Getenv("RAGPARITY_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "Error: RAGPARITY_CPUPROFILE=%s: %v\n", p, err)
			os.Exit(ExitUnknown)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopProfile()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return ExitUnknown
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, "ragparity", versionString())
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "Error: unknown command %q\n\n", args[0])
		usage(stderr)
		return ExitUnknown
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

// fail prints an error and returns ExitUnknown.
func fail(stderr io.Writer, err error) int {
	msg := err.Error()
	if errors.Is(err, errFlags) {
		return ExitUnknown
	}
	fmt.Fprintf(stderr, "Error: %s\n", strings.TrimSpace(msg))
	return ExitUnknown
}

var errFlags = errors.New("bad flags")

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// printJSON writes v as indented JSON, the form every --json prints
// (characters such as < and > are not escaped).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// pickVerb reads the verb of a command with several (`baseline create`):
// -h prints usage on stdout (exit 0); no verb or an unknown one prints it
// on stderr (exit 2). ok is false when there is no verb to run.
func pickVerb(cmd string, args, verbs []string, usage string, stdout, stderr io.Writer) (verb string, code int, ok bool) {
	switch {
	case len(args) == 0:
		fmt.Fprint(stderr, usage)
		return "", ExitUnknown, false
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fmt.Fprint(stdout, usage)
		return "", 0, false
	case !slices.Contains(verbs, args[0]):
		fmt.Fprintf(stderr, "Error: unknown %s command %q\n\n%s", cmd, args[0], usage)
		return "", ExitUnknown, false
	}
	return args[0], 0, true
}
