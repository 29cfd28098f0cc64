package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

// findRouter returns the path of a router binary the end-to-end tests
// run, failing (not skipping) when it is missing.
func findRouter(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin/", "/usr/bin/"} {
		if _, err := os.Stat(d + name); err == nil {
			return d + name
		}
	}
	t.Fatalf("%s is not installed (run make services, which installs Debian's %s)", name, pkg)
	return ""
}

// routerGate is ragparity serve's server for a router test: fake verdicts
// admitting regions a and b first, the real gate once useGate is called.
type routerGate struct {
	srv    *server.Server
	url    string // http://127.0.0.1:port
	fv     *nginxVerifier
	signer *gate.Signer
	close  func()
}

func startRouterGate(t *testing.T) *routerGate {
	t.Helper()
	g := &routerGate{fv: &nginxVerifier{}}
	g.fv.set(nginxVerdict(map[string]bool{"a": true, "b": true}))
	g.signer, _ = gate.LoadSigner("")
	srv, err := server.NewServer(server.ServerOptions{
		Verify: g.fv.Verify, Signer: g.signer, Token: "tok", Release: "r1",
		Routing: map[string][]string{"eu": {"a", "b"}, "us": {"b", "a"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	g.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { srv.Run(ctx); close(runDone) }()
	t.Cleanup(func() { cancel(); <-runDone })
	rp := httptest.NewServer(srv.Handler())
	t.Cleanup(rp.Close)
	g.url, g.close = rp.URL, rp.Close
	deadline := time.Now().Add(10 * time.Second)
	for srv.Current() == nil {
		if time.Now().After(deadline) {
			t.Fatal("no start-up verdict")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return g
}

// verify asks ragparity to re-verify now, as an operator or CI would.
func (g *routerGate) verify(t *testing.T, c *http.Client, reason string) *gate.Verdict {
	t.Helper()
	req, _ := http.NewRequest("POST", g.url+"/v1/verify", strings.NewReader(`{"reason": "`+reason+`"}`))
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /v1/verify: %d", resp.StatusCode)
	}
	return g.srv.Current()
}

// repair writes back the point drift changed.
func (g *gateRegions) repair(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	s, err := adapters.OpenVector(ctx, g.vectors[name])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Upsert(ctx, []parity.Point{vectortest.Points(parity.IDString, 200, 5)[17]}); err != nil {
		t.Fatal(err)
	}
}

// routerLoad sends requests pinned to one region through a router from
// a few workers until stopped, and keeps every answer.
type routerLoad struct {
	mu      sync.Mutex
	results []nginxResult
	errs    []error
	stop    atomic.Bool
	phase   atomic.Int32 // set by the test; each answer records it at send time
	wg      sync.WaitGroup
	last    atomic.Value // string: body of the newest answer
}

func startRouterLoad(c *http.Client, url string, hdr map[string]string, workers int) *routerLoad {
	l := &routerLoad{}
	l.last.Store("")
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stop.Load() {
				phase := l.phase.Load()
				r, err := nginxGet(c, url, hdr)
				r.phase = phase
				l.mu.Lock()
				if err != nil {
					l.errs = append(l.errs, err)
				} else {
					l.results = append(l.results, r)
					l.last.Store(r.body)
				}
				l.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

// waitServedBy waits until n answers in a row come from region want.
func (l *routerLoad) waitServedBy(t *testing.T, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		l.mu.Lock()
		n, ok := len(l.results), len(l.results) >= 20
		for i := n - 20; ok && i < n; i++ {
			ok = l.results[i].body == want
		}
		l.mu.Unlock()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("traffic pinned through the router did not reach region %s within %s (last answer %q)", want, within, l.last.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// servedIn counts the answers sent in phase p that region body served.
func (l *routerLoad) servedIn(p int32, body string) (n, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.results {
		if r.phase == p {
			total++
			if r.body == body {
				n++
			}
		}
	}
	return n, total
}

// finish stops the load and checks no answer was a 5xx or a transport
// error, and that both regions served.
func (l *routerLoad) finish(t *testing.T, router string) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	codes, bodies := map[int]int{}, map[string]int{}
	for _, r := range l.results {
		codes[r.code]++
		bodies[r.body]++
	}
	t.Logf("%d requests pinned to b through %s over drift and repair: codes %v, served by %v, transport errors %d",
		len(l.results)+len(l.errs), router, codes, bodies, len(l.errs))
	if len(l.errs) > 0 {
		t.Errorf("%d transport errors, first: %v", len(l.errs), l.errs[0])
	}
	for code, n := range codes {
		if code >= 500 {
			t.Errorf("%d responses with status %d reached the client", n, code)
		}
	}
	if bodies["a"] == 0 || bodies["b"] == 0 {
		t.Errorf("served by %v: want b (before the drift and after the repair) and a (between)", bodies)
	}
}
