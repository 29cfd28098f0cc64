// Package server serves the gate to routers: it verifies on a schedule and
// on request (gate.Run), keeps the latest signed verdict in memory and
// answers admission from it with no I/O, shares verdicts between replicas
// through a verdict store (SQLite or PostgreSQL), and exports metrics.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
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
		for _, r := range v.Regions {
			regions = append(regions, r.Name)
			st.route[r.Name] = []string{r.Name}
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

// ---------------------------------------------------------------- verification loop

// Trigger queues a verification (joining one already queued but not yet
// started) and returns it; its done channel closes when it has run.
func (s *Server) trigger(reason string) *verifyRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		s.pending = &verifyRun{reason: reason, done: make(chan struct{})}
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return s.pending
}

// VerifyNow queues a verification and waits for it.
func (s *Server) VerifyNow(ctx context.Context, reason string) (*gate.Verdict, error) {
	r := s.trigger(reason)
	select {
	case <-r.done:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// nextDue returns when the next scheduled verification is due (ok=false:
// none is).
func (s *Server) nextDue() (time.Time, bool) {
	v := s.state.Load().v
	s.mu.Lock()
	defer s.mu.Unlock()
	var due time.Time
	switch {
	case s.o.Schedule > 0 && v != nil:
		due = v.CreatedAt.Add(s.o.Schedule)
	case s.o.Schedule > 0:
		due = s.now()
	case !s.startDone:
		due = s.now()
	default:
		return time.Time{}, false
	}
	if due.Before(s.retryAt) {
		due = s.retryAt
	}
	return due, true
}

// Run verifies (at start unless a fresh verdict is stored, on schedule,
// on request) and polls the store, until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if s.o.Store != nil {
		s.poll(ctx)
		// Without a schedule, a fresh verdict in the store (another
		// replica's) stands in for the start-up verification.
		if v := s.state.Load().v; s.o.Schedule == 0 && v != nil && !v.Expired(s.now()) {
			s.mu.Lock()
			s.startDone = true
			s.mu.Unlock()
		}
		go func() {
			t := time.NewTicker(s.o.PollInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					s.poll(ctx)
				}
			}
		}()
	}
	// Replicas that start together, or share a store, should not all
	// verify at the same instant.
	jitter := time.Duration(0)
	if s.o.Schedule > 0 {
		jitter = time.Duration(mrand.Int64N(int64(min(s.o.Schedule/20, 15*time.Second)) + 1))
	}
	for {
		var timer *time.Timer
		var fire <-chan time.Time
		if due, ok := s.nextDue(); ok {
			timer = time.NewTimer(max(due.Add(jitter).Sub(s.now()), 0))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			s.mu.Lock()
			if r := s.pending; r != nil {
				r.err = ctx.Err()
				close(r.done)
				s.pending = nil
			}
			s.mu.Unlock()
			return nil
		case <-s.wake:
		case <-fire:
			// A newer verdict may have come from the store meanwhile.
			if due, ok := s.nextDue(); !ok || s.now().Before(due) {
				continue
			}
			s.trigger("schedule")
		}
		if timer != nil {
			timer.Stop()
		}
		s.mu.Lock()
		r := s.pending
		s.pending = nil
		s.startDone = true
		s.mu.Unlock()
		if r != nil {
			s.execute(ctx, r)
		}
	}
}

func (s *Server) execute(ctx context.Context, r *verifyRun) {
	defer close(r.done)
	s.log.Info("verifying", "reason", r.reason)
	t0 := time.Now()
	v, det, err := s.o.Verify(ctx)
	if err == nil && v == nil {
		err = errors.New("verification returned no verdict")
	}
	if err == nil {
		err = s.prepare(v)
	}
	s.m.observeVerify(s.o.Release, v, err, time.Since(t0))
	if err != nil {
		s.mu.Lock()
		s.retryAt = s.now().Add(s.o.RetryDelay)
		s.mu.Unlock()
		s.log.Error("verification failed", "reason", r.reason, "err", err)
		r.err = err
		return
	}
	if s.o.Store != nil {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		if err := s.o.Store.Put(pctx, v); err != nil {
			s.m.storeErrors.WithLabelValues("put").Inc()
			s.log.Error("storing verdict", "id", v.ID, "err", err)
		}
		cancel()
	}
	s.Install(v, "local")
	r.v = v
	if s.o.Published != nil {
		s.o.Published(v, det)
	}
}

