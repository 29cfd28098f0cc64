package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/ragparity/ragparity/adapters"
	_ "github.com/ragparity/ragparity/adapters/all"
	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
	"github.com/ragparity/ragparity/agent"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
	"github.com/ragparity/ragparity/verifier"
)

const token = "unit-test-token"

func embeddedStore(t *testing.T, n int) string {
	t.Helper()
	u := fmt.Sprintf("embedded://%s?collection=chunks", t.TempDir())
	s, err := adapters.OpenVector(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vectortest.Load(t, s, vectortest.Spec(parity.IDString), vectortest.Points(parity.IDString, n, 5))
	return u
}

func newServer(t *testing.T, vectors string, o agent.Options) (*agent.Server, ed25519.PublicKey) {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	o.Region, o.Vectors, o.Key, o.Token, o.SpillDir = "eu", vectors, key, token, t.TempDir()
	s, err := agent.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, pub
}

func TestTokenRequired(t *testing.T) {
	s, pub := newServer(t, embeddedStore(t, 50), agent.Options{})
	if err := s.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	for _, auth := range []string{"", "Bearer wrong", "Basic " + token, "Bearer " + token + "x"} {
		req, _ := http.NewRequest("GET", ts.URL+"/v1/scan?leaves=1", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", auth, resp.StatusCode)
		}
	}
	c := &agent.Client{URL: ts.URL, Token: token, Trusted: []ed25519.PublicKey{pub}, MaxAge: time.Hour}
	r, err := c.Fetch(context.Background(), agent.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Scan.Points != 50 {
		t.Errorf("points %d", r.Scan.Points)
	}
	if _, err := agent.New(agent.Options{Region: "eu", Vectors: "embedded:///x", Key: make(ed25519.PrivateKey, 64)}); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("an agent without a token starts: %v", err)
	}
}

// TestNeverServesOlderThanMaxAge: once the last scan is older than
// max_age (rescans failing), the agent answers 503, and /healthz too.
func TestNeverServesOlderThanMaxAge(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	s, pub := newServer(t, embeddedStore(t, 20), agent.Options{MaxAge: time.Minute, Interval: time.Minute, Now: clock})
	ts := httptest.NewServer(s)
	defer ts.Close()
	c := &agent.Client{URL: ts.URL, Token: token, Trusted: []ed25519.PublicKey{pub}, MaxAge: time.Hour, Now: clock}
	if _, err := c.Fetch(context.Background(), agent.FetchOptions{}); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("before the first scan: %v", err)
	}
	if err := s.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(context.Background(), agent.FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute)
	_, err := c.Fetch(context.Background(), agent.FetchOptions{})
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "beyond max_age") {
		t.Errorf("a scan older than max_age: %v", err)
	}
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/healthz %d", resp.StatusCode)
	}
}

