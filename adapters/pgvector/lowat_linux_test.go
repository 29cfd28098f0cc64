package pgvector

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
	"github.com/ragparity/ragparity/verifier"
)

// pipe returns both ends of a loopback TCP connection, the client's as a
// lowatConn.
func pipe(t *testing.T, lowat int, wait time.Duration) (*lowatConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-acc
	if srv == nil {
		t.Fatal("accept failed")
	}
	lc := newLowatConn(c, lowat, wait)
	if lc == nil {
		t.Fatal("newLowatConn refused a TCP connection")
	}
	t.Cleanup(func() { c.Close(); srv.Close() })
	return lc, srv
}

func mark(t *testing.T, lc *lowatConn) int {
	t.Helper()
	raw, err := lc.Conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	raw.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// readsFor counts the reads it takes to receive total bytes sent 1 KiB at
// a time with a pause after each.
func readsFor(t *testing.T, lc *lowatConn, srv net.Conn, total int) int {
	t.Helper()
	go func() {
		chunk := make([]byte, 1<<10)
		for sent := 0; sent < total; sent += len(chunk) {
			if _, err := srv.Write(chunk); err != nil {
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	buf := make([]byte, 512<<10)
	reads := 0
	for got := 0; got < total; {
		n, err := lc.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got, err)
		}
		got += n
		reads++
	}
	return reads
}

// During a scan the reader is woken once per low-water mark, not once per
// send; outside a scan, reads are as before.
func TestLowatCoalescesWakeups(t *testing.T) {
	const total = 256 << 10
	lc, srv := pipe(t, 128<<10, 10*time.Second)
	if plain := readsFor(t, lc, srv, total); plain < 10 {
		t.Fatalf("without the mark %d reads took 256 1-KiB sends; the test cannot tell the mark's effect", plain)
	}
	// The last read may find fewer than 128 KiB left to come and wait the
	// whole wait for them: one second, not ten.
	lc, srv = pipe(t, 128<<10, time.Second)
	if !lc.begin() {
		t.Fatal("SO_RCVLOWAT refused")
	}
	if m := mark(t, lc); m != 128<<10 {
		t.Fatalf("SO_RCVLOWAT = %d during the scan, want %d", m, 128<<10)
	}
	if r := readsFor(t, lc, srv, total); r > 4 {
		t.Errorf("with a 128 KiB mark, 256 KiB took %d reads; want at most 4", r)
	}
	lc.end()
	if m := mark(t, lc); m != 1 {
		t.Errorf("SO_RCVLOWAT = %d after the scan, want 1", m)
	}
}

// The stream's last bytes are fewer than the mark: a read takes them once
// it has waited wait, and the mark stays up for the next read.
func TestLowatStreamEndDoesNotHang(t *testing.T) {
	lc, srv := pipe(t, 128<<10, 20*time.Millisecond)
	lc.begin()
	defer lc.end()
	// The bytes come after the read has begun waiting for the mark.
	go func() {
		time.Sleep(40 * time.Millisecond)
		srv.Write([]byte("last 17 bytes...."))
	}()
	buf := make([]byte, 1<<10)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := lc.Read(buf)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		if r.err != nil || r.n != 17 {
			t.Fatalf("read = %d, %v; want the 17 bytes", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read of the stream's last 17 bytes (under the 128 KiB mark) still waits after 5 s")
	}
	if m := mark(t, lc); m != 128<<10 {
		t.Errorf("SO_RCVLOWAT = %d after a short read, want the mark back", m)
	}
	// Then the peer closes: EOF, not a wait.
	srv.Close()
	if _, err := lc.Read(buf); !errors.Is(err, io.EOF) {
		t.Errorf("read after close = %v, want EOF", err)
	}
}

// pgx cancels a query by setting a deadline on the connection; a read
// waiting for the mark, or for the last bytes, still ends at it.
func TestLowatKeepsCallersDeadline(t *testing.T) {
	// A deadline set before the read and earlier than wait.
	lc, _ := pipe(t, 128<<10, 10*time.Second)
	lc.begin()
	lc.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	t0 := time.Now()
	if _, err := lc.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = %v, want the caller's deadline", err)
	}
	if el := time.Since(t0); el > 2*time.Second {
		t.Fatalf("the caller's 30 ms deadline ended the read after %v", el)
	}
	lc.end()

	// A deadline set by another goroutine (pgx's context watcher) while
	// the read waits past wait for bytes that never come.
	lc, _ = pipe(t, 128<<10, 5*time.Millisecond)
	lc.begin()
	go func() {
		time.Sleep(50 * time.Millisecond)
		lc.SetDeadline(time.Now())
	}()
	t0 = time.Now()
	if _, err := lc.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = %v, want the caller's deadline", err)
	}
	if el := time.Since(t0); el > 2*time.Second {
		t.Fatalf("a deadline set after 50 ms ended the read after %v", el)
	}
	lc.end()
	lc.SetDeadline(time.Time{})
}

// The store's TCP connections are dialled as lowatConns (a scan through
// them is the conformance suite's; the bench measures the effect).
func TestStoreDialsLowatConns(t *testing.T) {
	st := openStore(t, pgtest.TableURL("rp_lowat_probe"))
	c, err := st.pool.Acquire(context.Background())
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable at %s: %v\nstart it with `make services` (scripts/services.sh)", pgtest.URL(), err)
	}
	defer c.Release()
	if _, ok := c.Conn().PgConn().Conn().(*lowatConn); !ok {
		t.Fatalf("pool connection is %T, want *lowatConn (RAGPARITY_PG_URL must reach PostgreSQL over TCP)", c.Conn().PgConn().Conn())
	}
}

