package s3_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragparity/ragparity/storetest/blobtest"
	"github.com/ragparity/ragparity/verifier/blob"
)

// faultProxy sits between the client and versitygw and breaks the first
// GET of objects by their key's prefix: "e503-" answers 503 SlowDown,
// "slowhdr-" sends no response header for 2s, "stall-" sends 10 KB of the
// body and then nothing; "always-stall-" does so on every attempt.
type faultProxy struct {
	srv                          *httptest.Server
	mu                           sync.Mutex
	attempts                     map[string]int
	fail503, slowHeaders, stalls atomic.Int64
}

func newFaultProxy(t *testing.T) *faultProxy {
	target, err := url.Parse(blobtest.ServiceEnv("RAGPARITY_S3_ENDPOINT"))
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{attempts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)
		if r.Method != http.MethodGet || len(parts) != 2 || parts[1] == "" {
			rp.ServeHTTP(w, r)
			return
		}
		key := parts[1]
		base := key[strings.LastIndex(key, "/")+1:]
		p.mu.Lock()
		n := p.attempts[key]
		p.attempts[key]++
		p.mu.Unlock()
		switch {
		case strings.HasPrefix(base, "e503-") && n == 0:
			p.fail503.Add(1)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		case strings.HasPrefix(base, "slowhdr-") && n == 0:
			p.slowHeaders.Add(1)
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		case (strings.HasPrefix(base, "stall-") && n == 0) || strings.HasPrefix(base, "always-stall-"):
			p.stalls.Add(1)
			rp.ServeHTTP(&stallWriter{ResponseWriter: w, ctx: r.Context().Done(), after: 10 << 10}, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// stallWriter passes the first after bytes and then blocks until the
// client goes away.
type stallWriter struct {
	http.ResponseWriter
	ctx     <-chan struct{}
	after   int
	written int
}

func (s *stallWriter) Write(b []byte) (int, error) {
	if s.written+len(b) > s.after {
		b = b[:max(s.after-s.written, 0)]
		n, _ := s.ResponseWriter.Write(b)
		s.written += n
		if f, ok := s.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		<-s.ctx
		return n, fmt.Errorf("client went away")
	}
	n, err := s.ResponseWriter.Write(b)
	s.written += n
	return n, err
}

func (s *stallWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func TestRetriesOn5xxAndTimeouts(t *testing.T) {
	requireS3(t)
	b := newBucket(t)
	objs := map[string][]byte{}
	for i := range 6 {
		for _, p := range []string{"ok-", "e503-", "slowhdr-", "stall-"} {
			objs[fmt.Sprintf("d%d/%s%d", i, p, i)] = blobtest.Data(uint64(i), 100_000+i)
		}
	}
	blobtest.Put(t, b, objs)
	direct := build(t, b, blob.ModeContent)

	p := newFaultProxy(t)
	viaProxy := open(t, storeURL(b.Bucket(), "", "endpoint", p.srv.URL, "timeout", "300ms"))
	start := time.Now()
	m := build(t, viaProxy, blob.ModeContent)
	if m.Hash() != direct.Hash() || m.Objects != int64(len(objs)) {
		t.Errorf("through faults: hash %s (%d objects), want %s (%d)", m.Hash().Hex(), m.Objects, direct.Hash().Hex(), len(objs))
	}
	if p.fail503.Load() != 6 || p.slowHeaders.Load() != 6 || p.stalls.Load() != 6 {
		t.Errorf("faults served: %d 503s, %d slow headers, %d stalled bodies; want 6 of each", p.fail503.Load(), p.slowHeaders.Load(), p.stalls.Load())
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("took %v with retries; want well under 15s", el)
	}

	// A body that stalls on every attempt: a clear error after the retries.
	blobtest.Put(t, b, map[string][]byte{"always-stall-x": blobtest.Data(7, 50_000)})
	r := open(t, storeURL(b.Bucket(), "", "endpoint", p.srv.URL, "timeout", "200ms", "retries", "3"))
	_, err := blob.BuildManifest(t.Context(), r, blob.ManifestOptions{Workers: 4})
	if err == nil || !strings.Contains(err.Error(), "always-stall-x") || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Errorf("always-stalling object: error = %v, want one naming the key and the 3 attempts", err)
	}
}

// TestReadsReuseConnections reads objects, 8 at a time, through a
// keep-alive proxy (versitygw closes every connection unless started with
// --keep-alive, as scripts/services.sh now does) and counts
// the client's connections: a read to the end must hand its connection
// back for the next one, not race its closing against net/http.
func TestReadsReuseConnections(t *testing.T) {
	requireS3(t)
	b := newBucket(t)
	objs := map[string][]byte{}
	for i := range 400 {
		objs[fmt.Sprintf("k%03d", i)] = blobtest.Data(uint64(i), 2048)
	}
	blobtest.Put(t, b, objs)
	target, err := url.Parse(blobtest.ServiceEnv("RAGPARITY_S3_ENDPOINT"))
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	proxy := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	proxy.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	proxy.Start()
	t.Cleanup(proxy.Close)
	s := open(t, storeURL(b.Bucket(), "", "endpoint", proxy.URL))
	keys := make(chan string)
	var wg sync.WaitGroup
	var bad atomic.Value
	const workers = 8
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				rc, err := s.Open(t.Context(), k)
				if err != nil {
					bad.Store(err)
					continue
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, objs[k]) {
					bad.Store(fmt.Errorf("%s: %d bytes, %v", k, len(got), err))
				}
			}
		}()
	}
	for k := range objs {
		keys <- k
	}
	close(keys)
	wg.Wait()
	if err := bad.Load(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d connections for %d reads by %d workers", conns.Load(), len(objs), workers)
	if n := conns.Load(); n > 2*workers {
		t.Errorf("%d connections for %d reads by %d workers, want at most %d", n, len(objs), workers, 2*workers)
	}
}
