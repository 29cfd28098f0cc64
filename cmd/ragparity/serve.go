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
	"slices"
	"strings"
	"time"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
	"github.com/ragparity/ragparity/reports"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
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
       ragparity serve --config FILE --print-nginx|--print-haproxy|--print-caddy|--print-envoy
       ragparity serve --config FILE --print-k8s|--print-argo

Verifies the release at start (unless the verdict store holds an unexpired
verdict), every gate.schedule, and on POST /v1/verify, and answers routers
from the latest signed verdict, held in memory (no I/O per admission).

Endpoints:
  GET  /v1/regions/{name}/ready  200 when the region is admitted, 503 + reason
                            (load-balancer health checks)
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
  POST /v1/fence/claim, /v1/fence/done, /v1/fence/release, GET /v1/fence/status
                            with --fence-api: the idempotency fence for the
                            application's writers (bearer gate.token)

Admission reads X-Region-Pin, X-Release, X-Index-Hash (the hash, or a
unique prefix of at least 12 hex digits), X-Schema-Rev, X-Model-Tag,
X-Ragparity-Fallback and the client's region (?client_region= or
X-Client-Region):
  200 + X-Route-Region: PIN        the pinned region is admitted and matches
  200 + X-Route-Region: REGION     else the first admitted, matching region of
                                   gate.routing[client region] (else config
                                   order); for a pinned request only with
                                   X-Ragparity-Fallback: route (the router
                                   routes on X-Route-Region)
  421 + X-Route-Region: REGION     a pinned request without that header: the
                                   pin is not admitted, REGION is
  503 + X-Ragparity-Reason         none (also: no verdict yet, verdict
                                   expired, verdict inconclusive)
  409 + X-Ragparity-Reason         X-Release names another release
  400 + X-Ragparity-Reason         X-Ragparity-Fallback other than "route", or
                                   an X-Index-Hash prefix of several hashes

Config (gate:): token (required unless --addr is loopback; use ${ENV}),
signing_key (env:NAME, ${NAME} or file:PATH or a path, holding a PEM PKCS#8
key or a base64 seed; never printed;
without one an ephemeral key signs, logged, and key_id says "ephemeral-"),
store (default sqlite:///<cache_dir>/verdicts.db; postgres://... lets
replicas share verdicts: each polls the store every 3 s), schedule,
verdict_ttl, routing, tls_cert + tls_key (also for --grpc-addr), grpc_addr.

