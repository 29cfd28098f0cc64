package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ragparity/ragparity/gate"
)

// TestMain lets the test binary act as a verification child: with
// RP_FAKE_CHILD set it records its priority and prints a ChildResult.
func TestMain(m *testing.M) {
	if out := os.Getenv("RP_FAKE_CHILD"); out != "" {
		prio, _ := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
		os.WriteFile(out, []byte(strconv.Itoa(prio)), 0o644)
		signer, _ := gate.LoadSigner("")
		v := testVerdict("child", time.Now().UTC().Truncate(time.Millisecond), region("a"))
		signer.Sign(v)
		d := &gate.Detail{Probes: &gate.ProbeDetail{Questions: []gate.QuestionDetail{{ID: "q1", DeltaS: map[string]float64{"a": 0.25}}}}}
		if err := WriteChildResult(os.Stdout, v, d); err != nil {
			os.Exit(3)
		}
		fmt.Fprintln(os.Stderr, "child: done")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A verification in a child process runs at a lower CPU priority than the
// server (admission keeps the CPU), and its verdict and detail come back
// unsigned for the server to sign.
func TestChildVerifierRunsNicedAndReturnsTheVerdict(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("per-thread priority is Linux-only")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	prioFile := filepath.Join(t.TempDir(), "prio")
	t.Setenv("RP_FAKE_CHILD", prioFile)
	var stderr bytes.Buffer
	v, d, err := ChildVerifier(exe, nil, 10, &stderr)(context.Background())
	os.Unsetenv("RP_FAKE_CHILD")
	if err != nil {
		t.Fatalf("child: %v (stderr %s)", err, stderr.String())
	}
	if v.ID != "child" || v.Signature != "" || v.KeyID != "" {
		t.Errorf("verdict %s signature %q key %q: want the child's verdict, unsigned", v.ID, v.Signature, v.KeyID)
	}
	if d.Probes == nil || d.Probes.Questions[0].DeltaS["a"] != 0.25 {
		t.Errorf("detail %+v", d.Probes)
	}
	b, _ := os.ReadFile(prioFile)
	child, _ := strconv.Atoi(string(b))
	parent, _ := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	// getpriority returns 20 - nice: a niced child has a smaller value.
	if parent-child < 10 && child != 1 {
		t.Errorf("child priority %d, server %d: want the child niced by 10", child, parent)
	}
	// The server signs it like any unsigned verdict.
	signer, _ := gate.LoadSigner("")
	s := newTestServer(t, ServerOptions{Signer: signer})
	if err := s.prepare(v); err != nil || v.Verify(signer.Public()) != nil {
		t.Errorf("prepare: %v", err)
	}
}
