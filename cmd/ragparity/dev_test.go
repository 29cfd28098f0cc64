package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
	"github.com/ragparity/ragparity/verifier"
)

// TestDevQdrant: `ragparity dev qdrant` serves the in-process Qdrant test
// server, which the Qdrant adapter writes to and hashes from, and stops
// with its context.
func TestDevQdrant(t *testing.T) {
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"dev", "qdrant", "--addr", addr}, out, &syncBuffer{}) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev qdrant did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s, err := adapters.OpenVector(ctx, "qdrant://"+addr+"/docs?text=content")
	if err != nil {
		t.Fatal(err)
	}
	vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 50, 3))
	sc, err := verifier.HashStore(ctx, s, verifier.Options{})
	s.Close()
	if err != nil || sc.Points != 50 {
		t.Fatalf("hash through dev qdrant: %v, %d points", err, sc.Points)
	}
	if !strings.Contains(out.String(), "TEST server") {
		t.Errorf("dev qdrant does not say it is a test server: %q", out.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("dev qdrant exit %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dev qdrant did not stop with its context")
	}
}
