package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ragparity/ragparity/gate"
)

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
	return clientRegionOf(r.URL.RawQuery, header(r.Header, "X-Client-Region"))
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
		Fallback:     header(h, "X-Ragparity-Fallback"),
	}
	now := s.now()
	res := st.adm.Admit(&q, now)
	st.count(&q, &res, now)
	// Each response header costs (net/http clones, sorts and writes the
	// map): a 200 carries only X-Route-Region.
	wh := w.Header()
	if res.Region != "" {
		if rh, ok := st.route[res.Region]; ok {
			wh["X-Route-Region"] = rh
		} else {
			wh["X-Route-Region"] = []string{res.Region}
		}
	}
	if res.Code == http.StatusOK {
		w.WriteHeader(http.StatusOK)
		return
	}
	if rh, ok := st.reason[res.Reason]; ok {
		wh["X-Ragparity-Reason"] = rh
	} else {
		wh["X-Ragparity-Reason"] = []string{res.Reason}
	}
	if st.verdictHdr != nil {
		wh["X-Ragparity-Verdict"] = st.verdictHdr
	}
	wh["Cache-Control"] = hdrNoStore
	wh["Content-Type"] = hdrTextPlain
	w.WriteHeader(res.Code)
	io.WriteString(w, res.Reason+"\n")
}

// count adds one admission answer (HTTP or gRPC) to its counter.
func (st *serveState) count(q *AdmitRequest, res *AdmitResult, now time.Time) {
	switch res.Code {
	case http.StatusOK:
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
		return
	case http.StatusMisdirectedRequest:
		if ctr := st.c.misdirected[res.Region]; ctr != nil {
			ctr.Inc()
		}
		return
	case http.StatusBadRequest:
		st.c.badRequest.Inc()
		return
	case http.StatusConflict:
		st.c.conflict.Inc()
		return
	}
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
		if err := s.checkStored(v); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, unverifiedVerdict{
				Error: "verdict " + strconv.Quote(id) + " does not verify against this server's trusted key; not served",
				ID:    id, KeyID: v.KeyID, SignatureValid: false})
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// unverifiedVerdict is the answer for a stored verdict whose signature
// does not verify: the verdict itself is not served.
type unverifiedVerdict struct {
	Error          string `json:"error"`
	ID             string `json:"id"`
	KeyID          string `json:"key_id"`
	SignatureValid bool   `json:"signature_valid"`
}

// checkStored verifies a verdict read from the store against the trusted
// key (the server's own when no other is set); nil when there is no key to
// check with (tests and single-writer set-ups).
func (s *Server) checkStored(v *gate.Verdict) error {
	key := s.o.TrustedKey
	if key == nil && s.o.Signer != nil {
		key = s.o.Signer.Public()
	}
	if key == nil {
		return nil
	}
	return v.Verify(key)
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
	out := make([]*gate.Verdict, 0, len(vs))
	omitted := 0
	for _, v := range vs {
		if err := s.checkStored(v); err != nil {
			omitted++
			s.m.badSignature.Inc()
			continue
		}
		out = append(out, v)
	}
	// The verdicts that do not verify against the trusted key are left
	// out; the header says how many.
	w.Header().Set("X-Ragparity-Unverified-Omitted", strconv.Itoa(omitted))
	writeJSON(w, http.StatusOK, out)
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
