package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/gate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// ListenOptions say where a Server answers.
type ListenOptions struct {
	// Addr is the HTTP listen address.
	Addr string
	// GRPCAddr, when set, also serves Envoy's gRPC ext_authz there.
	GRPCAddr string
	// TLSCert and TLSKey (both or neither) serve HTTPS and gRPC over TLS.
	TLSCert, TLSKey string
	// Fence, when set, is served under /v1/fence/ (FenceHandler).
	Fence http.Handler
	// Ready, when set, is called with the HTTP listener's URL once it
	// listens.
	Ready  func(url string)
	Logger *slog.Logger
}

// ListenAndServe runs s (its scheduler and store polling) and answers
// HTTP, and gRPC ext_authz when asked, until ctx ends; then it shuts down
// gracefully. The error is a listener's (nil after ctx ends).
func ListenAndServe(ctx context.Context, s *Server, o ListenOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("gate.tls_cert and gate.tls_key go together")
	}
	handler := s.Handler()
	if o.Fence != nil {
		mux := http.NewServeMux()
		mux.Handle("/v1/fence/", o.Fence)
		mux.Handle("/", handler)
		handler = mux
		log.Info("serving the fence API", "path", "/v1/fence/")
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return err
	}
	var gs *grpc.Server
	if o.GRPCAddr != "" {
		var opts []grpc.ServerOption
		if o.TLSCert != "" {
			creds, err := credentials.NewServerTLSFromFile(o.TLSCert, o.TLSKey)
			if err != nil {
				ln.Close()
				return fmt.Errorf("gRPC TLS: %w", err)
			}
			opts = append(opts, grpc.Creds(creds))
		}
		gln, err := net.Listen("tcp", o.GRPCAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--grpc-addr: %w", err)
		}
		gs = grpc.NewServer(opts...)
		s.RegisterAuthorization(gs)
		go gs.Serve(gln)
		log.Info("serving Envoy ext_authz (gRPC)", "addr", gln.Addr().String(), "tls", o.TLSCert != "")
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
	go func() { s.Run(ctx); close(runDone) }()
	serveErr := make(chan error, 1)
	scheme := "http"
	if o.TLSCert != "" {
		scheme = "https"
	}
	go func() {
		if o.TLSCert != "" {
			serveErr <- hs.ServeTLS(ln, o.TLSCert, o.TLSKey)
		} else {
			serveErr <- hs.Serve(ln)
		}
	}()
	if o.Ready != nil {
		o.Ready(scheme + "://" + ln.Addr().String())
	}
	var out error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			out = err
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
	return out
}

// FenceHandler is the fence HTTP API on every region's dedupe_kv, for the
// application's writers (serve --fence-api). The bbolt fallback can be
// open in one process only (serve holding it would block rebuilds), so
// every region needs a Redis dedupe_kv. Close the fences with the func.
func FenceHandler(cfg *config.Config, log *slog.Logger) (http.Handler, func(), error) {
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

// Preflight refuses a serve set-up that would expose POST /v1/verify
// without a token, and logs what the operator should know: no token on
// loopback, an ephemeral signing key, a schedule that lets verdicts expire.
func Preflight(cfg *config.Config, addr string, signer *gate.Signer, log *slog.Logger) error {
	if err := CheckExposure(addr, cfg.Gate.Token); err != nil {
		return err
	}
	if cfg.Gate.Token == "" {
		log.Warn("no gate.token: POST /v1/verify is open to anyone who can reach the loopback address", "addr", addr)
	}
	if (cfg.Gate.TLSCert == "") != (cfg.Gate.TLSKey == "") {
		return errors.New("gate.tls_cert and gate.tls_key go together")
	}
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
	return nil
}

// OpenConfigStore opens the config's verdict store (gate.store) with a
// 30-second limit on connecting.
func OpenConfigStore(ctx context.Context, cfg *config.Config) (Store, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return OpenStore(ctx, cfg.Gate.Store, cfg.CacheRoot())
}
