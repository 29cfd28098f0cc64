package main

import (
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// countingProxy forwards TCP connections to target and counts the bytes
// each way: received (server to client) and sent (client to server).
type countingProxy struct {
	ln             net.Listener
	url            string // the proxied URL, for newURLProxy
	received, sent atomic.Int64
	wg             sync.WaitGroup
}

func startCountingProxy(target string) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				done := make(chan struct{}, 2)
				pipe := func(dst, src net.Conn, n *atomic.Int64) {
					// counted before the other side can read them
					io.Copy(&countingWriter{w: dst, n: n}, src)
					if tc, ok := dst.(*net.TCPConn); ok {
						tc.CloseWrite()
					}
					done <- struct{}{}
				}
				go pipe(s, c, &p.sent)
				go pipe(c, s, &p.received)
				<-done
				<-done
			}()
		}
	}()
	return p, nil
}

// newURLProxy proxies the host of a store URL (PostgreSQL's port 5432 when
// it names none); p.url is the same URL through the proxy.
func newURLProxy(raw string) (*countingProxy, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	target := u.Host
	if !strings.Contains(target, ":") {
		target += ":5432"
	}
	p, err := startCountingProxy(target)
	if err != nil {
		return nil, err
	}
	pu := *u
	pu.Host = p.Addr()
	p.url = pu.String()
	return p, nil
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return c.w.Write(b)
}

func (p *countingProxy) Addr() string { return p.ln.Addr().String() }

// Total is the bytes forwarded so far, both ways.
func (p *countingProxy) Total() int64 { return p.received.Load() + p.sent.Load() }

func (p *countingProxy) Close() { p.ln.Close() }
