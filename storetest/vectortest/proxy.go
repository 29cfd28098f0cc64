package vectortest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// StallProxy starts a TCP proxy on loopback in front of target that
// forwards the first `after` bytes the server sends on each connection and
// then stops forwarding while keeping the connection open: a store that
// stops answering mid-scan. It returns the proxy's host:port.
func StallProxy(t testing.TB, target string, after int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("StallProxy: %v", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go io.Copy(s, c)
			go func() {
				io.CopyN(c, s, int64(after))
				// Stall: keep reading from the server so it is not blocked
				// on the socket, but forward nothing more.
				io.Copy(io.Discard, s)
			}()
		}
	}()
	return ln.Addr().String()
}
