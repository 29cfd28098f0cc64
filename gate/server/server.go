// Package server serves the gate to routers: it verifies on a schedule and
// on request (gate.Run), keeps the latest signed verdict in memory and
// answers admission from it with no I/O, shares verdicts between replicas
// through a verdict store (SQLite or PostgreSQL), and exports metrics.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ragparity/ragparity/gate"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// VerifyFunc computes a verdict and the detail behind it (gate.Run bound
// to a config). The detail may be nil.
type VerifyFunc func(ctx context.Context) (*gate.Verdict, *gate.Detail, error)

// ServerOptions configure a Server.
type ServerOptions struct {
	// Verify computes a verdict; required.
	Verify VerifyFunc
	// Store keeps verdict history and shares it between replicas; nil
	// keeps only the latest verdict in memory.
	Store Store
	// Signer signs a verdict Verify returns unsigned; a verdict Verify
	// signed already (gate.Run signs) must verify under Signer's key and is
	// not signed again. Nil leaves verdicts as they are.
	Signer *gate.Signer
	// TrustedKey must have signed a verdict read from the store for this
	// replica to serve it. Nil serves any: only for tests and single-writer
	// set-ups; ragparity serve always sets it (its own key).
	TrustedKey ed25519.PublicKey
	// Published, when set, is called with each verdict this replica made,
	// once it is stored and served (serve --report writes the report).
	Published func(*gate.Verdict, *gate.Detail)
	// Token is the bearer token POST /v1/verify requires. Empty allows
	// anyone: only for a server listening on loopback (CheckExposure).
	Token string
	// Release is the release this server verifies: the store is read for
	// it and an admission asking for another gets 409.
	Release string
	// Inputs is the inputs digest of the running config and baseline
	// (gate.InputsDigest): a stored verdict computed over other inputs is
	// never served, so a restart under a changed config admits nothing
	// before its own first verification. "" serves any (tests).
	Inputs string
	// Routing maps a client region to the regions to try in order
	// (gate.routing).
	Routing map[string][]string
	// Schedule re-verifies when the newest verdict (made by any replica)
	// is this old; 0 verifies at start only when no unexpired verdict is
	// stored, then only on POST /v1/verify.
	Schedule time.Duration
	// PollInterval is how often the store is read for a newer verdict
	// made by another replica (default 3 s).
	PollInterval time.Duration
	// RetryDelay is how long a scheduled verification waits after one
	// that returned an error (default min(Schedule, 30 s)).
	RetryDelay time.Duration
	// MaxBodyBytes limits request bodies (default 16 KiB).
	MaxBodyBytes int64
	Logger       *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Server answers router admission from the latest verdict and keeps that
// verdict fresh: it re-verifies on a schedule and on POST /v1/verify, and
// polls the store for verdicts other replicas made.
//
// Endpoints:
//
//	GET  /v1/admit              router admission (any method and any path
//	                            under /v1/admit/, for proxies that forward
//	                            the client's)
//	GET  /v1/verdicts/latest    the verdict being served
//	GET  /v1/verdicts/{id}      one verdict from the history
//	GET  /v1/verdicts           history, newest first (?limit=20&release=R)
//	POST /v1/verify             verify now (bearer token; optional body
//	                            {"reason": "..."}; ?wait=false answers 202)
//	GET  /healthz, /readyz, /metrics
type Server struct {
	o        ServerOptions
	log      *slog.Logger
	now      func() time.Time
	state    atomic.Pointer[serveState]
	m        *metrics
	mux      *http.ServeMux
	tokenSum [sha256.Size]byte

	installMu sync.Mutex

	mu        sync.Mutex
	pending   *verifyRun
	wake      chan struct{}
	retryAt   time.Time
	startDone bool
	rejected  string // id of the last stored verdict refused for its signature
	// otherInputs is the id of the last stored verdict ignored for being
	// computed over other inputs.
	otherInputs string
}

// serveState is everything /v1/admit reads, swapped atomically when a new
// verdict arrives: the admitter, pre-built header values and the
// pre-resolved counters.
type serveState struct {
	adm        *Admitter
	v          *gate.Verdict
	source     string
	route      map[string][]string
	reason     map[string][]string // X-Ragparity-Reason values of 421, built once
	verdictHdr []string
	c          *admitCounters
}

// verifyRun is one queued or running verification; every request made
// while it is queued shares it.
type verifyRun struct {
	reason string
	done   chan struct{}
	v      *gate.Verdict
	err    error
}

// NewServer builds a server; call Run to start verifying and polling, and
// serve Handler.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Verify == nil {
		return nil, errors.New("gate: server needs a Verify function")
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 3 * time.Second
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 30 * time.Second
		if o.Schedule > 0 && o.Schedule < o.RetryDelay {
			o.RetryDelay = o.Schedule
		}
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 16 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, log: o.Logger.WithGroup("gate"), now: o.Now, wake: make(chan struct{}, 1)}
	if o.Token != "" {
		s.tokenSum = sha256.Sum256([]byte(o.Token))
	}
	s.m = newMetrics(s)
	s.state.Store(s.newState(nil, ""))
	s.routes()
	return s, nil
}

