package agent

import (
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier"
	"github.com/ragparity/ragparity/verifier/blob"
)

// Options configure a Server.
type Options struct {
	// Region is the region's name, as the gate's config calls it.
	Region string
	// Vectors is the region's vector store URL.
	Vectors string
	// Blobs, when set, is the region's blob store: each scan also builds
	// its content-mode manifest (BlobCacheDir keeps the content hashes,
	// RehashEvery re-reads cached objects on that period).
	Blobs        string
	BlobCacheDir string
	RehashEvery  time.Duration
	// Key signs every answer.
	Key ed25519.PrivateKey
	// Token is the bearer token every request but /healthz must carry.
	Token string
	// RequireClientCert refuses requests (but /healthz) that came without
	// a verified client certificate (mTLS, with ServerTLS's config).
	RequireClientCert bool
	// Buckets and Tolerance are the hash format's (defaults 4096, 1e-6).
	Buckets   int
	Tolerance float64
	// Interval rescans at least this often; CheckEvery reads the store's
	// change marker; a scan older than MaxAge is never served.
	Interval, CheckEvery, MaxAge time.Duration
	// Timeout bounds one scan (default 10m).
	Timeout time.Duration
	// SpillDir holds the per-point records (default os.TempDir()).
	SpillDir string
	// Logf logs scans and failures (never a secret); nil discards.
	Logf func(format string, args ...any)
	// Now is the clock (tests).
	Now func() time.Time
}

// Server is one region's agent: Run keeps its scan fresh, ServeHTTP
// answers the gate.
type Server struct {
	o     Options
	keyID string

	scanMu sync.Mutex // one scan at a time
	mu     sync.RWMutex
	cur    *state
}

// state is one complete scan and what is served from it.
type state struct {
	scan  *verifier.Scan
	spill *verifier.Spill
	at    time.Time
	// marker is the store's change marker read before the scan ("" when
	// it has none).
	marker string
	levels [][]parity.Digest
	root   parity.Digest
	// manifest is the blob manifest (nil with manifestErr when it could
	// not be built, or without Options.Blobs).
	manifest    *blob.BlobManifest
	manifestErr error
	// readers counts requests reading the spill; the spill of a replaced
	// state is removed when the last one is done.
	wg sync.WaitGroup
}

