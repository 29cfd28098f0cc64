package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

// The real binary's serve verifies in a niced child by default: it must
// still hold a verdict it signed itself, with the child's detail, and
// admit.
func TestServeVerifiesInAChild(t *testing.T) {
	bin := ragparityBin(t)
	dir := t.TempDir()
	var regions strings.Builder
	for _, r := range []string{"a", "b"} {
		u := fmt.Sprintf("embedded://%s?collection=chunks", filepath.Join(dir, r))
		s, err := adapters.OpenVector(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		vectortest.Load(t, s, vectortest.Spec(parity.IDString), vectortest.Points(parity.IDString, 200, 5))
		s.Close()
		fmt.Fprintf(&regions, "  - name: %s\n    vectors: %q\n", r, u)
	}
	cfg := writeConfig(t, fmt.Sprintf("release: r-child\ncache_dir: %q\ngate:\n  skip: [blobs, health, probes, dedupe_kv]\nregions:\n%s", filepath.Join(dir, "cache"), regions.String()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfg, "--addr", addr)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := c.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never held a verdict:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := c.Get("http://" + addr + "/v1/verdicts/latest")
	if err != nil {
		t.Fatal(err)
	}
	var v gate.Verdict
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if v.Decision != gate.Pass || v.Signature == "" {
		t.Fatalf("verdict %+v", v)
	}
	logs := stderr.String()
	if !strings.Contains(logs, "child process") || !strings.Contains(logs, v.KeyID) {
		t.Errorf("serve did not say it verifies in a child, or signed with another key than it logged (%s):\n%s", v.KeyID, logs)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/admit", nil)
	req.Header.Set("X-Region-Pin", "a")
	req.Header.Set("X-Release", "r-child")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("admit: %v %v", err, resp)
	}
}