Routers (README "Routers"; each --print-* flag prints a configuration for
the config's regions and exits; region addresses are placeholders):
  --print-nginx    nginx auth_request to /v1/admit; refusals become 409/400/421
  --print-haproxy  HAProxy: a backend per region, option httpchk
                   GET /v1/regions/NAME/ready against ragparity
  --print-caddy    Caddy forward_auth to /v1/admit, copy_headers X-Route-Region
  --print-envoy    Envoy gRPC ext_authz against --grpc-addr (Istio: the same
                   service as an envoyExtAuthzGrpc extension provider)
  --print-k8s      serve's Deployment and Service, nightly verify CronJob,
                   sharded hash Indexed Job and merge Job; per region a
                   readiness probe on /v1/regions/NAME/ready
  --print-argo     Argo Rollouts AnalysisTemplate on /v1/verdicts/latest
                   (degraded and inconclusive leave the analysis Inconclusive)
The printed nginx, Caddy and Envoy configs send X-Ragparity-Fallback: route.

--grpc-addr (or gate.grpc_addr) also serves envoy.service.auth.v3.
Authorization/Check: the same rules as /v1/admit; OK adds x-route-region
upstream, DENIED carries the status /v1/admit would answer and the reason.
`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var gf gateFlags
	gf.add(fs)
	fs.Lookup("json").Usage = "log JSON lines on stderr (default: text)"
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	grpcAddr := fs.String("grpc-addr", "", "also serve Envoy's gRPC ext_authz (Authorization/Check) on this address (default gate.grpc_addr; off when both are empty)")
	printNginx := fs.Bool("print-nginx", false, "print an nginx auth_request configuration for the config's regions and exit")
	fenceAPI := fs.Bool("fence-api", false, "also serve the idempotency fence to the application's writers: POST /v1/fence/claim, /done, /release, GET /v1/fence/status (bearer gate.token; every region's dedupe_kv must be redis://)")
	printEnvoy := fs.Bool("print-envoy", false, "print an Envoy bootstrap with the gRPC ext_authz filter asking --grpc-addr (default 127.0.0.1:9001) and exit")
	printK8s := fs.Bool("print-k8s", false, "print Kubernetes manifests (serve's Deployment and Service; per region a readiness probe on /v1/regions/NAME/ready) and exit")
	printArgo := fs.Bool("print-argo", false, "print an Argo Rollouts AnalysisTemplate reading /v1/verdicts/latest and exit")
	printCaddy := fs.Bool("print-caddy", false, "print a Caddyfile (forward_auth to /v1/admit, routing on X-Route-Region) and exit")
	printHAProxy := fs.Bool("print-haproxy", false, "print an HAProxy configuration (a health check per region on /v1/regions/NAME/ready) and exit")
	verifyNice := fs.Int("verify-nice", 19, "run each verification in a child process (ragparity verify) whose nice value is this much above serve's, so admission keeps the CPU while it runs (it gets what admission leaves); 0 runs it in process")
	fs.Usage = func() {
		fmt.Fprint(stderr, serveHelp)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	var prints []string
	for name, on := range map[string]bool{"nginx": *printNginx, "haproxy": *printHAProxy, "caddy": *printCaddy, "envoy": *printEnvoy, "k8s": *printK8s, "argo": *printArgo} {
		if on {
			prints = append(prints, "--print-"+name)
		}
	}
	if len(prints) > 1 {
		slices.Sort(prints)
		fmt.Fprintf(stderr, "Error: %s: print one configuration at a time\n", strings.Join(prints, ", "))
		return ExitUnknown
	}
	cfg, err := gf.load()
	if err != nil {
		return fail(stderr, err)
	}
	if err := gf.checkReport(); err != nil {
		return fail(stderr, err)
	}
	// Printed router configs name each region's upstream by a placeholder.
	placeholder := func(region string) (addr, comment string) {
		return region + ".example.internal:8000", "set region " + region + "'s address"
	}
	printed := func(out string, err error) int {
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprint(stdout, out)
		return 0
	}
	if *printNginx {
		c := server.NginxConfig{Listen: "80", Ragparity: *addr, Refused: "127.0.0.1:8099"}
		for _, r := range cfg.Regions {
			a, cm := placeholder(r.Name)
			c.Regions = append(c.Regions, server.NginxRegion{Name: r.Name, Addr: a, Comment: cm})
		}
		return printed(server.RenderNginx(c))
	}
	if *printHAProxy {
		c := server.HAProxyConfig{Listen: ":80", Ragparity: *addr}
		for _, r := range cfg.Regions {
			a, cm := placeholder(r.Name)
			c.Regions = append(c.Regions, server.HAProxyRegion{Name: r.Name, Addr: a, Comment: cm})
		}
		return printed(server.RenderHAProxy(c))
	}
	if *printCaddy {
		c := server.CaddyConfig{Site: ":80", Ragparity: *addr}
		for _, r := range cfg.Regions {
			a, cm := placeholder(r.Name)
			c.Regions = append(c.Regions, server.CaddyRegion{Name: r.Name, Addr: a, Comment: cm})
		}
		return printed(server.RenderCaddy(c))
	}
	if *grpcAddr == "" {
		*grpcAddr = cfg.Gate.GRPCAddr
	}
	if *grpcAddr != "" {
		if _, _, err := net.SplitHostPort(*grpcAddr); err != nil {
			return fail(stderr, fmt.Errorf("--grpc-addr / gate.grpc_addr %q: %w", *grpcAddr, err))
		}
	}
	if *printEnvoy {
		authz := *grpcAddr
		if authz == "" {
			authz = "127.0.0.1:9001"
		}
		c := server.EnvoyConfig{Listen: "0.0.0.0:10000", Authz: authz}
		for _, r := range cfg.Regions {
			a, cm := placeholder(r.Name)
			c.Regions = append(c.Regions, server.EnvoyRegion{Name: r.Name, Addr: a, Comment: cm})
		}
		return printed(server.RenderEnvoy(c))
	}
	if *printK8s || *printArgo {
		_, port, err := net.SplitHostPort(*addr)
		if err != nil {
			return fail(stderr, fmt.Errorf("--addr %q: %w", *addr, err))
		}
		tag := versionString()
		if strings.Trim(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" || tag == "devel" {
			tag = "latest" // a development build has no image tag of its own
		}
		c := server.KubeConfig{Image: "ragparity/ragparity:" + tag, Port: port, Host: "RAGPARITY_CLUSTER_IP",
			URL: "http://ragparity.default.svc.cluster.local:" + port}
		for _, r := range cfg.Regions {
			c.Regions = append(c.Regions, r.Name)
		}
		render := server.RenderKube
		if *printArgo {
			render = server.RenderArgo
		}
		return printed(render(c))
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
	handler := srv.Handler()
	if *fenceAPI {
		fh, closeFences, err := fenceHandler(cfg, log)
		if err != nil {
			return fail(stderr, err)
		}
		defer closeFences()
		mux := http.NewServeMux()
		mux.Handle("/v1/fence/", fh)
		mux.Handle("/", handler)
		handler = mux
		log.Info("serving the fence API", "path", "/v1/fence/")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(stderr, err)
	}
	var gs *grpc.Server
	if *grpcAddr != "" {
		var opts []grpc.ServerOption
		if cfg.Gate.TLSCert != "" {
			creds, err := credentials.NewServerTLSFromFile(cfg.Gate.TLSCert, cfg.Gate.TLSKey)
			if err != nil {
				ln.Close()
				return fail(stderr, fmt.Errorf("gRPC TLS: %w", err))
			}
			opts = append(opts, grpc.Creds(creds))
		}
		gln, err := net.Listen("tcp", *grpcAddr)
		if err != nil {
			ln.Close()
			return fail(stderr, fmt.Errorf("--grpc-addr: %w", err))
		}
		gs = grpc.NewServer(opts...)
		srv.RegisterAuthorization(gs)
		go gs.Serve(gln)
		log.Info("serving Envoy ext_authz (gRPC)", "addr", gln.Addr().String(), "tls", cfg.Gate.TLSCert != "")
	}
	hs := &http.Server{
		Handler:           handler,
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
	if gs != nil {
		gs.GracefulStop()
	}
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

// fenceHandler is the fence HTTP API on every region's dedupe_kv. The
// bbolt fallback can be open in one process only (serve holding it would
// block rebuilds), so every region needs a Redis dedupe_kv.
func fenceHandler(cfg *config.Config, log *slog.Logger) (http.Handler, func(), error) {
	if cfg.Gate.Token == "" {
		return nil, nil, fmt.Errorf("%s: --fence-api needs gate.token (writers authenticate with it)", cfg.File)
	}
	writers := map[string]*fence.Writer{}
	var opened []fence.Fence
	closeAll := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	for _, r := range cfg.Regions {
		if !strings.HasPrefix(r.DedupeKV, "redis://") && !strings.HasPrefix(r.DedupeKV, "rediss://") {
			closeAll()
			return nil, nil, fmt.Errorf("%s: region %s: --fence-api needs a redis:// dedupe_kv (a bbolt file can be open in one process only)", cfg.File, r.Name)
		}
		f, err := fence.Open(r.DedupeKV, "")
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("region %s: %w", r.Name, err)
		}
		opened = append(opened, f)
		win := cfg.Fence.FailoverWindow
		if win <= 0 {
			win = fence.DefaultWindow
		}
		w, err := fence.NewWriter(f, fence.WriterOptions{Region: r.Name, Owner: "serve", Lease: cfg.Fence.Lease,
			TTL: win + 24*time.Hour, Window: win})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		writers[r.Name] = w
	}
	h, err := fence.NewHTTPHandler(fence.HTTPOptions{Writers: writers, Token: cfg.Gate.Token, Logger: log.WithGroup("fence")})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return h, closeAll, nil
}
