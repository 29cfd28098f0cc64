//go:build !linux

package pgvector

import (
	"net"
	"time"
)

// newLowatConn: the low-water mark is used on Linux only, where it was
// measured; elsewhere connections are left as they are.
func newLowatConn(net.Conn, int, time.Duration) *lowatConn { return nil }