// prepare makes sure a verdict is signed exactly once: one that Verify
// signed (gate.Run does) is checked against our key; an unsigned one (a
// VerifyFunc of the library's user) gets an id and our signature.
func (s *Server) prepare(v *gate.Verdict) error {
	if v.Signature != "" {
		if s.o.Signer != nil {
			if err := v.Verify(s.o.Signer.Public()); err != nil {
				return fmt.Errorf("verdict %s: %w (signed by key %s, this server signs with %s)", v.ID, err, v.KeyID, s.o.Signer.KeyID())
			}
		}
		return nil
	}
	if v.ID == "" {
		b := make([]byte, 6)
		rand.Read(b)
		v.ID = "v" + v.CreatedAt.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b)
	}
	if s.o.Signer != nil {
		return s.o.Signer.Sign(v)
	}
	return nil
}

// poll serves the store's newest verdict if it is newer than ours.
func (s *Server) poll(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, max(s.o.PollInterval, 2*time.Second))
	defer cancel()
	v, err := s.o.Store.Latest(c, s.o.Release)
	if errors.Is(err, ErrNotFound) || ctx.Err() != nil {
		return
	}
	if err != nil {
		s.m.storeErrors.WithLabelValues("latest").Inc()
		s.log.Warn("reading the verdict store", "err", err)
		return
	}
	if cur := s.state.Load().v; cur != nil && !newer(v, cur) {
		return
	}
	if s.o.Inputs != "" && v.InputsDigest != s.o.Inputs {
		s.mu.Lock()
		first := s.otherInputs != v.ID
		s.otherInputs = v.ID
		s.mu.Unlock()
		if first {
			s.log.Warn("ignoring stored verdict: computed over other inputs (config, baseline or gold set changed)", "id", v.ID,
				"inputs", v.InputsDigest, "want", s.o.Inputs)
		}
		return
	}
	if s.o.TrustedKey != nil {
		if err := v.Verify(s.o.TrustedKey); err != nil {
			s.mu.Lock()
			first := s.rejected != v.ID
			s.rejected = v.ID
			s.mu.Unlock()
			if first {
				s.m.badSignature.Inc()
				s.log.Error("ignoring stored verdict", "id", v.ID, "err", err)
			}
			return
		}
	}
	s.Install(v, "store")
}

// ---------------------------------------------------------------- admission

var (
	hdrNoStore   = []string{"no-store"}
	hdrTextPlain = []string{"text/plain; charset=utf-8"}
)

func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// clientRegion reads ?client_region= (without parsing the query unless
// it is there), else X-Client-Region.
func clientRegion(r *http.Request) string {
	if q := r.URL.RawQuery; q != "" && strings.Contains(q, "client_region=") {
		if vs, err := url.ParseQuery(q); err == nil {
			if v := vs.Get("client_region"); v != "" {
				return v
			}
		}
	}
	return header(r.Header, "X-Client-Region")
}

