package pgvector

import (
	"net"
	"syscall"
	"time"
)

// newLowatConn wraps a TCP connection; nil for any other (a Unix socket's
// poll does not honour SO_RCVLOWAT).
func newLowatConn(c net.Conn, lowat int, wait time.Duration) *lowatConn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	set := func(n int) error {
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
		}); err != nil {
			return err
		}
		return serr
	}
	return &lowatConn{Conn: c, set: set, lowat: lowat, wait: wait}
}
