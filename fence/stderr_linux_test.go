//go:build linux

package fence

import (
	"context"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// go-redis logs dial failures on file descriptor 2 through its own logger,
// around ragparity's own message; the fence silences it (the caller
// reports the error once, redacted).
func TestRedisDialErrorsNotLoggedByGoRedis(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup3(int(w.Fd()), 2, 0); err != nil {
		t.Fatal(err)
	}
	f, err := Open("redis://:Sup3rSecret@127.0.0.1:1/0", "")
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = f.Warm(ctx)
		cancel()
		f.Close()
	}
	syscall.Dup3(saved, 2, 0)
	syscall.Close(saved)
	w.Close()
	out, _ := io.ReadAll(r)
	if err == nil {
		t.Fatalf("a closed port answered")
	}
	if len(out) > 0 {
		t.Errorf("go-redis wrote on stderr: %q", out)
	}
	if strings.Contains(err.Error(), "Sup3rSecret") {
		t.Errorf("error shows the password: %v", err)
	}
}