// TestRescanOnChangeMarker: a point added to a Qdrant collection changes
// its counts (the change marker): the agent rescans well before Interval.
func TestRescanOnChangeMarker(t *testing.T) {
	srv := qdranttest.Start(t)
	u := srv.URL("agentmarker") + "?text=content"
	st, err := adapters.OpenVector(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pts := vectortest.Points(parity.IDUUID, 31, 2)
	vectortest.Load(t, st, vectortest.Spec(parity.IDUUID), pts[:30])
	s, pub := newServer(t, u, agent.Options{Interval: time.Hour, CheckEvery: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	ts := httptest.NewServer(s)
	defer ts.Close()
	c := &agent.Client{URL: ts.URL, Token: token, Trusted: []ed25519.PublicKey{pub}, MaxAge: time.Hour}
	points := func() int64 {
		r, err := c.Fetch(context.Background(), agent.FetchOptions{})
		if err != nil {
			return -1
		}
		return r.Scan.Points
	}
	deadline := time.Now().Add(10 * time.Second)
	for points() != 30 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := st.(adapters.VectorWriter).Upsert(context.Background(), pts[30:]); err != nil {
		t.Fatal(err)
	}
	for points() != 31 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := points(); got != 31 {
		t.Errorf("after an insert the agent serves %d points, want 31 (no rescan on the change marker)", got)
	}
}

// TestRescanOnPgvectorChange: an update of one row (the row count stays)
// moves pgvector's change marker (the table's update counter) and the
// agent rescans; a write to another table of the cluster leaves the
// marker alone.
func TestRescanOnPgvectorChange(t *testing.T) {
	tbl := fmt.Sprintf("rp_agent_marker_%d", time.Now().UnixNano())
	u := pgtest.TableURL(tbl, "payload", "metadata", "text", "content")
	st, err := adapters.OpenVector(context.Background(), u)
	if err != nil {
		t.Fatalf("PostgreSQL: %v", err)
	}
	defer func() { st.(adapters.VectorWriter).Drop(context.Background()); st.Close() }()
	pts := vectortest.Points(parity.IDString, 40, 9)
	vectortest.Load(t, st, vectortest.Spec(parity.IDString), pts)
	other, err := adapters.OpenVector(context.Background(), strings.Replace(u, tbl, tbl+"_other", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { other.(adapters.VectorWriter).Drop(context.Background()); other.Close() }()
	vectortest.Load(t, other, vectortest.Spec(parity.IDString), pts[:5])
	// Counters arrive when the writing session flushes its statistics
	// (PostgreSQL 15: up to about 10 s after an idle session's commit).
	waitFor := func(m adapters.ChangeMarker, counts string) string {
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := m.ChangeMarker(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(got, counts) || time.Now().After(deadline) {
				return got
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	m1 := waitFor(st.(adapters.ChangeMarker), " 40 0 0")
	if err := other.(adapters.VectorWriter).Upsert(context.Background(), pts[5:6]); err != nil {
		t.Fatal(err)
	}
	if om := waitFor(other.(adapters.ChangeMarker), " 6 0 0"); !strings.Contains(om, " 6 0 0") {
		t.Fatalf("the other table's marker %q never counted its 6 inserts", om)
	}
	if m2, _ := st.(adapters.ChangeMarker).ChangeMarker(context.Background()); m2 != m1 || !strings.Contains(m1, " 40 0 0") {
		t.Errorf("marker %q (want 40 inserts), after a write to another table %q", m1, m2)
	}

	s, pub := newServer(t, u, agent.Options{Interval: time.Hour, CheckEvery: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	ts := httptest.NewServer(s)
	defer ts.Close()
	c := &agent.Client{URL: ts.URL, Token: token, Trusted: []ed25519.PublicKey{pub}, MaxAge: time.Hour}
	root := func() string {
		r, err := c.Fetch(context.Background(), agent.FetchOptions{})
		if err != nil {
			return ""
		}
		return r.Scan.ContentRoot().Hex()
	}
	deadline := time.Now().Add(40 * time.Second)
	first := root()
	for first == "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		first = root()
	}
	changed := pts[7]
	changed.Text = "edited in place"
	if err := st.(adapters.VectorWriter).Upsert(context.Background(), []parity.Point{changed}); err != nil {
		t.Fatal(err)
	}
	got := root()
	for (got == first || got == "") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		got = root()
	}
	if got == first {
		t.Errorf("after an update the agent still serves content root %s (no rescan on the change marker)", first)
	}
}

// TestNodesThenRecords: the tree-node path completes against a reference
// and serves records that the client checks against the leaves.
func TestNodesThenRecords(t *testing.T) {
	u := embeddedStore(t, 500)
	s, pub := newServer(t, u, agent.Options{})
	if err := s.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	st, _ := adapters.OpenVector(context.Background(), u)
	direct, err := verifier.HashStore(context.Background(), st, verifier.Options{})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := &agent.Client{URL: ts.URL, Token: token, Trusted: []ed25519.PublicKey{pub}, MaxAge: time.Hour}
	for _, ref := range [][]parity.Leaf{nil, direct.Leaves, make([]parity.Leaf, 4096)} {
		r, err := c.Fetch(context.Background(), agent.FetchOptions{Nodes: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Scan.Leaves != nil {
			t.Fatal("leaves before Complete")
		}
		if err := r.Complete(context.Background(), ref); err != nil {
			t.Fatal(err)
		}
		if r.Scan.IndexHash() != direct.IndexHash() {
			t.Errorf("INDEX_HASH %s, direct %s", r.Scan.IndexHash(), direct.IndexHash())
		}
		n := 0
		all := map[int]bool{}
		for b := range 4096 {
			all[b] = true
		}
		if err := r.ReadBuckets(all, func(*verifier.SpillRecord) { n++ }); err != nil {
			t.Fatal(err)
		}
		if n != 500 {
			t.Errorf("%d records, want 500", n)
		}
	}
}

// TestMutualTLS: with client_ca the agent accepts only a client
// certificate its CA signed.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := mkCA(t, dir, "ca")
	other, otherKey := mkCA(t, dir, "other")
	mkLeaf(t, dir, "server", ca, caKey, true)
	mkLeaf(t, dir, "client", ca, caKey, false)
	mkLeaf(t, dir, "rogue", other, otherKey, false)
	s, pub := newServer(t, embeddedStore(t, 10), agent.Options{RequireClientCert: true})
	if err := s.Rescan(context.Background()); err != nil {
		t.Fatal(err)
	}
	tc, err := agent.ServerTLS(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(s)
	ts.TLS = tc
	ts.StartTLS()
	defer ts.Close()
	fetch := func(cert string) error {
		o := agent.HTTPOptions{CA: filepath.Join(dir, "ca.pem")}
		if cert != "" {
			o.Cert, o.Key = filepath.Join(dir, cert+".pem"), filepath.Join(dir, cert+".key")
		}
		hc, err := agent.NewHTTPClient(o)
		if err != nil {
			t.Fatal(err)
		}
		c := &agent.Client{URL: ts.URL, Token: token, Trusted: []ed25519.PublicKey{pub}, MaxAge: time.Hour, HTTP: hc}
		_, err = c.Fetch(context.Background(), agent.FetchOptions{})
		return err
	}
	if err := fetch("client"); err != nil {
		t.Errorf("with the client certificate: %v", err)
	}
	if err := fetch(""); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("without a client certificate: %v, want 403", err)
	}
	// A kubelet's readiness probe has no client certificate.
	hc, _ := agent.NewHTTPClient(agent.HTTPOptions{CA: filepath.Join(dir, "ca.pem")})
	resp, err := hc.Get(ts.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz without a client certificate: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if err := fetch("rogue"); err == nil {
		t.Errorf("with a certificate of another CA: accepted")
	}
}

func mkCA(t *testing.T, dir, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
	return c, k
}

func mkLeaf(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, server bool) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	writePEM(t, filepath.Join(dir, name+".key"), "PRIVATE KEY", kd)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
