package fence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"
)

// HTTPOptions configure NewHTTPHandler.
type HTTPOptions struct {
	// Writers maps a region name to the Writer on its dedupe_kv (required,
	// at least one).
	Writers map[string]*Writer
	// Token is the bearer token every request must carry (required).
	Token string
	// MaxLease caps the lease a client may ask for (default 10 min).
	MaxLease time.Duration
	// Logger receives dedupe_kv errors (which clients only see as 503);
	// nil discards them.
	Logger *slog.Logger
}

// NewHTTPHandler serves the fence to writers that are not written in Go:
//
//	POST /v1/fence/claim   {"region", "source_id", "revision", "index_hash", "partition", "owner", "lease_ms"}
//	                       -> {"key", "state": "acquired"|"done"|"held"}
//	POST /v1/fence/done    {"region", "key", "owner"} -> {"key", "duplicate"}
//	POST /v1/fence/release {"region", "key", "owner"} -> {"key", "released": true}
//	GET  /v1/fence/status?region=R -> WindowStat
//
// Every request needs "Authorization: Bearer <token>" (401 otherwise).
// Request bodies are one JSON object of at most 64 KiB with exactly the
// fields above (unknown fields, missing required fields, wrong types and
// trailing data are a 400 naming the field); an unknown region is a 404.
// partition and lease_ms may be left out (lease_ms defaults to the
// writer's lease, and is capped at MaxLease). Errors are {"error": "..."}.
// A dedupe_kv that fails answers 503 without echoing its URL.
func NewHTTPHandler(o HTTPOptions) (http.Handler, error) {
	if o.Token == "" {
		return nil, errors.New("fence HTTP: a bearer token is required")
	}
	if len(o.Writers) == 0 {
		return nil, errors.New("fence HTTP: no region writers")
	}
	if o.MaxLease <= 0 {
		o.MaxLease = 10 * time.Minute
	}
	h := &httpFence{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/fence/claim", h.auth(h.claim))
	mux.HandleFunc("POST /v1/fence/done", h.auth(h.done))
	mux.HandleFunc("POST /v1/fence/release", h.auth(h.release))
	mux.HandleFunc("GET /v1/fence/status", h.auth(h.status))
	return mux, nil
}

type httpFence struct{ o HTTPOptions }

const maxBody = 64 << 10

// auth compares sha256 sums of the tokens in constant time (neither the
// token's length nor its content shows in the timing); the scheme is
// case-insensitive.
func (h *httpFence) auth(next http.HandlerFunc) http.HandlerFunc {
	want := sha256.Sum256([]byte(h.o.Token))
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ragparity fence"`)
			writeErr(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// decode reads exactly one JSON object with known fields into v.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeErr(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeErr(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return false
	}
	if len(body) > maxBody {
		writeErr(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody))
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("field %q: want a %s, got a JSON %s", te.Field, te.Type, te.Value))
		case errors.As(err, &se):
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("not JSON: %v (at byte %d)", se, se.Offset))
		case errors.Is(err, io.EOF):
			writeErr(w, http.StatusBadRequest, "empty body: want a JSON object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			writeErr(w, http.StatusBadRequest, "unknown field "+strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			writeErr(w, http.StatusBadRequest, "bad JSON: "+err.Error())
		}
		return false
	}
	if dec.More() {
		writeErr(w, http.StatusBadRequest, "trailing data after the JSON object")
		return false
	}
	return true
}

func required(fields ...[2]*string) string {
	var missing []string
	for _, f := range fields {
		if strings.TrimSpace(*f[1]) == "" {
			missing = append(missing, *f[0])
		}
	}
	if len(missing) > 0 {
		return "missing or empty field(s): " + strings.Join(missing, ", ")
	}
	return ""
}

func name(s string) *string { return &s }

func (h *httpFence) writer(w http.ResponseWriter, region string) *Writer {
	wr, ok := h.o.Writers[region]
	if !ok {
		names := make([]string, 0, len(h.o.Writers))
		for n := range h.o.Writers {
			names = append(names, n)
		}
		sort.Strings(names)
		writeErr(w, http.StatusNotFound, fmt.Sprintf("unknown region %q (known: %s)", region, strings.Join(names, ", ")))
	}
	return wr
}

