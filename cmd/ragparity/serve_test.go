package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
)

// syncBuffer is a bytes.Buffer safe for the server's log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// fakeGate replaces the verifier serve wires to gate.Run.
func fakeGate(t *testing.T, admit map[string]bool) {
	t.Helper()
	old := newVerifier
	t.Cleanup(func() { newVerifier = old })
	newVerifier = func(cfg *config.Config, goldset string, signer *gate.Signer, _ func(context.Context) (*gate.Baseline, []ed25519.PublicKey, error)) (server.VerifyFunc, error) {
		if goldset == "missing" {
			return nil, fmt.Errorf("goldset %s: no such file", goldset)
		}
		var mu sync.Mutex
		n := 0
		return func(ctx context.Context) (*gate.Verdict, *gate.Detail, error) {
			mu.Lock()
			n++
			created := time.Now().UTC().Add(time.Duration(n) * time.Millisecond)
			mu.Unlock()
			v := &gate.Verdict{Release: cfg.Release, CreatedAt: created, ExpiresAt: created.Add(cfg.Gate.VerdictTTL), Decision: gate.Pass}
			for _, r := range cfg.Regions {
				v.Regions = append(v.Regions, gate.RegionVerdict{Name: r.Name, Admit: admit[r.Name], IndexHash: "h1"})
			}
			return v, nil, nil
		}, nil
	}
}

type serveRun struct {
	cancel context.CancelFunc
	done   chan int
	stderr *syncBuffer
	stdout *syncBuffer
}

func startServe(t *testing.T, args ...string) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &serveRun{cancel: cancel, done: make(chan int, 1), stderr: &syncBuffer{}, stdout: &syncBuffer{}}
	// In process (--verify-nice 0): the test binary cannot be re-run as
	// 'ragparity verify', and tests replace newVerifier.
	go func() {
		r.done <- run(ctx, append([]string{"serve", "--verify-nice", "0"}, args...), r.stdout, r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop within 15s of its context ending")
		}
	})
	return r
}

