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
