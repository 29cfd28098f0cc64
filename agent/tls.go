package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// HTTPOptions build the gate's HTTP client for one agent.
type HTTPOptions struct {
	// CA is a PEM file of the CA the agent's certificate chains to
	// (default: the system roots).
	CA string
	// Cert and Key are the client certificate for mTLS.
	Cert, Key string
	// Counter, when set, counts the bytes on the wire (TLS included).
	Counter *Counter
	// Timeout bounds each request (default 5m).
	Timeout time.Duration
}

// NewHTTPClient returns a client for one agent.
func NewHTTPClient(o HTTPOptions) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CA != "" {
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca %s: no PEM certificate in it", o.CA)
		}
		tc.RootCAs = pool
	}
	if o.Cert != "" {
		c, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s: %w", o.Cert, pathless(err))
		}
		tc.Certificates = []tls.Certificate{c}
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{TLSClientConfig: tc, DialContext: d.DialContext, TLSHandshakeTimeout: 30 * time.Second,
		MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, ForceAttemptHTTP2: true}
	if o.Counter != nil {
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, n: o.Counter}, nil
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	return &http.Client{Transport: tr, Timeout: o.Timeout}, nil
}

// ServerTLS is the agent's TLS config: its certificate and, with clientCA,
// client certificates verified against that CA (mTLS; set
// Options.RequireClientCert so that every request but /healthz needs one).
func ServerTLS(cert, key, clientCA string) (*tls.Config, error) {
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("agent.tls_cert: %w", pathless(err))
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c}}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("agent.client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("agent.client_ca %s: no PEM certificate in it", clientCA)
		}
		tc.ClientCAs = pool
		// A certificate given must verify; Server.ServeHTTP refuses
		// requests without one (Options.RequireClientCert) except
		// /healthz, which a kubelet probes without one.
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// pathless drops key material from tls errors (they quote no key, but a
// malformed PEM error can echo a line).
func pathless(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return err
	}
	return errors.New("not a valid PEM certificate and private key pair")
}

// Counter counts bytes on the wire between the gate and its agents.
type Counter struct{ read, written atomic.Int64 }

// Read and Written are the bytes received and sent so far.
func (c *Counter) Read() int64    { return c.read.Load() }
func (c *Counter) Written() int64 { return c.written.Load() }

// Total is both directions.
func (c *Counter) Total() int64 { return c.Read() + c.Written() }

// Reset zeroes the counter.
func (c *Counter) Reset() { c.read.Store(0); c.written.Store(0) }

type countingConn struct {
	net.Conn
	n *Counter
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.written.Add(int64(n))
	return n, err
}

// ListenAndServe scans (Run) and answers on addr, over TLS when tc is set,
// until ctx ends; then it stops gracefully. ready, when set, is called with
// the listening address. The error is the listener's (nil after ctx ends).
func ListenAndServe(ctx context.Context, s *Server, addr string, tc *tls.Config, ready func(addr string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: s, TLSConfig: tc, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go s.Run(ctx)
	errc := make(chan error, 1)
	go func() {
		if tc != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}