// Registry is the server's Prometheus registry (served on /metrics).
func (s *Server) Registry() *prometheus.Registry { return s.m.reg }

// Handler serves the API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// serveHTTP sends admission straight to its handler, without the mux's
// pattern matching: it is the one endpoint on a router's request path.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == "/v1/admit" || strings.HasPrefix(p, "/v1/admit/") {
		s.handleAdmit(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Current returns the verdict being served (nil before the first).
func (s *Server) Current() *gate.Verdict { return s.state.Load().v }

func (s *Server) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/verdicts/latest", s.handleLatest)
	mux.HandleFunc("GET /v1/verdicts/{id}", s.handleVerdict)
	mux.HandleFunc("GET /v1/verdicts", s.handleHistory)
	mux.HandleFunc("POST /v1/verify", s.handleVerify)
	mux.HandleFunc("GET /v1/regions/{name}/ready", s.handleRegionReady)
	// Routers forward the client's method (nginx auth_request, Envoy
	// ext_authz) and Envoy appends the client's path to path_prefix, so
	// admission answers any method on /v1/admit and below. It never reads
	// a body.
	mux.HandleFunc("/v1/admit", s.handleAdmit)
	mux.HandleFunc("/v1/admit/", s.handleAdmit)
	s.mux = mux
}

func (s *Server) newState(v *gate.Verdict, source string) *serveState {
	st := &serveState{adm: NewAdmitter(v, s.o.Routing), v: v, source: source, route: map[string][]string{}}
	release, revision := s.o.Release, "none"
	var regions []string
	if v != nil {
		release, revision = v.Release, v.ID
		st.verdictHdr = []string{v.ID}
		st.reason = map[string][]string{}
		for _, r := range v.Regions {
			regions = append(regions, r.Name)
			st.route[r.Name] = []string{r.Name}
			st.reason[st.adm.misdirect[r.Name]] = []string{st.adm.misdirect[r.Name]}
		}
	}
	st.c = s.m.resolve(release, revision, regions)
	return st
}

// newer reports whether a was made after b.
func newer(a, b *gate.Verdict) bool {
	if b == nil {
		return true
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.ID > b.ID
}

// Install serves v if it is newer than the verdict being served, and
// reports whether it did. source is "local" or "store".
func (s *Server) Install(v *gate.Verdict, source string) bool {
	s.installMu.Lock()
	defer s.installMu.Unlock()
	cur := s.state.Load().v
	if cur != nil && !newer(v, cur) {
		return false
	}
	s.state.Store(s.newState(v, source))
	s.m.loaded.WithLabelValues(source).Inc()
	var admitted []string
	for _, r := range v.Regions {
		if r.Admit {
			admitted = append(admitted, r.Name)
		}
	}
	s.log.Info("serving verdict", "id", v.ID, "release", v.Release, "decision", v.Decision,
		"admitted", strings.Join(admitted, ","), "expires", v.ExpiresAt, "source", source)
	return true
}