func (h *httpFence) kvFailed(w http.ResponseWriter, ctx context.Context, err error) {
	if ctx.Err() != nil {
		writeErr(w, http.StatusServiceUnavailable, "request cancelled")
		return
	}
	// The error names the dedupe_kv (redacted); keep it out of the answer
	// anyway (clients need not know where the KV lives) and log it.
	if h.o.Logger != nil {
		h.o.Logger.Error("fence: dedupe_kv failed", "err", err)
	}
	writeErr(w, http.StatusServiceUnavailable, "dedupe_kv unavailable")
}

type claimReq struct {
	Region    string `json:"region"`
	SourceID  string `json:"source_id"`
	Revision  string `json:"revision"`
	IndexHash string `json:"index_hash"`
	Partition string `json:"partition"`
	Owner     string `json:"owner"`
	LeaseMS   *int64 `json:"lease_ms"`
}

func (h *httpFence) claim(w http.ResponseWriter, r *http.Request) {
	var q claimReq
	if !decode(w, r, &q) {
		return
	}
	if m := required([2]*string{name("region"), &q.Region}, [2]*string{name("source_id"), &q.SourceID},
		[2]*string{name("revision"), &q.Revision}, [2]*string{name("index_hash"), &q.IndexHash}, [2]*string{name("owner"), &q.Owner}); m != "" {
		writeErr(w, http.StatusBadRequest, m)
		return
	}
	if strings.ContainsAny(q.Owner, "\n\r") || len(q.Owner) > 200 {
		writeErr(w, http.StatusBadRequest, "field \"owner\": at most 200 characters on one line")
		return
	}
	var lease time.Duration
	if q.LeaseMS != nil {
		if *q.LeaseMS <= 0 || time.Duration(*q.LeaseMS)*time.Millisecond > h.o.MaxLease {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("field \"lease_ms\": want 1..%d", h.o.MaxLease.Milliseconds()))
			return
		}
		lease = time.Duration(*q.LeaseMS) * time.Millisecond
	}
	wr := h.writer(w, q.Region)
	if wr == nil {
		return
	}
	key := Key(q.SourceID, q.Revision, q.IndexHash, q.Partition)
	st, err := wr.ClaimAs(r.Context(), key, q.Owner, lease)
	if err != nil {
		h.kvFailed(w, r.Context(), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"key": key, "state": st.String()})
}

type keyReq struct {
	Region string `json:"region"`
	Key    string `json:"key"`
	Owner  string `json:"owner"`
}

func (h *httpFence) keyReq(w http.ResponseWriter, r *http.Request) (*Writer, keyReq, bool) {
	var q keyReq
	if !decode(w, r, &q) {
		return nil, q, false
	}
	if m := required([2]*string{name("region"), &q.Region}, [2]*string{name("key"), &q.Key}, [2]*string{name("owner"), &q.Owner}); m != "" {
		writeErr(w, http.StatusBadRequest, m)
		return nil, q, false
	}
	if !ValidKey(q.Key) {
		writeErr(w, http.StatusBadRequest, "field \"key\": want the 64 hex digits /v1/fence/claim returned")
		return nil, q, false
	}
	wr := h.writer(w, q.Region)
	return wr, q, wr != nil
}

func (h *httpFence) done(w http.ResponseWriter, r *http.Request) {
	wr, q, ok := h.keyReq(w, r)
	if !ok {
		return
	}
	dup, err := wr.Done(r.Context(), q.Key)
	if err != nil {
		h.kvFailed(w, r.Context(), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": q.Key, "duplicate": dup})
}

func (h *httpFence) release(w http.ResponseWriter, r *http.Request) {
	wr, q, ok := h.keyReq(w, r)
	if !ok {
		return
	}
	if err := wr.ReleaseAs(r.Context(), q.Key, q.Owner); err != nil {
		h.kvFailed(w, r.Context(), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": q.Key, "released": true})
}

func (h *httpFence) status(w http.ResponseWriter, r *http.Request) {
	region := r.URL.Query().Get("region")
	if region == "" {
		writeErr(w, http.StatusBadRequest, "missing query parameter region")
		return
	}
	wr := h.writer(w, region)
	if wr == nil {
		return
	}
	st, err := wr.Stats(r.Context())
	if err != nil {
		h.kvFailed(w, r.Context(), err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// String is the state's name in the HTTP API and the CLI.
func (s ClaimState) String() string {
	switch s {
	case Acquired:
		return "acquired"
	case AlreadyDone:
		return "done"
	case HeldByOther:
		return "held"
	}
	return fmt.Sprintf("ClaimState(%d)", int(s))
}