// handleAdmit answers from the verdict in memory: no I/O, no locks, and
// on the 200 path no allocation beyond net/http's own. Refusals also
// carry X-Ragparity-Verdict (the verdict's id).
func (s *Server) handleAdmit(w http.ResponseWriter, r *http.Request) {
	st := s.state.Load()
	h := r.Header
	q := AdmitRequest{
		Release:      header(h, "X-Release"),
		Pin:          header(h, "X-Region-Pin"),
		ClientRegion: clientRegion(r),
		IndexHash:    header(h, "X-Index-Hash"),
		SchemaRev:    header(h, "X-Schema-Rev"),
		ModelTag:     header(h, "X-Model-Tag"),
	}
	now := s.now()
	res := st.adm.Admit(&q, now)
	// Each response header costs (net/http clones, sorts and writes the
	// map): a 200 carries only X-Route-Region.
	wh := w.Header()
	switch res.Code {
	case http.StatusOK:
		if rh, ok := st.route[res.Region]; ok {
			wh["X-Route-Region"] = rh
		} else {
			wh["X-Route-Region"] = []string{res.Region}
		}
		var c map[string]prometheus.Counter
		switch {
		case q.Pin == res.Region:
			c = st.c.pin
		case q.Pin != "":
			c = st.c.fallback
		default:
			c = st.c.nearest
		}
		if ctr := c[res.Region]; ctr != nil {
			ctr.Inc()
		}
		w.WriteHeader(http.StatusOK)
		return
	case http.StatusConflict:
		st.c.conflict.Inc()
	default:
		rc := st.c.refuse[q.Pin]
		if rc == nil {
			rc = st.c.refuse[regionNone]
		}
		switch {
		case st.v == nil:
			rc.none.Inc()
		case st.v.Expired(now):
			rc.expired.Inc()
		case st.v.Decision == gate.Inconclusive:
			rc.inconclusive.Inc()
		default:
			rc.noMatch.Inc()
		}
	}
	wh["X-Ragparity-Reason"] = []string{res.Reason}
	if st.verdictHdr != nil {
		wh["X-Ragparity-Verdict"] = st.verdictHdr
	}
	wh["Cache-Control"] = hdrNoStore
	wh["Content-Type"] = hdrTextPlain
	w.WriteHeader(res.Code)
	io.WriteString(w, res.Reason+"\n")
}

// ---------------------------------------------------------------- other handlers

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// ReadyState is the body of /readyz.
type ReadyState struct {
	Ready    bool        `json:"ready"`
	Reason   string      `json:"reason,omitempty"`
	Verdict  string      `json:"verdict,omitempty"`
	Decision gate.Status `json:"decision,omitempty"`
	Expired  bool        `json:"expired,omitempty"`
	Source   string      `json:"source,omitempty"`
}

// handleReadyz is ready once a verdict is held. An expired or failed
// verdict is still ready: the server answers (refusing), and taking it
// out of a load balancer would turn refusals into router errors.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	st := s.state.Load()
	if st.v == nil {
		reason := "no verdict yet"
		s.mu.Lock()
		if s.otherInputs != "" {
			reason = "no verdict yet under the current config: stored verdict " + s.otherInputs + " was computed over other inputs; waiting for the first verification"
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusServiceUnavailable, ReadyState{Reason: reason})
		return
	}
	writeJSON(w, http.StatusOK, ReadyState{Ready: true, Verdict: st.v.ID, Decision: st.v.Decision,
		Expired: st.v.Expired(s.now()), Source: st.source})
}

// RegionReady is the body of /v1/regions/{name}/ready.
type RegionReady struct {
	Region  string      `json:"region"`
	Ready   bool        `json:"ready"`
	Status  gate.Status `json:"status,omitempty"`
	Reason  string      `json:"reason,omitempty"`
	Verdict string      `json:"verdict,omitempty"`
}

// handleRegionReady answers 200 when the region is admitted now and 503
// with the reason otherwise: what load-balancer health checks (HAProxy
// httpchk, Envoy, cloud DNS, Kubernetes readiness) consume. From memory,
// no I/O.
func (s *Server) handleRegionReady(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	st := s.state.Load()
	v := st.v
	out := RegionReady{Region: name}
	if v == nil {
		out.Reason = "no verdict yet"
		w.Header().Set("X-Ragparity-Reason", out.Reason)
		writeJSON(w, http.StatusServiceUnavailable, out)
		return
	}
	out.Verdict = v.ID
	rv, ok := v.Region(name)
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("region %q is not in verdict %s", name, v.ID)})
		return
	}
	out.Status = rv.Status
	switch {
	case v.Expired(s.now()):
		out.Reason = "verdict expired"
	case !rv.Admit:
		out.Reason = strings.Join(rv.Reasons, "; ")
		if out.Reason == "" {
			out.Reason = "not admitted"
		}
	default:
		out.Ready = true
		writeJSON(w, http.StatusOK, out)
		return
	}
	w.Header().Set("X-Ragparity-Reason", headerSafe(out.Reason))
	writeJSON(w, http.StatusServiceUnavailable, out)
}

