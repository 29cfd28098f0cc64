package main

import (
	"net"
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

// startCaddy runs caddy with the given Caddyfile until the test ends.
func startCaddy(t *testing.T, caddyfile, probeURL string) {
	t.Helper()
	bin := findRouter(t, "caddy", "caddy")
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	validate := exec.Command(bin, "validate", "--adapter", "caddyfile", "--config", path)
	validate.Env = env
	if out, err := validate.CombinedOutput(); err != nil {
		t.Fatalf("caddy validate: %v\n%s\n%s", err, out, caddyfile)
	}
	cmd := exec.Command(bin, "run", "--adapter", "caddyfile", "--config", path)
	cmd.Env = env
	runRouter(t, "caddy", cmd, filepath.Join(dir, "caddy.log"), syscall.SIGTERM, probeURL, 15*time.Second)
}

// TestCaddyForwardAuth runs the Caddyfile serve --print-caddy prints in
// front of two regions, with ragparity as its forward_auth target, and
// drifts region b while requests pinned to it flow, then repairs it.
func TestCaddyForwardAuth(t *testing.T) {
	ra, rb := regionServer(t, "a"), regionServer(t, "b")
	g := startRouterGate(t)
	listen := freePort(t)
	_, port, _ := net.SplitHostPort(listen)
	cf, err := server.RenderCaddy(server.CaddyConfig{
		Site: ":" + port, Bind: "127.0.0.1", Ragparity: strings.TrimPrefix(g.url, "http://"),
		Regions: []server.CaddyRegion{{Name: "a", Addr: strings.TrimPrefix(ra.URL, "http://")}, {Name: "b", Addr: strings.TrimPrefix(rb.URL, "http://")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	front := "http://" + listen
	startCaddy(t, cf, front+"/")
	expect, client := routerExpect(t, "caddy", front)
	t.Run("ClientCannotChooseTheRouteItself", func(t *testing.T) {
		expect(t, "/search", map[string]string{"X-Region-Pin": "a", "X-Route-Region": "b"}, 200, "a")
	})
	t.Run("NoMatchingRegionIs421Not503", func(t *testing.T) {
		expect(t, "/", map[string]string{"X-Index-Hash": "h9"}, 421, "no admitted region matches")
	})

	t.Run("DriftSwitchesPinnedTrafficAndRepairReturnsIt", func(t *testing.T) {
		gr := newGateRegions(t, g.signer, "a", "b")
		g.fv.useGate(gr.verify)
		before := g.verify(t, client, "real gate")
		if before.Decision != gate.Pass {
			t.Fatalf("real gate before the drift: %s %+v", before.Decision, before.Regions)
		}
		hdr := map[string]string{"X-Region-Pin": "b", "X-Release": "r1", "X-Index-Hash": before.Regions[0].IndexHash[:16]}
		l := startRouterLoad(client, front+"/search?q=x", hdr, 4)
		l.waitServedBy(t, "b", 5*time.Second)
		gr.drift(t, "b")
		if v := g.verify(t, client, "region b drifted"); v.Decision != gate.Degraded {
			t.Fatalf("after the drift: %s %+v", v.Decision, v.Regions)
		}
		// forward_auth asks on every request: every one sent from now on
		// goes to a.
		l.phase.Store(1)
		l.waitServedBy(t, "a", 5*time.Second)
		l.phase.Store(2)
		if n, total := l.servedIn(1, "b"); n > 0 || total == 0 {
			t.Errorf("%d of %d requests sent after the re-verification reached drifted b", n, total)
		}
		gr.repair(t, "b")
		if v := g.verify(t, client, "region b repaired"); v.Decision != gate.Pass {
			t.Fatalf("after the repair: %s %+v", v.Decision, v.Regions)
		}
		l.waitServedBy(t, "b", 5*time.Second)
		l.finish(t, "caddy")
	})

	t.Run("NoRegionAdmittedIs421", func(t *testing.T) {
		g.fv.set(nginxVerdict(map[string]bool{}))
		g.verify(t, client, "test")
		expect(t, "/", map[string]string{"X-Region-Pin": "b"}, 421, "region b not admitted")
	})
	t.Run("RagparityDownFailsClosedWith421", func(t *testing.T) {
		g.close()
		expect(t, "/", map[string]string{"X-Region-Pin": "a"}, 421, "no admitted region")
	})
}