// New checks the options.
func New(o Options) (*Server, error) {
	if o.Region == "" {
		return nil, errors.New("agent: no region name")
	}
	if o.Vectors == "" {
		return nil, fmt.Errorf("agent: region %s has no vectors URL", o.Region)
	}
	if len(o.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("agent: no signing key")
	}
	if o.Token == "" {
		return nil, errors.New("agent: no bearer token (agent.token): the agent never serves unauthenticated")
	}
	if o.Buckets == 0 {
		o.Buckets = verifier.DefaultBuckets
	}
	if o.Tolerance == 0 {
		o.Tolerance = verifier.DefaultTolerance
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Minute
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = 15 * time.Second
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 30 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Server{o: o, keyID: KeyID(o.Key.Public().(ed25519.PublicKey))}, nil
}

// KeyID is the id of the key the server signs with.
func (s *Server) KeyID() string { return s.keyID }

// Rescan scans the region now and, when it succeeds, serves the new scan.
// A failed scan leaves the previous one served (until MaxAge).
func (s *Server) Rescan(ctx context.Context) error {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	at := s.o.Now()
	store, err := adapters.OpenVector(ctx, s.o.Vectors)
	if err != nil {
		return fmt.Errorf("region %s: %w", s.o.Region, err)
	}
	defer store.Close()
	marker, err := changeMarker(ctx, store)
	if err != nil {
		return fmt.Errorf("region %s: %w", s.o.Region, err)
	}
	sp, err := verifier.NewSpill(s.o.SpillDir, s.o.Buckets)
	if err != nil {
		return err
	}
	scan, err := verifier.HashStore(ctx, store, verifier.Options{Buckets: s.o.Buckets, Tolerance: s.o.Tolerance, Spill: sp, Tolerant: true})
	if err != nil {
		sp.Close()
		return fmt.Errorf("region %s: %w", s.o.Region, err)
	}
	levels := parity.Levels(scan.Leaves)
	st := &state{scan: scan, spill: sp, at: at, marker: marker, levels: levels, root: levels[0][0]}
	if s.o.Blobs != "" {
		if st.manifest, st.manifestErr = s.buildManifest(ctx); st.manifestErr != nil {
			st.manifestErr = fmt.Errorf("region %s: blobs: %w", s.o.Region, st.manifestErr)
			s.o.Logf("agent: %v", st.manifestErr)
		}
	}
	s.mu.Lock()
	old := s.cur
	s.cur = st
	s.mu.Unlock()
	if old != nil {
		go func() { old.wg.Wait(); old.spill.Close() }()
	}
	s.o.Logf("agent: region %s scanned: %d points, content root %s, %v", s.o.Region, scan.Points, parity.ShortHex(st.root.Hex()), scan.Elapsed.Round(time.Millisecond))
	return nil
}

// Close removes the served scan's records.
func (s *Server) Close() {
	s.mu.Lock()
	old := s.cur
	s.cur = nil
	s.mu.Unlock()
	if old != nil {
		old.wg.Wait()
		old.spill.Close()
	}
}

// Run scans at once, then rescans every Interval and whenever the store's
// change marker (adapters.SnapshotMarker) differs from the served scan's,
// until ctx is done.
func (s *Server) Run(ctx context.Context) {
	if err := s.Rescan(ctx); err != nil && ctx.Err() == nil {
		s.o.Logf("agent: scan failed: %v", err)
	}
	t := time.NewTicker(s.o.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if why := s.due(ctx); why != "" {
			s.o.Logf("agent: rescanning region %s: %s", s.o.Region, why)
			if err := s.Rescan(ctx); err != nil && ctx.Err() == nil {
				s.o.Logf("agent: scan failed: %v", err)
			}
		}
	}
}

// due says why a rescan is due ("" when it is not).
func (s *Server) due(ctx context.Context) string {
	s.mu.RLock()
	cur := s.cur
	s.mu.RUnlock()
	if cur == nil {
		return "no scan yet"
	}
	if age := s.o.Now().Sub(cur.at); age >= s.o.Interval {
		return fmt.Sprintf("the scan is %v old (interval %v)", age.Round(time.Second), s.o.Interval)
	}
	if cur.marker == "" {
		return "" // no cheap marker: Interval only
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := adapters.OpenVector(ctx, s.o.Vectors)
	if err != nil {
		return "the change marker cannot be read: " + err.Error()
	}
	defer store.Close()
	m, err := changeMarker(ctx, store)
	if err != nil {
		return "the change marker cannot be read: " + err.Error()
	}
	if m != cur.marker {
		return fmt.Sprintf("the store changed (marker %q -> %q)", cur.marker, m)
	}
	return ""
}

// changeMarker is the store's adapters.ChangeMarker, else its
// SnapshotMarker (Qdrant: the collection's counts), else "".
func changeMarker(ctx context.Context, store adapters.VectorReader) (string, error) {
	if cm, ok := store.(adapters.ChangeMarker); ok {
		return cm.ChangeMarker(ctx)
	}
	if sm, ok := store.(adapters.SnapshotMarker); ok {
		id, snap, err := sm.SnapshotMarker(ctx)
		return id + " " + snap, err
	}
	return "", nil
}

// Handler is the agent's HTTP API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		st, err := s.fresh()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		st.wg.Done()
		fmt.Fprintln(w, "ok")
		return
	}
	if s.o.RequireClientCert && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
		http.Error(w, "a client certificate signed by the agent's client_ca is required", http.StatusForbidden)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ragparity-agent"`)
		http.Error(w, "a bearer token is required (Authorization: Bearer ...)", http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "only GET", http.StatusMethodNotAllowed)
		return
	}
	st, err := s.fresh()
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer st.wg.Done()
	a := &Answer{Format: Format, Region: s.o.Region, Buckets: st.scan.Buckets, Tolerance: s.o.Tolerance,
		ContentRoot: st.root.Hex(), ScannedAt: st.at.UTC()}
	q := r.URL.Query()
	switch r.URL.Path {
	case "/v1/scan":
		sc := st.scan
		a.Summary = &Summary{Hashed: sc.Settings.Hashed, Engine: sc.Settings.Engine, Info: sc.Settings.Info, Points: sc.Points,
			ContentRootTolerant: sc.ContentRootTolerant().Hex(), ScanMS: sc.Elapsed.Milliseconds(), StoreID: sc.StoreID,
			Snapshot: sc.Snapshot, Duplicates: sc.Duplicates}
		if q.Get("leaves") == "1" {
			a.Leaves = encodeLeaves(sc.Leaves, 0)
		}
		if d := q.Get("depth"); d != "" {
			n, err := strconv.Atoi(d)
			if err != nil || n < 0 || n >= len(st.levels) {
				http.Error(w, fmt.Sprintf("depth %q: want 0..%d", d, len(st.levels)-1), http.StatusBadRequest)
				return
			}
			hs := make([]byte, 0, 32<<n)
			for _, h := range st.levels[n] {
				hs = append(hs, h[:]...)
			}
			a.Nodes = &Nodes{Depth: n, Hashes: hs}
		}
	case "/v1/leaves":
		from, err1 := strconv.Atoi(q.Get("from"))
		to, err2 := strconv.Atoi(q.Get("to"))
		if err1 != nil || err2 != nil || from < 0 || to > st.scan.Buckets || from >= to {
			http.Error(w, fmt.Sprintf("from/to: want 0 <= from < to <= %d", st.scan.Buckets), http.StatusBadRequest)
			return
		}
		a.Leaves = encodeLeaves(st.scan.Leaves[from:to], from)
	case "/v1/buckets":
		want, list, err := parseBuckets(q.Get("b"), st.scan.Buckets)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var data []byte
		if err := st.spill.ReadBuckets(want, func(rec *verifier.SpillRecord) {
			data = appendRecord(data, rec)
		}); err != nil {
			s.o.Logf("agent: reading records: %v", err)
			http.Error(w, "the records cannot be read back", http.StatusInternalServerError)
			return
		}
		a.Records = &Records{Buckets: list, Data: data}
	case "/v1/manifest":
		switch {
		case s.o.Blobs == "":
			http.Error(w, fmt.Sprintf("region %s: the agent has no blobs: store configured", s.o.Region), http.StatusNotFound)
			return
		case st.manifestErr != nil:
			http.Error(w, st.manifestErr.Error(), http.StatusServiceUnavailable)
			return
		}
		m, err := manifestAnswer(st.manifest, q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.Manifest = m
	default:
		http.Error(w, "unknown endpoint (GET /v1/scan, /v1/leaves, /v1/buckets, /v1/manifest, /healthz)", http.StatusNotFound)
		return
	}
	body, err := json.Marshal(a)
	if err != nil {
		http.Error(w, "encoding the answer failed", http.StatusInternalServerError)
		return
	}
	kid, sig := Sign(s.o.Key, r.URL.RequestURI(), body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set(HeaderKeyID, kid)
	h.Set(HeaderSignature, sig)
	h.Set("Cache-Control", "no-store")
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
		zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
		zw.Write(body)
		zw.Close()
		return
	}
	w.Write(body)
}

