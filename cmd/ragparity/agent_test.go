package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAgentCommand: `ragparity agent` serves a region; `hash` of a config
// naming it reads the region through it, says so, and agrees with a
// direct scan of the same store.
func TestAgentCommand(t *testing.T) {
	keys := t.TempDir()
	if code, _, errs := runCLI(t, "agent", "keygen", "--out", keys); code != 0 {
		t.Fatalf("agent keygen: %d %s", code, errs)
	}
	store := embeddedRegion(t, vectortest.Points(parity.IDString, 200, 4))
	t.Setenv("RP_TEST_AGENT_TOKEN", "cmd-test-token")
	region := writeConfig(t, fmt.Sprintf("release: r1\nregions:\n  - name: eu\n    vectors: %q\nagent:\n  signing_key: file:%s\n  token: ${RP_TEST_AGENT_TOKEN}\n",
		store, filepath.Join(keys, "verdict-signing.key")))
	noToken := writeConfig(t, fmt.Sprintf("release: r1\nregions:\n  - name: eu\n    vectors: %q\nagent:\n  signing_key: file:%s\n", store, filepath.Join(keys, "verdict-signing.key")))
	if code, _, errs := runCLI(t, "agent", "--config", noToken, "--addr", "127.0.0.1:0"); code != ExitUnknown || !strings.Contains(errs, "agent.token is required") {
		t.Errorf("agent without a token: exit %d, %s", code, errs)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"agent", "--config", region, "--addr", "127.0.0.1:0"}, &bytes.Buffer{}, &stderr)
	}()
	listening := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s := stderr.String()
		if m := listening.FindStringSubmatch(s); m != nil && strings.Contains(s, "scanned: 200 points") {
			addr = m[1]
			break
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("the agent did not start and scan: %s", stderr.String())
	}
	gateCfg := writeConfig(t, fmt.Sprintf("release: r1\nregions:\n  - name: direct\n    vectors: %q\n  - name: eu\n    agent:\n      url: http://%s\n      token: ${RP_TEST_AGENT_TOKEN}\n      public_keys: [%s]\n",
		store, addr, filepath.Join(keys, "verdict-signing.pub")))
	code, out, errs := runCLI(t, "hash", "--config", gateCfg, "--json")
	if code != ExitEqual {
		t.Errorf("hash through the agent: exit %d: %s %s", code, out, errs)
	}
	var h gate.HashJSON
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Regions) != 2 || h.Regions[0].Via != "direct" || h.Regions[1].Via != "agent http://"+addr || h.Regions[0].IndexHash != h.Regions[1].IndexHash {
		t.Errorf("hash regions %+v", h.Regions)
	}
	if strings.Contains(stderr.String(), "cmd-test-token") || strings.Contains(out+errs, "cmd-test-token") {
		t.Errorf("the token is in the output")
	}
	cancel()
	select {
	case c := <-done:
		if c != 0 {
			t.Errorf("agent exited %d on shutdown: %s", c, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Errorf("agent did not stop")
	}
}
