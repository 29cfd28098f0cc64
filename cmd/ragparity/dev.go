package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
)

var devHelp = help("dev")

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if _, code, ok := pickVerb("dev", args, []string{"qdrant"}, devHelp, stdout, stderr); !ok {
		return code
	}
	fs := flag.NewFlagSet("dev qdrant", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(stderr, devHelp); fs.PrintDefaults() }
	addr := fs.String("addr", "127.0.0.1:6334", "listen address (gRPC)")
	apiKey := fs.String("api-key", "", "require this api-key header, as Qdrant's service.api_key does")
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return flagExit(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(stderr, fmt.Errorf("dev qdrant: %w", err))
	}
	srv := qdranttest.New()
	srv.APIKey = *apiKey
	fmt.Fprintf(stdout, "in-process Qdrant TEST server (in memory, not for production) on %s\nuse qdrant://%s/COLLECTION in a config; Ctrl-C stops it\n", ln.Addr(), ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		srv.Stop()
		<-done
		return 0
	case err := <-done:
		if err != nil {
			return fail(stderr, fmt.Errorf("dev qdrant: %w", err))
		}
		return 0
	}
}
