package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
)

// benchAdmitServer serves, for scripts/bench-admit.sh under wrk:
//
//	--mode admit  ragparity's API (the server.Server handler, with the
//	              http.Server settings and GC percent of 'ragparity
//	              serve') answering /v1/admit from a fixed signed verdict;
//	--mode bare   a net/http handler that only returns 200;
//	--mode bare-header  the same plus an X-Route-Region header.
//
// It prints its address on stdout and serves until SIGTERM/SIGINT.
func benchAdmitServer(args []string) error {
	fs := flag.NewFlagSet("admit-server", flag.ExitOnError)
	mode := fs.String("mode", "admit", "admit, bare or bare-header")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	timeouts := fs.Bool("serve-timeouts", true, "admit: set the read/idle timeouts 'ragparity serve' sets")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.Parse(args)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	var h http.Handler
	hs := &http.Server{}
	switch *mode {
	case "bare":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	case "bare-header":
		// The bare handler plus the one header a 200 from /v1/admit carries:
		// what net/http itself charges for it.
		rh := []string{"eu-central"}
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header()["X-Route-Region"] = rh
			w.WriteHeader(http.StatusOK)
		})
	case "admit":
		srv, err := fixedVerdictServer()
		if err != nil {
			return err
		}
		h = srv.Handler()
		// As cmd/ragparity's main sets it.
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(400)
		}
		if !*timeouts {
			break
		}
		// As 'ragparity serve' sets them.
		hs.ReadHeaderTimeout = 10 * time.Second
		hs.ReadTimeout = 10 * time.Second
		hs.IdleTimeout = 2 * time.Minute
		hs.MaxHeaderBytes = 32 << 10
	default:
		return fmt.Errorf("--mode %q: want admit, bare or bare-header", *mode)
	}
	hs.Handler = h
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// fixedVerdictServer is a gate server holding one signed verdict: regions
// eu-west (blocked: index drifted) and us-east, eu-central (admitted).
func fixedVerdictServer() (*server.Server, error) {
	signer, err := gate.LoadSigner("")
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	v := &gate.Verdict{
		ID: "vbench", Release: "r-bench", CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), Decision: gate.Fail,
		InputsDigest: "bench",
		Regions: []gate.RegionVerdict{
			{Name: "eu-west", IndexHash: "h2", SchemaRev: "s1", ModelTag: "m1", Reasons: []string{"failed index_hash"}},
			{Name: "eu-central", Admit: true, IndexHash: "h1", SchemaRev: "s1", ModelTag: "m1"},
			{Name: "us-east", Admit: true, IndexHash: "h1", SchemaRev: "s1", ModelTag: "m1"},
		},
		Checks: []gate.Check{{Name: "index_hash", Status: gate.Fail, Evidence: []string{}, FailedRegions: []string{"eu-west"}}},
	}
	if err := signer.Sign(v); err != nil {
		return nil, err
	}
	if err := v.Verify(signer.Public()); err != nil {
		return nil, err
	}
	srv, err := server.NewServer(server.ServerOptions{
		Verify:  func(ctx context.Context) (*gate.Verdict, *gate.Detail, error) { return v, nil, nil },
		Release: v.Release, Token: "bench",
		Routing: map[string][]string{"eu": {"eu-west", "eu-central", "us-east"}},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, err
	}
	srv.Install(v, "local")
	return srv, nil
}
