package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

// freePort returns a loopback address nobody listens on (yet).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func findNginx(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Fatal("nginx is not installed (run make services, which installs Debian's nginx-light)")
	return ""
}

// startNginx runs nginx in the foreground with the given http{} body,
// until the test ends.
func startNginx(t *testing.T, httpBody, probeURL string) {
	t.Helper()
	bin := findNginx(t)
	dir := t.TempDir()
	for _, d := range []string{"tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, d), 0o777) // workers may run as nobody
	}
	os.Chmod(dir, 0o755)
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
%[2]s
}
`, dir, httpBody)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-p", dir, "-e", filepath.Join(dir, "logs", "error.log"), "-c", confPath).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, out, conf)
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "logs", "error.log"), "-c", confPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	runRouter(t, "nginx", cmd, filepath.Join(dir, "logs", "error.log"), syscall.SIGQUIT, probeURL, 10*time.Second)
}

// regionServer answers every request with its region's name.
func regionServer(t *testing.T, name string) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", name)
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// nginxVerifier returns the verdicts the test sets, or those of the real
// gate once useGate is called.
type nginxVerifier struct {
	mu   sync.Mutex
	n    int
	v    func(created time.Time) *gate.Verdict
	real server.VerifyFunc
}

func (f *nginxVerifier) set(v func(time.Time) *gate.Verdict) {
	f.mu.Lock()
	f.v, f.real = v, nil
	f.mu.Unlock()
}
func (f *nginxVerifier) useGate(real server.VerifyFunc) { f.mu.Lock(); f.real = real; f.mu.Unlock() }
func (f *nginxVerifier) Verify(ctx context.Context) (*gate.Verdict, *gate.Detail, error) {
	f.mu.Lock()
	real := f.real
	if real == nil {
		defer f.mu.Unlock()
		f.n++
		return f.v(time.Now().UTC().Add(time.Duration(f.n) * time.Millisecond)), nil, nil
	}
	f.mu.Unlock()
	return real(ctx)
}

// gateRegions are regions a and b for the real gate: embedded stores
// holding the same points, warm file fences, and health contracts that
// claim what the gate computed at set-up (as the regions' deploys would).
type gateRegions struct {
	vectors map[string]string
	verify  server.VerifyFunc
}

func newGateRegions(t *testing.T, signer *gate.Signer, names ...string) *gateRegions {
	t.Helper()
	ctx := context.Background()
	g := &gateRegions{vectors: map[string]string{}}
	var mu sync.Mutex
	claims := map[string]string{}
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ih := claims[strings.TrimPrefix(r.URL.Path, "/")]
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"schema_rev": "s1", "model_tag": "m1", "secrets_rev": "k1", "index_hash": %q}`, ih)
	}))
	t.Cleanup(health.Close)
	cfgText := "release: r1\ngate:\n  skip: [blobs, probes]\n  primary: a\n  routing:\n    eu: [a, b]\n    us: [b, a]\nregions:\n"
	for _, r := range names {
		u := fmt.Sprintf("embedded://%s?collection=chunks", t.TempDir())
		s, err := adapters.OpenVector(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		vectortest.Load(t, s, vectortest.Spec(parity.IDString), vectortest.Points(parity.IDString, 200, 5))
		s.Close()
		g.vectors[r] = u
		kv := "file://" + filepath.Join(t.TempDir(), "fence.db")
		f, err := fence.Open(kv, "")
		if err != nil {
			t.Fatal(err)
		}
		f.MarkWarm(ctx, fence.DedupeStat{Misses: 200})
		f.Close()
		cfgText += fmt.Sprintf("  - name: %s\n    vectors: %q\n    health: %q\n    dedupe_kv: %q\n", r, u, health.URL+"/"+r, kv)
	}
	cfg, err := config.Load(writeConfig(t, cfgText))
	if err != nil {
		t.Fatal(err)
	}
	g.verify = newVerifier(cfg, "", "", nil, signer)
	v, _, err := g.verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for _, r := range v.Regions {
		claims[r.Name] = r.IndexHash
	}
	mu.Unlock()
	return g
}

// drift changes one point's vector in region name, as a partial reindex
// would.
func (g *gateRegions) drift(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	s, err := adapters.OpenVector(ctx, g.vectors[name])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := vectortest.Points(parity.IDString, 200, 5)[17]
	p.Vectors[0].Values[0] += 0.25
	if err := s.Upsert(ctx, []parity.Point{p}); err != nil {
		t.Fatal(err)
	}
}

func nginxVerdict(admit map[string]bool) func(time.Time) *gate.Verdict {
	return func(created time.Time) *gate.Verdict {
		v := &gate.Verdict{Release: "r1", CreatedAt: created, ExpiresAt: created.Add(time.Hour), Decision: gate.Pass, InputsDigest: "d"}
		for _, name := range []string{"a", "b"} {
			r := gate.RegionVerdict{Name: name, Admit: admit[name], IndexHash: "h1", SchemaRev: "s1", ModelTag: "m1"}
			if !r.Admit {
				r.IndexHash = "h2"
				r.Reasons = []string{"failed index_hash"}
				v.Decision = gate.Fail
			}
			v.Regions = append(v.Regions, r)
		}
		return v
	}
}

type nginxResult struct {
	code   int
	body   string
	reason string
	after  bool  // sent after the re-verification returned
	phase  int32 // routerLoad: the load's phase when it was sent
}

