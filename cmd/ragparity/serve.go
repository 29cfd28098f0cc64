package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
	"github.com/ragparity/ragparity/reports"
)

// newVerifier builds the function verify and serve call to compute a
// verdict: gate.Run bound to the config. Tests replace it with a fake.
var newVerifier = server.NewVerifier

var serveHelp = help("serve")

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var gf gateFlags
	gf.add(fs)
	fs.Lookup("json").Usage = "log JSON lines on stderr (default: text)"
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	grpcAddr := fs.String("grpc-addr", "", "also serve Envoy's gRPC ext_authz (Authorization/Check) on this address (default gate.grpc_addr; off when both are empty)")
	fenceAPI := fs.Bool("fence-api", false, "also serve the idempotency fence to the application's writers: POST /v1/fence/claim, /done, /release, GET /v1/fence/status (bearer gate.token; every region's dedupe_kv must be redis://)")
	prints := map[string]*bool{}
	for kind, usage := range map[string]string{
		"nginx":   "print an nginx auth_request configuration for the config's regions and exit",
		"envoy":   "print an Envoy bootstrap with the gRPC ext_authz filter asking --grpc-addr (default 127.0.0.1:9001) and exit",
		"k8s":     "print Kubernetes manifests (serve's Deployment and Service; per region a readiness probe on /v1/regions/NAME/ready) and exit",
		"argo":    "print an Argo Rollouts AnalysisTemplate reading /v1/verdicts/latest and exit",
		"caddy":   "print a Caddyfile (forward_auth to /v1/admit, routing on X-Route-Region) and exit",
		"haproxy": "print an HAProxy configuration (a health check per region on /v1/regions/NAME/ready) and exit",
	} {
		prints[kind] = fs.Bool("print-"+kind, false, usage)
	}
	verifyNice := fs.Int("verify-nice", 19, "run each verification in a child process (ragparity verify) whose nice value is this much above serve's, so admission keeps the CPU while it runs (it gets what admission leaves); 0 runs it in process")
	fs.Usage = func() {
		fmt.Fprint(stderr, serveHelp)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	var printKind []string
	for _, kind := range server.RouterKinds {
		if *prints[kind] {
			printKind = append(printKind, kind)
		}
	}
	if len(printKind) > 1 {
		slices.Sort(printKind)
		fmt.Fprintf(stderr, "Error: --print-%s: print one configuration at a time\n", strings.Join(printKind, ", --print-"))
		return ExitUnknown
	}
	cfg, err := gf.load()
	if err != nil {
		return fail(stderr, err)
	}
	if err := gf.checkReport(); err != nil {
		return fail(stderr, err)
	}
	if *grpcAddr == "" {
		*grpcAddr = cfg.Gate.GRPCAddr
	}
	if *grpcAddr != "" && (len(printKind) == 0 || printKind[0] == "envoy") {
		if _, _, err := net.SplitHostPort(*grpcAddr); err != nil {
			return fail(stderr, fmt.Errorf("--grpc-addr / gate.grpc_addr %q: %w", *grpcAddr, err))
		}
	}
	if len(printKind) == 1 {
		out, err := server.PrintRouter(printKind[0], cfg, server.PrintOptions{Addr: *addr, GRPCAddr: *grpcAddr, Version: versionString()})
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprint(stdout, out)
		return 0
	}
	if *verifyNice < 0 || *verifyNice > 19 {
		return fail(stderr, fmt.Errorf("--verify-nice %d: want 0 (in process) to 19", *verifyNice))
	}
	log := newLogger(stderr, gf.json)
	signer, err := gate.LoadSigner(cfg.Gate.SigningKey)
	if err != nil {
		return fail(stderr, err)
	}
	if err := server.Preflight(cfg, *addr, signer, log); err != nil {
		return fail(stderr, err)
	}
	store, err := server.OpenConfigStore(ctx, cfg)
	if err != nil {
		return fail(stderr, err)
	}
	defer store.Close()
	// The inputs this replica verifies over: a stored verdict computed over
	// others (a changed config, baseline or gold set) is never served.
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	baseline, _, err := server.ResolveBaseline(octx, cfg, gf.baseline, store, signer)
	cancel()
	if err != nil {
		return fail(stderr, err)
	}
	inputs, err := gate.InputsDigest(cfg, baseline, gf.goldset)
	if err != nil {
		return fail(stderr, err)
	}
	if baseline != nil {
		log.Info("verifying against the release baseline", "baseline", baseline.ID, "from", baseline.From)
	} else {
		log.Warn("no release baseline: regions are compared with their agreeing majority; with two regions one that is down leaves the other undecided (ragparity baseline create)")
	}
	verify := newVerifier(cfg, gf.goldset, gf.baseline, store, signer)
	if *verifyNice > 0 {
		exe, err := os.Executable()
		if err != nil {
			return fail(stderr, fmt.Errorf("--verify-nice: %w (pass --verify-nice 0 to verify in process)", err))
		}
		args := []string{"verify", "--config", gf.config, "--child-result"}
		if gf.goldset != "" {
			args = append(args, "--goldset", gf.goldset)
		}
		if gf.baseline != "" {
			args = append(args, "--baseline", gf.baseline)
		}
		if gf.timeout != 0 {
			args = append(args, "--timeout", gf.timeout.String())
		}
		verify = server.ChildVerifier(exe, args, *verifyNice, stderr)
		log.Info("verifying in a child process at lower CPU priority", "nice", *verifyNice)
	}
	srv, err := server.NewServer(server.ServerOptions{
		// A verdict read from the store is served only if this replica's
		// key signed it: with an ephemeral key its own verdicts only (fail
		// closed), so replicas that share a store need gate.signing_key.
		Verify: verify, Store: store, Signer: signer, TrustedKey: signer.Public(),
		Token: cfg.Gate.Token, Release: cfg.Release, Routing: cfg.Gate.Routing, Inputs: inputs,
		Schedule: cfg.Gate.Schedule, Logger: log,
		Published: func(v *gate.Verdict, det *gate.Detail) {
			if gf.report == "" {
				return
			}
			if err := reports.WriteFile(gf.report, reports.NewModel(v, det)); err != nil {
				log.Error("writing the report", "path", gf.report, "err", err)
				return
			}
			log.Info("report written", "path", gf.report, "id", v.ID)
		},
	})
	if err != nil {
		return fail(stderr, err)
	}
	lo := server.ListenOptions{Addr: *addr, GRPCAddr: *grpcAddr, TLSCert: cfg.Gate.TLSCert, TLSKey: cfg.Gate.TLSKey, Logger: log,
		Ready: func(url string) {
			log.Info("serving", "url", url, "release", cfg.Release, "store", fmt.Sprint(store))
		}}
	if *fenceAPI {
		fh, closeFences, err := server.FenceHandler(cfg, log)
		if err != nil {
			return fail(stderr, err)
		}
		defer closeFences()
		lo.Fence = fh
	}
	if err := server.ListenAndServe(ctx, srv, lo); err != nil {
		return fail(stderr, err)
	}
	log.Info("stopped")
	return 0
}

// newLogger writes text logs, or JSON with --json.
func newLogger(w io.Writer, asJSON bool) *slog.Logger {
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
