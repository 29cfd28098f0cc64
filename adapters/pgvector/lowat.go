package pgvector

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// A scan's COPY stream arrives in the server's 8 KiB sends. When the
// client hashes faster than the server sends (the usual case: the server
// is the slower side), every send wakes the reader for 8 KiB, and with
// four shard processes and their four backends on two cores those
// wake-ups become context-switch storms (44,000-110,000 switches/s seen
// in vmstat; four shards took 1.06-1.73x one whole run, against 0.83-1.06x
// with the low-water mark below). So while a scan streams, the socket's
// SO_RCVLOWAT asks the kernel not to wake the reader until lowatBytes have
// arrived. The stream's end, or a server that stalls, leaves fewer bytes
// than that: a read that has waited lowatWait for them drops the mark and
// takes what there is, so no read waits more than lowatWait longer than
// before. Reads outside scans are unchanged.
const (
	lowatBytes = 128 << 10
	lowatWait  = 2 * time.Millisecond
)

// lowatDial wraps a DialFunc: TCP connections it makes can raise their
// receive low-water mark during a scan (see scanStream).
func lowatDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if lc := newLowatConn(c, lowatBytes, lowatWait); lc != nil {
			return lc, nil
		}
		return c, nil
	}
}

// lowatConn is a TCP connection whose reads, between begin and end, wait
// for lowat bytes (or wait, whichever comes first). It keeps the caller's
// deadlines: pgx cancels a query by setting one, and a read never waits
// past it.
type lowatConn struct {
	net.Conn
	set   func(n int) error // sets SO_RCVLOWAT
	lowat int
	wait  time.Duration

	mu   sync.Mutex
	on   bool      // between begin and end
	user time.Time // the caller's read deadline
}

// begin raises the low-water mark; false if the socket refused it.
func (c *lowatConn) begin() bool {
	if c.set(c.lowat) != nil {
		return false
	}
	c.mu.Lock()
	c.on = true
	c.mu.Unlock()
	return true
}

// end restores the socket's default mark and the caller's deadline.
func (c *lowatConn) end() {
	c.mu.Lock()
	c.on = false
	c.Conn.SetReadDeadline(c.user)
	c.mu.Unlock()
	c.set(1)
}

func (c *lowatConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.user = t
	return c.Conn.SetDeadline(t)
}

func (c *lowatConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.user = t
	return c.Conn.SetReadDeadline(t)
}

func (c *lowatConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if !c.on {
		c.mu.Unlock()
		return c.Conn.Read(p)
	}
	d := time.Now().Add(c.wait)
	if !c.user.IsZero() && c.user.Before(d) {
		d = c.user
	}
	c.Conn.SetReadDeadline(d)
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		return n, err
	}
	// Fewer than lowat bytes came within wait: the caller's own deadline,
	// if that is what passed, ends the read; otherwise take what there is.
	c.mu.Lock()
	if !c.user.IsZero() && !c.user.After(time.Now()) {
		c.mu.Unlock()
		return n, err
	}
	c.Conn.SetReadDeadline(c.user)
	c.mu.Unlock()
	if c.set(1) != nil {
		return n, err
	}
	n, err = c.Conn.Read(p)
	c.set(c.lowat)
	return n, err
}

// scanStream raises the low-water mark of conn (as pgconn holds it: ours,
// or TLS over ours) for a scan; the returned func restores it.
func scanStream(conn net.Conn) func() {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	if lc, ok := conn.(*lowatConn); ok && lc.begin() {
		return lc.end
	}
	return func() {}
}