// With sslmode=require pgconn holds TLS over our connection: the scan
// still raises the mark on the socket beneath.
func TestScanStreamUnderTLS(t *testing.T) {
	lc, _ := pipe(t, 128<<10, time.Second)
	restore := scanStream(tls.Client(lc, &tls.Config{InsecureSkipVerify: true}))
	if m := mark(t, lc); m != 128<<10 {
		t.Errorf("SO_RCVLOWAT = %d under TLS during the scan, want %d", m, 128<<10)
	}
	restore()
	if m := mark(t, lc); m != 1 {
		t.Errorf("SO_RCVLOWAT = %d after the scan, want 1", m)
	}
	// Any other connection is left alone.
	scanStream(lc.Conn)()
}

// A scan over TLS (sslmode=require: Debian's PostgreSQL serves its snakeoil
// certificate) reads through the mark on the socket beneath and hashes
// exactly as over plain TCP; 3000 points are several 128 KiB marks and a
// short last read.
func TestScanOverTLSHashesAsPlain(t *testing.T) {
	ctx := context.Background()
	table := fmt.Sprintf("rp_lowat_tls_%08x", rand.Uint32())
	plain := openStore(t, pgtest.TableURL(table, "payload", "metadata", "text", "content"))
	defer plain.Drop(ctx)
	var ssl string
	if err := plain.pool.QueryRow(ctx, "SHOW ssl").Scan(&ssl); err != nil {
		t.Fatalf("PostgreSQL is not reachable at %s: %v\nstart it with `make services` (scripts/services.sh)", pgtest.URL(), err)
	}
	if ssl != "on" {
		t.Fatalf("PostgreSQL at %s has ssl = %s: this test scans over TLS (Debian's default is on, with the snakeoil certificate)", pgtest.URL(), ssl)
	}
	vectortest.Load(t, plain, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 3000, 5))
	secure := openStore(t, pgtest.TableURL(table, "payload", "metadata", "text", "content", "sslmode", "require"))
	c, err := secure.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := c.Conn().PgConn().Conn().(*tls.Conn)
	if !ok {
		t.Fatalf("sslmode=require connection is %T, want *tls.Conn", c.Conn().PgConn().Conn())
	}
	if _, ok := tc.NetConn().(*lowatConn); !ok {
		t.Fatalf("TLS runs over %T, want *lowatConn", tc.NetConn())
	}
	c.Release()
	a, err := verifier.HashStore(ctx, plain, verifier.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := verifier.HashStore(ctx, secure, verifier.Options{})
	if err != nil {
		t.Fatalf("hash over TLS: %v", err)
	}
	if a.Points != 3000 || b.Points != 3000 || a.IndexHash() != b.IndexHash() {
		t.Errorf("plain %d points %s, TLS %d points %s: want 3000 and one INDEX_HASH", a.Points, a.IndexHash().Hex(), b.Points, b.IndexHash().Hex())
	}
}

func openStore(t *testing.T, raw string) *Store {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vs.Close() })
	return vs.(*Store)
}