func nginxGet(c *http.Client, url string, hdr map[string]string) (nginxResult, error) {
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nginxResult{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return nginxResult{code: resp.StatusCode, body: string(b), reason: resp.Header.Get("X-Ragparity-Reason")}, nil
}

// TestNginxAuthRequest runs the documented nginx configuration (serve
// --help, --print-nginx) in front of two regions, with ragparity as its
// auth_request target, and drifts region b while requests pinned to it
// flow.
func TestNginxAuthRequest(t *testing.T) {
	ra, rb := regionServer(t, "a"), regionServer(t, "b")
	rg := startRouterGate(t)
	fv, signer, srv := rg.fv, rg.signer, rg.srv

	listen := freePort(t)
	body, err := server.RenderNginx(server.NginxConfig{
		Listen: listen, Ragparity: strings.TrimPrefix(rg.url, "http://"), Refused: freePort(t),
		Regions: []server.NginxRegion{{Name: "a", Addr: strings.TrimPrefix(ra.URL, "http://")}, {Name: "b", Addr: strings.TrimPrefix(rb.URL, "http://")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	front := "http://" + listen
	startNginx(t, body, front+"/")
	expect, client := routerExpect(t, "nginx", front)
	t.Run("NoMatchingRegionIs421Not503", func(t *testing.T) {
		expect(t, "/", map[string]string{"X-Index-Hash": "h9"}, 421, "no admitted region matches")
	})
	t.Run("ClientFallbackHeaderIsReplaced", func(t *testing.T) {
		// nginx sets X-Ragparity-Fallback itself (a client's value would
		// be a 400 from ragparity).
		expect(t, "/", map[string]string{"X-Region-Pin": "a", "X-Ragparity-Fallback": "no"}, 200, "a")
	})

	t.Run("DriftSwitchesPinnedTrafficWithoutA5xx", func(t *testing.T) {
		// The real gate from here: region b's index really drifts and the
		// re-verification really computes it.
		g := newGateRegions(t, signer, "a", "b")
		fv.useGate(g.verify)
		before, err := srv.VerifyNow(context.Background(), "real gate")
		if err != nil {
			t.Fatal(err)
		}
		if before.Decision != gate.Pass || before.Regions[0].IndexHash != before.Regions[1].IndexHash {
			t.Fatalf("real gate before the drift: %s, regions %+v, checks %+v", before.Decision, before.Regions, before.Checks)
		}
		ih := before.Regions[0].IndexHash
		const workers, perWorker = 4, 400
		var switched atomic.Bool
		var mu sync.Mutex
		var results []nginxResult
		var errs []error
		var wg sync.WaitGroup
		var sent atomic.Int64
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perWorker {
					after := switched.Load()
					r, err := nginxGet(client, front+"/search?q=x", map[string]string{"X-Region-Pin": "b", "X-Release": "r1", "X-Index-Hash": ih})
					sent.Add(1)
					r.after = after
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else {
						results = append(results, r)
					}
					mu.Unlock()
				}
			}()
		}
		// Region b's index drifts; ragparity re-verifies mid-stream.
		for sent.Load() < workers*perWorker/3 {
			time.Sleep(time.Millisecond)
		}
		g.drift(t, "b")
		rg.verify(t, client, "region b drifted")
		switched.Store(true)
		wg.Wait()
		after := srv.Current()
		if rb, _ := after.Region("b"); after.Decision != gate.Degraded || rb.Admit || rb.Status != gate.Fail || !strings.Contains(strings.Join(rb.Reasons, " "), "index_hash") {
			t.Fatalf("after the drift: decision %s, region b %+v", after.Decision, rb)
		}

		codes := map[int]int{}
		bodies := map[string]int{}
		var afterToB int
		for _, r := range results {
			codes[r.code]++
			bodies[r.body]++
			if r.after && r.body == "b" {
				afterToB++
			}
		}
		t.Logf("%d requests pinned to b through nginx during the switch: codes %v, served by %v, transport errors %d",
			len(results)+len(errs), codes, bodies, len(errs))
		if len(errs) > 0 {
			t.Errorf("transport errors: %v", errs[0])
		}
		for code, n := range codes {
			if code >= 500 {
				t.Errorf("%d responses with status %d reached the client", n, code)
			}
		}
		if afterToB > 0 {
			t.Errorf("%d requests sent after the re-verification still reached region b", afterToB)
		}
		if bodies["a"] == 0 || bodies["b"] == 0 {
			t.Errorf("served by %v: want both b (before) and a (after the switch)", bodies)
		}
	})

	t.Run("PinnedToBlockedRegionFollowsTheAlternative", func(t *testing.T) {
		// nginx sends X-Ragparity-Fallback: route, so ragparity answers 200
		// naming region a instead of 421, and nginx routes there.
		expect(t, "/search", map[string]string{"X-Region-Pin": "b"}, 200, "a")
	})
	t.Run("NoRegionAdmittedIs421", func(t *testing.T) {
		fv.set(nginxVerdict(map[string]bool{}))
		if _, err := srv.VerifyNow(context.Background(), "test"); err != nil {
			t.Fatal(err)
		}
		expect(t, "/", map[string]string{"X-Region-Pin": "b"}, 421, "region b not admitted")
	})
	t.Run("RagparityDownFailsClosedWith421", func(t *testing.T) {
		rg.close()
		expect(t, "/", map[string]string{"X-Region-Pin": "a"}, 421, "no admitted region")
	})
}