// MaxBucketsPerRequest bounds /v1/buckets?b=...
const MaxBucketsPerRequest = 512

func parseBuckets(s string, buckets int) (map[int]bool, []int, error) {
	if s == "" {
		return nil, nil, errors.New("b: want a comma-separated list of buckets")
	}
	want := map[int]bool{}
	var list []int
	for _, f := range strings.Split(s, ",") {
		b, err := strconv.Atoi(f)
		if err != nil || b < 0 || b >= buckets {
			return nil, nil, fmt.Errorf("b: %q is not a bucket in 0..%d", f, buckets-1)
		}
		if !want[b] {
			want[b] = true
			list = append(list, b)
		}
	}
	if len(list) > MaxBucketsPerRequest {
		return nil, nil, fmt.Errorf("b: at most %d buckets per request", MaxBucketsPerRequest)
	}
	return want, list, nil
}

// fresh is the served scan, counted as read (the caller calls st.wg.Done
// when done: a replaced scan's records are removed only after its last
// reader), or why there is none to serve.
func (s *Server) fresh() (*state, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.cur
	if st == nil {
		return nil, fmt.Errorf("region %s: no scan yet", s.o.Region)
	}
	if age := s.o.Now().Sub(st.at); age > s.o.MaxAge {
		return nil, fmt.Errorf("region %s: the last complete scan is %v old, beyond max_age %v (rescan failing or pending)", s.o.Region, age.Round(time.Second), s.o.MaxAge)
	}
	st.wg.Add(1) // under the lock: Rescan swaps s.cur under it, then waits
	return st, nil
}

func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	// Compared as digests: constant time whatever the lengths.
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(s.o.Token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// Sign signs an answer to requestURI: its key id and base64 signature.
func Sign(key ed25519.PrivateKey, requestURI string, body []byte) (keyID, sig string) {
	return KeyID(key.Public().(ed25519.PublicKey)), base64.StdEncoding.EncodeToString(ed25519.Sign(key, signingBytes(requestURI, body)))
}
