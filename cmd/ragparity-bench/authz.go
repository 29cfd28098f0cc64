package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// benchAuthz compares Envoy's gRPC ext_authz Check with /v1/admit under
// the same closed-loop load: the same server (one fixed signed verdict),
// the same request (pinned to the drifted eu-west, the router following
// X-Route-Region), the same number of concurrent callers and duration,
// alternated over rounds. Load and servers share this process: the
// figures compare the two protocols, not absolute capacity.
func benchAuthz(args []string) error {
	fs := flag.NewFlagSet("authz", flag.ExitOnError)
	conns := fs.Int("conns", 32, "concurrent callers (HTTP keep-alive connections; gRPC streams over -grpc-conns connections)")
	grpcConns := fs.Int("grpc-conns", 4, "gRPC client connections")
	dur := fs.Duration("duration", 3*time.Second, "length of one measurement")
	rounds := fs.Int("rounds", 3, "rounds (each measures both)")
	fs.Parse(args)
	if *conns < 1 || *grpcConns < 1 || *rounds < 1 || *dur <= 0 {
		return fmt.Errorf("authz: -conns, -grpc-conns, -rounds and -duration must be positive")
	}
	srv, err := fixedVerdictServer()
	if err != nil {
		return err
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go hs.Serve(hl)
	defer hs.Close()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	srv.RegisterAuthorization(gs)
	go gs.Serve(gl)
	defer gs.Stop()

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}}
	admitURL := "http://" + hl.Addr().String() + "/v1/admit/search?q=x"
	admit := func() error {
		req, _ := http.NewRequest("GET", admitURL, nil)
		req.Header = http.Header{"X-Region-Pin": {"eu-west"}, "X-Client-Region": {"eu"}, "X-Release": {"r-bench"},
			"X-Index-Hash": {"h1"}, "X-Ragparity-Fallback": {"route"}}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Route-Region") != "eu-central" {
			return fmt.Errorf("/v1/admit: %d %q", resp.StatusCode, resp.Header.Get("X-Route-Region"))
		}
		return nil
	}
	var clients []authv3.AuthorizationClient
	for range *grpcConns {
		cc, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer cc.Close()
		clients = append(clients, authv3.NewAuthorizationClient(cc))
	}
	creq := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/search?q=x", Host: "search.example", Headers: map[string]string{
			":authority": "search.example", ":method": "GET", ":path": "/search?q=x",
			"x-region-pin": "eu-west", "x-client-region": "eu", "x-release": "r-bench", "x-index-hash": "h1"}}}}}
	gctx := metadata.AppendToOutgoingContext(context.Background(), "x-ragparity-fallback", "route")
	check := func(i int) error {
		resp, err := clients[i%len(clients)].Check(gctx, creq)
		if err != nil {
			return err
		}
		ok := resp.GetOkResponse()
		if ok == nil || len(ok.GetHeaders()) != 1 || ok.GetHeaders()[0].GetHeader().GetValue() != "eu-central" {
			return fmt.Errorf("Check: %v", resp)
		}
		return nil
	}

	type result struct{ rps, p99 float64 }
	measure := func(call func(worker int) error) (result, error) {
		var mu sync.Mutex
		var lat []time.Duration
		var firstErr error
		var wg sync.WaitGroup
		deadline := time.Now().Add(*dur)
		start := time.Now()
		for w := range *conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := make([]time.Duration, 0, 1<<16)
				for time.Now().Before(deadline) {
					t := time.Now()
					if err := call(w); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						return
					}
					mine = append(mine, time.Since(t))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		el := time.Since(start)
		if firstErr != nil {
			return result{}, firstErr
		}
		slices.Sort(lat)
		return result{rps: float64(len(lat)) / el.Seconds(), p99: float64(lat[len(lat)*99/100].Microseconds()) / 1000}, nil
	}
	// Warm-up, not counted.
	for _, c := range []func(int) error{func(int) error { return admit() }, check} {
		if _, err := measure(c); err != nil {
			return err
		}
	}
	var ha, gc []result
	for range *rounds {
		r, err := measure(func(int) error { return admit() })
		if err != nil {
			return err
		}
		ha = append(ha, r)
		if r, err = measure(check); err != nil {
			return err
		}
		gc = append(gc, r)
	}
	median := func(rs []result) result {
		s := slices.Clone(rs)
		slices.SortFunc(s, func(a, b result) int { return int(a.rps - b.rps) })
		return s[len(s)/2]
	}
	a, g := median(ha), median(gc)
	fmt.Printf("## Envoy gRPC ext_authz Check beside /v1/admit (one process, %d callers, %s x %d rounds, median round)\n\n", *conns, *dur, *rounds)
	fmt.Println("| call | requests/s | p99 ms | vs /v1/admit |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| HTTP GET /v1/admit (pin drifted -> eu-central) | %.0f | %.2f | 1.00x |\n", a.rps, a.p99)
	fmt.Printf("| gRPC Authorization/Check (same request, %d connections) | %.0f | %.2f | %.2fx |\n", *grpcConns, g.rps, g.p99, g.rps/a.rps)
	fmt.Println()
	for i := range ha {
		fmt.Printf("round %d: admit %.0f/s p99 %.2f ms, check %.0f/s p99 %.2f ms\n", i+1, ha[i].rps, ha[i].p99, gc[i].rps, gc[i].p99)
	}
	return nil
}
