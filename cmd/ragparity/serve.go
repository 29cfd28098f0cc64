package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
	"github.com/ragparity/ragparity/reports"
)

func init() {
	register("serve", "serve router admission (/v1/admit) from a verdict kept fresh on a schedule", runServe)
}

// newVerifier builds the function verify and serve call to compute a
// verdict: gate.Run bound to the config. Tests replace it with a fake.
var newVerifier = func(cfg *config.Config, goldset string, signer *gate.Signer, baseline func(ctx context.Context) (*gate.Baseline, []ed25519.PublicKey, error)) (server.VerifyFunc, error) {
	return func(ctx context.Context) (*gate.Verdict, *gate.Detail, error) {
		o := gate.Options{Signer: signer, Goldset: goldset}
		if baseline != nil {
			b, keys, err := baseline(ctx)
			if err != nil {
				return nil, nil, err
			}
			o.Baseline, o.BaselineKeys = b, keys
		}
		return gate.Run(ctx, cfg, o)
	}, nil
}

const serveHelp = `Usage: ragparity serve --config FILE [--goldset PATH] [--addr 127.0.0.1:8080] [--json]
       ragparity serve --config FILE --print-nginx

Verifies the release at start (unless the verdict store holds an unexpired
verdict), every gate.schedule, and on POST /v1/verify, and answers routers
from the latest signed verdict, held in memory (no I/O per admission).

Endpoints:
  GET  /v1/admit            admission (headers below); any method, and any
                            path under /v1/admit/ (Envoy's path_prefix)
  GET  /v1/verdicts/latest  the verdict being served (signed JSON)
  GET  /v1/verdicts/{id}    one verdict of the history
  GET  /v1/verdicts         history, newest first (?limit=20&release=R)
  POST /v1/verify           verify now; needs "Authorization: Bearer TOKEN";
                            optional body {"reason": "..."} (16 KiB max, no
                            other field); ?wait=false answers 202 at once
  GET  /healthz             the process is up
  GET  /readyz              200 once a verdict is held (also when it failed
                            or expired: the server answers, refusing)
  GET  /metrics             Prometheus

Admission reads X-Region-Pin, X-Release, X-Index-Hash, X-Schema-Rev,
X-Model-Tag and the client's region (?client_region= or X-Client-Region):
  200 + X-Route-Region: PIN        the pinned region is admitted and matches
  200 + X-Route-Region: REGION     else the first admitted, matching region of
                                   gate.routing[client region] (else config
                                   order)
  503 + X-Ragparity-Reason         none (also: no verdict yet, verdict
                                   expired, verdict inconclusive)
  409 + X-Ragparity-Reason         X-Release names another release

Config (gate:): token (required unless --addr is loopback; use ${ENV}),
signing_key (env:NAME, ${NAME} or file:PATH or a path, holding a PEM PKCS#8
key or a base64 seed; never printed;
without one an ephemeral key signs, logged, and key_id says "ephemeral-"),
store (default sqlite:///<cache_dir>/verdicts.db; postgres://... lets
replicas share verdicts: each polls the store every 3 s), schedule,
verdict_ttl, routing, tls_cert + tls_key.

nginx (auth_request): nginx allows on 2xx and denies on 401/403, and turns
any other answer (our 503 and 409, or ragparity being down) into a 500.
The configuration below catches that 500 with error_page and answers 409
(release mismatch) or 421 Misdirected Request (no admitted region), so no
5xx of the gate reaches a client; 'serve --print-nginx' prints it for the
config's regions. It is the configuration the end-to-end test runs.

Envoy (ext_authz, http_service): 200 allows and non-200 denies with our
status and headers; set path_prefix: /v1/admit, allowed_headers for the
X-* request headers above, allowed_upstream_headers: X-Route-Region, and
route on that header; refusals reach the client as 503/409 unless a local
reply mapper rewrites them.

`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var gf gateFlags
	gf.add(fs)
	fs.Lookup("json").Usage = "log JSON lines on stderr (default: text)"
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	printNginx := fs.Bool("print-nginx", false, "print an nginx auth_request configuration for the config's regions and exit")
	verifyNice := fs.Int("verify-nice", 19, "run each verification in a child process (ragparity verify) whose nice value is this much above serve's, so admission keeps the CPU while it runs (it gets what admission leaves); 0 runs it in process")
	fs.Usage = func() {
		fmt.Fprint(stderr, serveHelp)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	cfg, err := gf.load()
	if err != nil {
		return fail(stderr, err)
	}
	if err := gf.checkReport(); err != nil {
		return fail(stderr, err)
	}
	if *printNginx {
		c := server.NginxConfig{Listen: "80", Ragparity: *addr, Refused: "127.0.0.1:8099"}
		for _, r := range cfg.Regions {
			c.Regions = append(c.Regions, server.NginxRegion{Name: r.Name, Addr: r.Name + ".example.internal:8000", Comment: "set region " + r.Name + "'s address"})
		}
		out, err := server.RenderNginx(c)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprint(stdout, out)
		return 0
	}
	log := newLogger(stderr, gf.json)
	if err := server.CheckExposure(*addr, cfg.Gate.Token); err != nil {
		return fail(stderr, err)
	}
	if cfg.Gate.Token == "" {
		log.Warn("no gate.token: POST /v1/verify is open to anyone who can reach the loopback address", "addr", *addr)
	}
	if (cfg.Gate.TLSCert == "") != (cfg.Gate.TLSKey == "") {
		return fail(stderr, errors.New("gate.tls_cert and gate.tls_key go together"))
	}
	signer, err := gate.LoadSigner(cfg.Gate.SigningKey)
	if err != nil {
		return fail(stderr, err)
	}
	// A verdict read from the store is served only if this replica's key
	// signed it: with an ephemeral key that means its own verdicts only
	// (fail closed), so replicas that share a store need gate.signing_key.
	trusted := signer.Public()
	if signer.Ephemeral {
		pem, _ := gate.MarshalPublicKeyPEM(signer.Public())
		log.Warn("no gate.signing_key: signing verdicts with an ephemeral key; verdicts other replicas stored cannot be checked and are ignored",
			"key_id", signer.KeyID(), "public_key", strings.TrimSpace(string(pem)))
	} else {
		log.Info("signing verdicts", "key_id", signer.KeyID())
	}
	if cfg.Gate.Schedule == 0 {
		log.Warn("gate.schedule is 0: verifying only at start and on POST /v1/verify; the verdict stops admitting after gate.verdict_ttl", "verdict_ttl", cfg.Gate.VerdictTTL)
	} else if cfg.Gate.Schedule >= cfg.Gate.VerdictTTL {
		log.Warn("gate.schedule is not shorter than gate.verdict_ttl: verdicts will expire between verifications", "schedule", cfg.Gate.Schedule, "verdict_ttl", cfg.Gate.VerdictTTL)
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, err := server.OpenStore(octx, cfg.Gate.Store, cfg.CacheRoot())
	cancel()
	if err != nil {
		return fail(stderr, err)
	}
	defer store.Close()
	resolve := baselineResolver(cfg, gf.baseline, store, signer)
	// The inputs this replica verifies over: a stored verdict computed over
	// others (a changed config, baseline or gold set) is never served.
	octx, cancel = context.WithTimeout(ctx, 30*time.Second)
	baseline, _, err := resolve(octx)
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
	verify, err := newVerifier(cfg, gf.goldset, signer, resolve)
	if err != nil {
		return fail(stderr, err)
	}
	if *verifyNice < 0 || *verifyNice > 19 {
		return fail(stderr, fmt.Errorf("--verify-nice %d: want 0 (in process) to 19", *verifyNice))
	}
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
		Verify: verify, Store: store, Signer: signer, TrustedKey: trusted,
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
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(stderr, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Equal to ReadHeaderTimeout: net/http then sets one read
		// deadline per request instead of two.
		ReadTimeout:    10 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 32 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	runDone := make(chan struct{})
	go func() { srv.Run(ctx); close(runDone) }()
	serveErr := make(chan error, 1)
	scheme := "http"
	go func() {
		if cfg.Gate.TLSCert != "" {
			serveErr <- hs.ServeTLS(ln, cfg.Gate.TLSCert, cfg.Gate.TLSKey)
		} else {
			serveErr <- hs.Serve(ln)
		}
	}()
	if cfg.Gate.TLSCert != "" {
		scheme = "https"
	}
	log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "release", cfg.Release, "store", fmt.Sprint(store))
	code := 0
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "Error: %v\n", err)
			code = ExitUnknown
		}
	}
	stop()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	hs.Shutdown(sctx)
	<-runDone
	log.Info("stopped")
	return code
}

// newLogger writes text logs, or JSON with --json.
func newLogger(w io.Writer, asJSON bool) *slog.Logger {
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