// headerSafe keeps a reason fit for a header value (printable ASCII, at
// most 512 bytes).
func headerSafe(s string) string {
	b := make([]byte, 0, min(len(s), 512))
	for i := 0; i < len(s) && len(b) < 512; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

func (s *Server) handleLatest(w http.ResponseWriter, r *http.Request) {
	v := s.state.Load().v
	if v == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no verdict yet"})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handleVerdict(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if v := s.state.Load().v; v != nil && v.ID == id {
		writeJSON(w, http.StatusOK, v)
		return
	}
	if s.o.Store == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no verdict " + strconv.Quote(id)})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	v, err := s.o.Store.Get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{"no verdict " + strconv.Quote(id)})
	case err != nil:
		s.m.storeErrors.WithLabelValues("get").Inc()
		s.log.Error("reading verdict", "id", id, "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{"verdict store unavailable"})
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 20
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeJSON(w, http.StatusBadRequest, apiError{"limit must be 1..1000"})
			return
		}
		limit = n
	}
	release := s.o.Release
	if q.Has("release") {
		release = q.Get("release")
	}
	if s.o.Store == nil {
		out := []*gate.Verdict{}
		if v := s.state.Load().v; v != nil && (release == "" || v.Release == release) {
			out = append(out, v)
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	vs, err := s.o.Store.List(ctx, release, limit)
	if err != nil {
		s.m.storeErrors.WithLabelValues("list").Inc()
		s.log.Error("listing verdicts", "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{"verdict store unavailable"})
		return
	}
	if vs == nil {
		vs = []*gate.Verdict{}
	}
	writeJSON(w, http.StatusOK, vs)
}

// VerifyRequest is the optional body of POST /v1/verify.
type VerifyRequest struct {
	// Reason is logged with the verification (at most 512 bytes).
	Reason string `json:"reason"`
}

// authorized compares the bearer token in constant time: both sides are
// hashed first, so neither the content nor the length of the configured
// token shows in the timing.
func (s *Server) authorized(r *http.Request) bool {
	if s.o.Token == "" {
		return true
	}
	auth := header(r.Header, "Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	ok = ok && strings.EqualFold(scheme, "Bearer")
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	eq := subtle.ConstantTimeCompare(got[:], s.tokenSum[:]) == 1
	return ok && eq
}

func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ragparity"`)
		writeJSON(w, http.StatusUnauthorized, apiError{"missing or wrong bearer token"})
		return
	}
	var req VerifyRequest
	r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		// Exactly one JSON value.
		if err2 := dec.Decode(&struct{}{}); err2 != io.EOF {
			err = errors.New("body must be one JSON object")
			var mbe *http.MaxBytesError
			if errors.As(err2, &mbe) {
				err = err2
			}
		}
	}
	var mbe *http.MaxBytesError
	switch {
	case err == io.EOF: // no body
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("body over %d bytes", s.o.MaxBodyBytes)})
		return
	case err != nil:
		writeJSON(w, http.StatusBadRequest, apiError{"bad body: " + err.Error()})
		return
	}
	if len(req.Reason) > 512 {
		writeJSON(w, http.StatusBadRequest, apiError{"reason over 512 bytes"})
		return
	}
	reason := "api"
	if req.Reason != "" {
		reason = "api: " + req.Reason
	}
	run := s.trigger(reason)
	if r.URL.Query().Get("wait") == "false" {
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued"})
		return
	}
	select {
	case <-run.done:
	case <-r.Context().Done():
		return
	}
	if run.err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{"verification failed: " + run.err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, run.v)
}

// CheckExposure refuses to serve without a token unless addr listens on
// loopback only (127.0.0.0/8, ::1, or a localhost that resolves only to
// those).
func CheckExposure(addr, token string) error {
	if token != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	loopback := func(h string) bool {
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	ok := loopback(host)
	if !ok && strings.EqualFold(host, "localhost") {
		addrs, err := net.LookupHost(host)
		ok = err == nil && len(addrs) > 0
		for _, a := range addrs {
			ok = ok && loopback(a)
		}
	}
	if !ok {
		return fmt.Errorf("refusing to listen on %s without gate.token: set a token (e.g. token: ${RAGPARITY_TOKEN}) or listen on loopback only (--addr 127.0.0.1:8080)", addr)
	}
	return nil
}
