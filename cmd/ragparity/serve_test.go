package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

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
	newVerifier = func(cfg *config.Config, _, _ string, _ server.Store, _ *gate.Signer) server.VerifyFunc {
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
		}
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
		req.Header.Set("X-Ragparity-Fallback", "route")
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
	t.Run("ServesEnvoyExtAuthzOnGRPCAddr", func(t *testing.T) {
		certFile, keyFile, pool := selfSigned(t)
		for _, tlsOn := range []bool{false, true} {
			t.Run(map[bool]string{false: "Plain", true: "TLS"}[tlsOn], func(t *testing.T) {
				addr, gaddr := freePort(t), freePort(t)
				gateYAML, scheme := "", "http"
				creds := insecure.NewCredentials()
				httpc := &http.Client{Timeout: 5 * time.Second}
				if tlsOn {
					gateYAML, scheme = fmt.Sprintf("  tls_cert: %s\n  tls_key: %s\n", certFile, keyFile), "https"
					creds = credentials.NewTLS(&tls.Config{RootCAs: pool})
					httpc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
				}
				r := startServe(t, "--config", serveConfig(t, gateYAML), "--addr", addr, "--grpc-addr", gaddr)
				waitHTTP(t, httpc, scheme+"://"+addr+"/readyz", r).Body.Close()
				conn, err := grpc.NewClient(gaddr, grpc.WithTransportCredentials(creds))
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
					Http: &authv3.AttributeContext_HttpRequest{Path: "/search", Headers: map[string]string{"x-region-pin": "eu-west", "x-release": "r7"}}}}})
				if err != nil {
					t.Fatal(err)
				}
				// eu-west is blocked by the fake gate: 421 naming us-east.
				d := resp.GetDeniedResponse()
				route := ""
				for _, h := range d.GetHeaders() {
					if h.GetHeader().GetKey() == "x-route-region" {
						route = h.GetHeader().GetValue()
					}
				}
				if d.GetStatus().GetCode() != 421 || route != "us-east" {
					t.Fatalf("Check through serve: %v", resp)
				}
			})
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
	t.Run("PrintHAProxy", func(t *testing.T) {
		code, out, errOut := runCLI(t, "serve", "--config", serveConfig(t, ""), "--print-haproxy", "--addr", "10.0.0.5:8080")
		if code != 0 {
			t.Fatal(errOut)
		}
		for _, want := range []string{"option httpchk GET /v1/regions/eu-west/ready", "option httpchk GET /v1/regions/us-east/ready",
			"server eu-west eu-west.example.internal:8000 check addr 10.0.0.5 port 8080 inter 2000ms fall 2 rise 2",
			"server us-east us-east.example.internal:8000 track rp_region_us_east/us-east", "http-send-name-header X-Route-Region"} {
			if !strings.Contains(out, want) {
				t.Errorf("--print-haproxy lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("PrintEnvoy", func(t *testing.T) {
		code, out, errOut := runCLI(t, "serve", "--config", serveConfig(t, "  grpc_addr: 10.1.2.3:9444\n"), "--print-envoy")
		if code != 0 {
			t.Fatal(errOut)
		}
		for _, want := range []string{"envoy.filters.http.ext_authz", "socket_address: { address: 10.1.2.3, port_value: 9444 }",
			"key: x-ragparity-fallback", `string_match: { exact: "us-east" }`, "route: { cluster: region_eu_west }"} {
			if !strings.Contains(out, want) {
				t.Errorf("--print-envoy lacks %q:\n%s", want, out)
			}
		}
		code, _, errOut = runCLI(t, "serve", "--config", serveConfig(t, ""), "--print-envoy", "--grpc-addr", "nope")
		if code == 0 || !strings.Contains(errOut, `--grpc-addr / gate.grpc_addr "nope"`) {
			t.Errorf("a bad --grpc-addr: exit %d, %s", code, errOut)
		}
	})
	t.Run("PrintK8sAndArgo", func(t *testing.T) {
		code, out, errOut := runCLI(t, "serve", "--config", serveConfig(t, ""), "--print-k8s", "--addr", "0.0.0.0:9090")
		if code != 0 {
			t.Fatal(errOut)
		}
		for _, want := range []string{"path: /v1/regions/eu-west/ready", "name: search-us-east", `"--addr", "0.0.0.0:9090"`, "httpGet: {path: /readyz, port: http}"} {
			if !strings.Contains(out, want) {
				t.Errorf("--print-k8s lacks %q:\n%s", want, out)
			}
		}
		code, out, errOut = runCLI(t, "serve", "--config", serveConfig(t, ""), "--print-argo")
		if code != 0 {
			t.Fatal(errOut)
		}
		for _, want := range []string{"kind: AnalysisTemplate", "url: http://ragparity.default.svc.cluster.local:8080/v1/verdicts/latest", `failureCondition: result == "fail"`} {
			if !strings.Contains(out, want) {
				t.Errorf("--print-argo lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("PrintedConfigsCarryNoToken", func(t *testing.T) {
		cfg := serveConfig(t, "  token: ${RP_SERVE_TOKEN}\n")
		for _, flag := range []string{"--print-nginx", "--print-haproxy", "--print-caddy", "--print-envoy", "--print-k8s", "--print-argo"} {
			code, out, errOut := runCLI(t, "serve", "--config", cfg, flag)
			if code != 0 || len(out) < 200 {
				t.Fatalf("%s: exit %d, %d bytes: %s", flag, code, len(out), errOut)
			}
			if strings.Contains(out+errOut, "serve-token") {
				t.Errorf("%s prints the token", flag)
			}
		}
	})
	t.Run("OnePrintAtATime", func(t *testing.T) {
		code, _, errOut := runCLI(t, "serve", "--config", serveConfig(t, ""), "--print-k8s", "--print-caddy")
		if code != ExitUnknown || !strings.Contains(errOut, "--print-caddy, --print-k8s: print one configuration at a time") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("PrintCaddy", func(t *testing.T) {
		code, out, errOut := runCLI(t, "serve", "--config", serveConfig(t, ""), "--print-caddy")
		if code != 0 {
			t.Fatal(errOut)
		}
		for _, want := range []string{"forward_auth 127.0.0.1:8080 {", "copy_headers X-Route-Region", "header_up X-Ragparity-Fallback route",
			"@region_eu_west header X-Route-Region eu-west", "reverse_proxy @region_us_east us-east.example.internal:8000"} {
			if !strings.Contains(out, want) {
				t.Errorf("--print-caddy lacks %q:\n%s", want, out)
			}
		}
		// The printed Caddyfile is valid for the real caddy.
		path := filepath.Join(t.TempDir(), "Caddyfile")
		os.WriteFile(path, []byte(out), 0o644)
		cmd := exec.Command(findRouter(t, "caddy", "caddy"), "validate", "--adapter", "caddyfile", "--config", path)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("caddy validate: %v\n%s", err, b)
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

// TestServeFenceAPI: with --fence-api, serve answers the fence for the
// application's writers on every region's Redis dedupe_kv, behind the
// bearer token; without a Redis dedupe_kv it refuses to start.
func TestServeFenceAPI(t *testing.T) {
	fakeGate(t, map[string]bool{"eu-west": true, "us-east": true})
	dir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf(`release: r7
cache_dir: %s
regions:
  - name: eu-west
    dedupe_kv: %q
  - name: us-east
    dedupe_kv: %q
gate:
  token: fence-token
`, dir, redisTestURL(), redisTestURL()))
	addr := freePort(t)
	s := startServe(t, "--config", cfg, "--addr", addr, "--fence-api")
	hc := &http.Client{Timeout: 5 * time.Second}
	resp := waitHTTP(t, hc, "http://"+addr+"/readyz", s)
	resp.Body.Close()
	post := func(path, token, body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", "http://"+addr+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	src := fmt.Sprintf("doc-%d", time.Now().UnixNano())
	claim := fmt.Sprintf(`{"region": "eu-west", "source_id": %q, "revision": "r1", "index_hash": "ih", "partition": "p", "owner": "w1"}`, src)
	if code, _ := post("/v1/fence/claim", "", claim); code != 401 {
		t.Errorf("claim without the token: %d, want 401", code)
	}
	code, m := post("/v1/fence/claim", "fence-token", claim)
	if code != 200 || m["state"] != "acquired" {
		t.Fatalf("claim: %d %v", code, m)
	}
	if code, m := post("/v1/fence/done", "fence-token", fmt.Sprintf(`{"region": "eu-west", "key": %q, "owner": "w1"}`, m["key"])); code != 200 || m["duplicate"] != false {
		t.Errorf("done: %d %v", code, m)
	}
	if code, m := post("/v1/fence/claim", "fence-token", claim); code != 200 || m["state"] != "done" {
		t.Errorf("replayed claim: %d %v, want done (skip the write)", code, m)
	}
	// Admission still answers beside it.
	resp, err := hc.Get("http://" + addr + "/v1/admit")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("admit beside the fence API: %d", resp.StatusCode)
	}

	bolt := writeConfig(t, fmt.Sprintf("release: r7\ncache_dir: %s\nregions:\n  - name: a\n    dedupe_kv: %q\ngate:\n  token: x\n", dir, "file://"+filepath.Join(dir, "f.db")))
	if code, _, errOut := runCLI(t, "serve", "--config", bolt, "--addr", freePort(t), "--fence-api"); code != ExitUnknown || !strings.Contains(errOut, "needs a redis:// dedupe_kv") {
		t.Errorf("--fence-api on a bbolt dedupe_kv: exit %d: %s", code, errOut)
	}
}
