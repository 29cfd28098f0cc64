package main

import (
	"net/http"
	"os"
	"os/exec"
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
