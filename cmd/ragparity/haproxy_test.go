package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/gate/server"
)

// startHAProxy runs haproxy in the foreground with the given configuration
// until the test ends.
func startHAProxy(t *testing.T, conf, probeURL string) {
	t.Helper()
	bin := findRouter(t, "haproxy", "haproxy")
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, conf)
	}
	runRouter(t, "haproxy", exec.Command(bin, "-db", "-f", path), filepath.Join(dir, "haproxy.log"), syscall.SIGUSR1, probeURL, 10*time.Second)
}

// TestHAProxyHealthChecks runs the configuration serve --print-haproxy
// prints (with a short check interval) in front of two regions, HAProxy
// checking each on /v1/regions/{name}/ready: region b drifts, the real
// gate re-verifies, HAProxy takes b out within its check interval with no
// failed request, and brings it back after the repair.
func TestHAProxyHealthChecks(t *testing.T) {
	ra, rb := regionServer(t, "a"), regionServer(t, "b")
	g := startRouterGate(t)
	const inter, fall, rise = 200 * time.Millisecond, 2, 2
	listen := freePort(t)
	conf, err := server.RenderHAProxy(server.HAProxyConfig{
		Listen: listen, Ragparity: strings.TrimPrefix(g.url, "http://"), Inter: inter, Fall: fall, Rise: rise,
		Regions: []server.HAProxyRegion{{Name: "a", Addr: strings.TrimPrefix(ra.URL, "http://")}, {Name: "b", Addr: strings.TrimPrefix(rb.URL, "http://")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	front := "http://" + listen
	startHAProxy(t, conf, front+"/")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)
	// Checks start once haproxy is up: both servers rise first.
	switchWithin := inter*time.Duration(max(fall, rise)+1) + 2*time.Second

	expect := func(t *testing.T, hdr map[string]string, code int, body string) {
		t.Helper()
		r, err := nginxGet(client, front+"/search?q=x", hdr)
		if err != nil {
			t.Fatal(err)
		}
		if r.code != code || !strings.Contains(r.body, body) {
			t.Fatalf("GET %v = %d %q, want %d %q", hdr, r.code, r.body, code, body)
		}
	}
	t.Run("PinnedToHealthyRegion", func(t *testing.T) {
		l := startRouterLoad(client, front+"/search", map[string]string{"X-Region-Pin": "b"}, 1)
		l.waitServedBy(t, "b", switchWithin)
		l.stop.Store(true)
		l.wg.Wait()
		expect(t, map[string]string{"X-Region-Pin": "a"}, 200, "a")
	})

	t.Run("DriftTakesTheRegionOutAndRepairBringsItBack", func(t *testing.T) {
		gr := newGateRegions(t, g.signer, "a", "b")
		g.fv.useGate(gr.verify)
		if v := g.verify(t, client, "real gate"); v.Decision != gate.Pass {
			t.Fatalf("real gate before the drift: %s %+v", v.Decision, v.Regions)
		}
		l := startRouterLoad(client, front+"/search", map[string]string{"X-Region-Pin": "b"}, 4)
		l.waitServedBy(t, "b", switchWithin)

		gr.drift(t, "b")
		after := g.verify(t, client, "region b drifted")
		if rb, _ := after.Region("b"); after.Decision != gate.Degraded || rb.Admit {
			t.Fatalf("after the drift: %s, region b %+v", after.Decision, rb)
		}
		took := l.waitServedBy(t, "a", inter*time.Duration(fall+1)+2*time.Second)
		t.Logf("HAProxy moved b's traffic to a %s after the re-verification (checks every %s, fall %d)", took.Round(time.Millisecond), inter, fall)

		gr.repair(t, "b")
		if v := g.verify(t, client, "region b repaired"); v.Decision != gate.Pass {
			t.Fatalf("after the repair: %s %+v", v.Decision, v.Regions)
		}
		took = l.waitServedBy(t, "b", inter*time.Duration(rise+1)+2*time.Second)
		t.Logf("traffic returned to b %s after the repair was verified (rise %d)", took.Round(time.Millisecond), rise)
		l.finish(t, "haproxy")
	})

	t.Run("NoRegionAdmittedIs421", func(t *testing.T) {
		g.fv.set(nginxVerdict(map[string]bool{}))
		g.verify(t, client, "test")
		deadline := time.Now().Add(switchWithin)
		for {
			r, err := nginxGet(client, front+"/", map[string]string{"X-Region-Pin": "b"})
			if err != nil {
				t.Fatal(err)
			}
			if r.code == 421 && strings.Contains(r.body, "no admitted region") {
				break
			}
			if r.code >= 500 {
				t.Fatalf("%d %q reached the client", r.code, r.body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("still %d %q with no region admitted", r.code, r.body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("RagparityDownFailsClosedWith421", func(t *testing.T) {
		g.fv.set(nginxVerdict(map[string]bool{"a": true, "b": true}))
		g.verify(t, client, "test")
		expectEventually := func(code int, body string) {
			t.Helper()
			deadline := time.Now().Add(switchWithin)
			for {
				r, err := nginxGet(client, front+"/", map[string]string{"X-Region-Pin": "a"})
				if err != nil {
					t.Fatal(err)
				}
				if r.code == code && strings.Contains(r.body, body) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("got %d %q, want %d %q", r.code, r.body, code, body)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		expectEventually(200, "a")
		g.close()
		expectEventually(421, "no admitted region")
	})
}
