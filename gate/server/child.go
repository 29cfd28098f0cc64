package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"

	"github.com/ragparity/ragparity/gate"
)

// ChildResult is what a verification child process prints on stdout: the
// verdict it computed and its detail. The parent signs the verdict again
// with its own key (see ChildVerifier).
type ChildResult struct {
	Verdict *gate.Verdict `json:"verdict"`
	Detail  storedDetail  `json:"detail"`
}

// WriteChildResult prints a child's result.
func WriteChildResult(w io.Writer, v *gate.Verdict, d *gate.Detail) error {
	r := ChildResult{Verdict: v}
	if d != nil {
		r.Detail = storedDetail{Probes: d.Probes, BucketMaps: d.BucketMaps, BlobDiffs: d.BlobDiffs}
	}
	return json.NewEncoder(w).Encode(r)
}

// maxChildOutput bounds what a child may print.
const maxChildOutput = 256 << 20

// ChildVerifier runs each verification in a child process (exe with args,
// which prints a ChildResult) at a lower CPU priority: the child starts
// from an OS thread whose nice value is raised by nice (Linux; elsewhere
// the child runs at the parent's priority), so the kernel gives the
// admission path the CPU first while a verification hashes, reads and
// embeds. Its stderr goes to stderr. The verdict comes back with its
// signature cleared: the server signs it with its own key (prepare), as
// for any unsigned verdict.
func ChildVerifier(exe string, args []string, nice int, stderr io.Writer) VerifyFunc {
	return func(ctx context.Context) (*gate.Verdict, *gate.Detail, error) {
		cmd := exec.CommandContext(ctx, exe, args...)
		var out bytes.Buffer
		tail := &tailBuffer{max: 4 << 10}
		cmd.Stdout = &limitWriter{w: &out, n: maxChildOutput}
		cmd.Stderr = io.MultiWriter(stderr, tail)
		if err := startNiced(cmd, nice); err != nil {
			return nil, nil, fmt.Errorf("verification child: %w", err)
		}
		werr := cmd.Wait()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("verification child: %w", ctx.Err())
		}
		var r ChildResult
		if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.Verdict == nil {
			why := "printed no result"
			if werr != nil {
				why = werr.Error()
			}
			return nil, nil, fmt.Errorf("verification child: %s: %s", why, strings.TrimSpace(tail.String()))
		}
		v := r.Verdict
		v.Signature, v.KeyID = "", ""
		return v, &gate.Detail{Probes: r.Detail.Probes, BucketMaps: r.Detail.BucketMaps, BlobDiffs: r.Detail.BlobDiffs}, nil
	}
}

// startNiced starts cmd from a dedicated OS thread whose nice value is
// raised first: a forked child inherits its thread's nice value. The
// thread is never unlocked, so Go discards it when the goroutine ends.
func startNiced(cmd *exec.Cmd, nice int) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if nice > 0 {
			if err := setThreadNice(nice); err != nil {
				errc <- fmt.Errorf("lowering the priority: %w", err)
				return
			}
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		return 0, fmt.Errorf("more than %d bytes of output", maxChildOutput)
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