func waitHTTP(t *testing.T, c *http.Client, url string, r *serveRun) *http.Response {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil && resp.StatusCode == 200 {
			return resp
		}
		if err == nil {
			resp.Body.Close()
		}
		select {
		case code := <-r.done:
			t.Fatalf("serve exited %d: %s", code, r.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v\n%s", url, err, r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func serveConfig(t *testing.T, gateYAML string) string {
	dir := t.TempDir()
	return writeConfig(t, fmt.Sprintf(`release: r7
cache_dir: %s
regions:
  - name: eu-west
  - name: us-east
gate:
  verdict_ttl: 10m
  routing:
    eu: [eu-west, us-east]
%s`, dir, gateYAML))
}

func TestServe(t *testing.T) {
	fakeGate(t, map[string]bool{"eu-west": false, "us-east": true})
	keys := filepath.Join(t.TempDir(), "keys")
	if code, _, e := runCLI(t, "verdict", "keygen", "--out", keys); code != 0 {
		t.Fatal(e)
	}
	t.Setenv("RP_SERVE_TOKEN", "serve-token")

	t.Run("RefusesPublicAddressWithoutToken", func(t *testing.T) {
		cfg := serveConfig(t, "")
		code, _, errOut := runCLI(t, "serve", "--config", cfg, "--addr", "0.0.0.0:0")
		if code != ExitUnknown || !strings.Contains(errOut, "without gate.token") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("BadReportPathFailsAtStart", func(t *testing.T) {
		cfg := serveConfig(t, "")
		code, _, errOut := runCLI(t, "serve", "--config", cfg, "--addr", "127.0.0.1:0", "--report", "out.pdf")
		if code != ExitUnknown || !strings.Contains(errOut, "--report") || !strings.Contains(errOut, "out.pdf") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("BadGoldsetFailsAtStart", func(t *testing.T) {
		cfg := serveConfig(t, "")
		code, _, errOut := runCLI(t, "serve", "--config", cfg, "--addr", "127.0.0.1:0", "--goldset", "missing")
		if code != ExitUnknown || !strings.Contains(errOut, "goldset") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("ServesAndVerifiesOnRequest", func(t *testing.T) {
		addr := freePort(t)
		cfg := serveConfig(t, fmt.Sprintf("  token: ${RP_SERVE_TOKEN}\n  signing_key: %s\n", filepath.Join(keys, gate.PrivateKeyFile)))
		report := filepath.Join(t.TempDir(), "gate.json")
		r := startServe(t, "--config", cfg, "--addr", addr, "--json", "--report", report)
		c := &http.Client{Timeout: 5 * time.Second}
		base := "http://" + addr
		waitHTTP(t, c, base+"/readyz", r).Body.Close()

		req, _ := http.NewRequest("GET", base+"/v1/admit?client_region=eu", nil)
		req.Header.Set("X-Region-Pin", "eu-west")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Route-Region") != "us-east" {
			t.Fatalf("admit: %d %q", resp.StatusCode, resp.Header.Get("X-Route-Region"))
		}

		resp, _ = c.Post(base+"/v1/verify", "application/json", nil)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("POST /v1/verify without token: %d", resp.StatusCode)
		}
		req, _ = http.NewRequest("POST", base+"/v1/verify", strings.NewReader(`{"reason":"cli test"}`))
		req.Header.Set("Authorization", "Bearer serve-token")
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST /v1/verify: %d %s", resp.StatusCode, body)
		}
		// The served verdict verifies with the configured key's public half.
		vf := filepath.Join(t.TempDir(), "latest.json")
		os.WriteFile(vf, body, 0o644)
		if code, out, e := runCLI(t, "verdict", "verify", vf, "--key", filepath.Join(keys, gate.PublicKeyFile)); code != 0 {
			t.Fatalf("verdict verify of the served verdict: exit %d %s %s", code, out, e)
		}
		var v gate.Verdict
		json.Unmarshal(body, &v)
		if strings.HasPrefix(v.KeyID, gate.EphemeralKeyPrefix) {
			t.Fatalf("key_id %q with a configured key", v.KeyID)
		}
		// --report is rewritten after each verification: it now holds
		// the verdict POST /v1/verify returned.
		rb, err := os.ReadFile(report)
		if err != nil {
			t.Fatalf("--report: %v\n%s", err, r.stderr)
		}
		var rep gate.Verdict // report.json is the verdict plus its details
		if err := json.Unmarshal(rb, &rep); err != nil || rep.ID != v.ID {
			t.Fatalf("report holds verdict %q (%v), want %q:\n%.300s", rep.ID, err, v.ID, rb)
		}
		resp, _ = c.Get(base + "/metrics")
		mb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(mb), `ragparity_gate_region_admitted{region="us-east",release_id="r7"`) {
			t.Fatalf("metrics lack region_admitted:\n%s", mb)
		}
		r.cancel()
		if code := <-r.done; code != 0 {
			t.Fatalf("serve exit %d after its context ended: %s", code, r.stderr)
		}
		r.done <- 0 // for the cleanup
		if !strings.Contains(r.stderr.String(), `"msg":"serving verdict"`) {
			t.Errorf("no JSON log of the served verdict:\n%s", r.stderr)
		}
		// The verdicts went to the default store under cache_dir.
		c2, _ := config.Load(cfg)
		if _, err := os.Stat(filepath.Join(c2.CacheRoot(), "verdicts.db")); err != nil {
			t.Errorf("default SQLite store: %v", err)
		}
	})
	t.Run("EphemeralKeyOnLoopbackWithoutToken", func(t *testing.T) {
		addr := freePort(t)
		r := startServe(t, "--config", serveConfig(t, ""), "--addr", addr)
		c := &http.Client{Timeout: 5 * time.Second}
		resp := waitHTTP(t, c, "http://"+addr+"/v1/verdicts/latest", r)
		var v gate.Verdict
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if !strings.HasPrefix(v.KeyID, gate.EphemeralKeyPrefix) {
			t.Fatalf("key_id %q, want ephemeral-...", v.KeyID)
		}
		if s := r.stderr.String(); !strings.Contains(s, "ephemeral key") || !strings.Contains(s, "BEGIN PUBLIC KEY") {
			t.Fatalf("the ephemeral public key is not logged:\n%s", s)
		}
	})
	t.Run("TLS", func(t *testing.T) {
		certFile, keyFile, pool := selfSigned(t)
		addr := freePort(t)
		r := startServe(t, "--config", serveConfig(t, fmt.Sprintf("  tls_cert: %s\n  tls_key: %s\n", certFile, keyFile)), "--addr", addr)
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		waitHTTP(t, c, "https://"+addr+"/healthz", r).Body.Close()
		if resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Fatal("plain HTTP answered on a TLS listener")
			}
		}
	})
	t.Run("PrintNginx", func(t *testing.T) {
		code, out, errOut := runCLI(t, "serve", "--config", serveConfig(t, ""), "--print-nginx")
		if code != 0 {
			t.Fatal(errOut)
		}
		for _, want := range []string{"auth_request     /_ragparity_admit;", `"eu-west" region_eu_west;`, "upstream region_us_east", "error_page 500 = @ragparity_refused;", "server 127.0.0.1:8080;"} {
			if !strings.Contains(out, want) {
				t.Errorf("--print-nginx lacks %q:\n%s", want, out)
			}
		}
	})
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ragparity test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
