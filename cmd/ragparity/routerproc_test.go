package main

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runRouter starts a router process (nginx, haproxy, caddy) until the test
// ends: its output goes to logPath unless the command already says where,
// the log is printed when the test failed, stop ends it gracefully (a kill
// after 10 s), and runRouter returns once probeURL answers (within wait).
func runRouter(t *testing.T, name string, cmd *exec.Cmd, logPath string, stop os.Signal, probeURL string, wait time.Duration) {
	t.Helper()
	if cmd.Stdout == nil {
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { logf.Close() })
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(stop)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log %s:\n%s", name, logPath, b)
		}
	})
	deadline := time.Now().Add(wait)
	for {
		resp, err := http.Get(probeURL)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer on %s: %v", name, probeURL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// routerExpect returns a check of one GET through a router's front (and
// the client it uses) and
// runs the cases every router in front of regions a and b must pass: a pin
// to an admitted region is served by it (a POST body reaches the region),
// the client's region picks the nearest admitted region, and another
// release is 409.
func routerExpect(t *testing.T, router, front string) (func(t *testing.T, path string, hdr map[string]string, code int, bodyOrReason string), *http.Client) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(client.CloseIdleConnections)
	expect := func(t *testing.T, path string, hdr map[string]string, code int, bodyOrReason string) {
		t.Helper()
		r, err := nginxGet(client, front+path, hdr)
		if err != nil {
			t.Fatal(err)
		}
		if r.code != code || !strings.Contains(r.body+r.reason, bodyOrReason) {
			t.Fatalf("GET %s %v = %d %q (reason %q), want %d %q", path, hdr, r.code, r.body, r.reason, code, bodyOrReason)
		}
	}
	t.Run("PinnedToAdmittedRegion", func(t *testing.T) {
		expect(t, "/search?q=x", map[string]string{"X-Region-Pin": "b", "X-Release": "r1"}, 200, "b")
		expect(t, "/search?q=x", map[string]string{"X-Region-Pin": "a"}, 200, "a")
		resp, err := client.Post(front+"/ingest", "application/json", strings.NewReader(`{"doc": 1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST through %s: %d", router, resp.StatusCode)
		}
	})
	t.Run("NearestByClientRegion", func(t *testing.T) {
		expect(t, "/search?client_region=us", nil, 200, "b")
		expect(t, "/search", map[string]string{"X-Client-Region": "eu"}, 200, "a")
	})
	t.Run("OtherReleaseIs409", func(t *testing.T) {
		expect(t, "/", map[string]string{"X-Region-Pin": "a", "X-Release": "r0"}, 409, "verdict is for release r1")
	})
	return expect, client
}
