package server

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/ragparity/ragparity/gate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// authzClient serves s's Authorization on loopback and returns a client
// built from the same protos, as Envoy's would be.
func authzClient(t *testing.T, s *Server) authv3.AuthorizationClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	s.RegisterAuthorization(gs)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// checkRequest is what Envoy sends for a client request: header names in
// lower case, the path with its query.
func checkRequest(path string, hdr map[string]string) *authv3.CheckRequest {
	h := map[string]string{":authority": "search.example", ":method": "GET", ":path": path}
	for k, v := range hdr {
		h[strings.ToLower(k)] = v
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: path, Host: "search.example", Headers: h},
	}}}
}

type checkAnswer struct {
	code           int // HTTP status: 200 for OK, the denied status otherwise
	region, reason string
	grpc           codes.Code
}

func headerOf(hs []*corev3.HeaderValueOption, k string) string {
	for _, h := range hs {
		if h.GetHeader().GetKey() == k {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

func check(t *testing.T, c authv3.AuthorizationClient, ctx context.Context, req *authv3.CheckRequest) checkAnswer {
	t.Helper()
	resp, err := c.Check(ctx, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	a := checkAnswer{grpc: codes.Code(resp.GetStatus().GetCode())}
	if ok := resp.GetOkResponse(); ok != nil {
		if a.grpc != codes.OK {
			t.Fatalf("ok_response with status %s", a.grpc)
		}
		a.code, a.region = 200, headerOf(ok.GetHeaders(), "x-route-region")
		return a
	}
	d := resp.GetDeniedResponse()
	if d == nil || a.grpc == codes.OK {
		t.Fatalf("neither OK nor denied: %v", resp)
	}
	a.code = int(d.GetStatus().GetCode())
	a.region, a.reason = headerOf(d.GetHeaders(), "x-route-region"), headerOf(d.GetHeaders(), "x-ragparity-reason")
	if !strings.Contains(d.GetBody(), a.reason) || !strings.Contains(resp.GetStatus().GetMessage(), a.reason) {
		t.Errorf("denied body %q / status message %q do not carry the reason %q", d.GetBody(), resp.GetStatus().GetMessage(), a.reason)
	}
	return a
}

// TestExtAuthzCheck drives Authorization/Check through a real gRPC client
// and compares every answer with /v1/admit's for the same request.
func TestExtAuthzCheck(t *testing.T) {
	clk := newClock(t0.Add(time.Minute))
	s := newTestServer(t, ServerOptions{Routing: map[string][]string{"eu": {"a", "b", "c"}, "us": {"c", "b", "a"}}, Now: clk.Now})
	c := authzClient(t, s)
	ctx := context.Background()
	routeMD := metadata.AppendToOutgoingContext(ctx, "x-ragparity-fallback", "route")

	t.Run("NoVerdictYetDenied503", func(t *testing.T) {
		a := check(t, c, ctx, checkRequest("/search", map[string]string{"X-Region-Pin": "a"}))
		if a.code != 503 || a.reason != "no verdict yet" || a.grpc != codes.Unavailable {
			t.Fatalf("got %+v", a)
		}
	})
	s.Install(testVerdict("v1", t0, blocked(region("a"), "failed index_hash"), region("b"), hashed(region("c"), hexA)), "local")

	cases := []struct {
		name string
		ctx  context.Context
		path string
		hdr  map[string]string
		want checkAnswer
	}{
		{"AllowedPinned", ctx, "/search", map[string]string{"X-Region-Pin": "b", "X-Release": "r1"}, checkAnswer{code: 200, region: "b", grpc: codes.OK}},
		{"AllowedNearestByQuery", ctx, "/search?q=x&client_region=us", nil, checkAnswer{code: 200, region: "c", grpc: codes.OK}},
		{"AllowedNearestByHeader", ctx, "/search", map[string]string{"X-Client-Region": "eu"}, checkAnswer{code: 200, region: "b", grpc: codes.OK}},
		{"AllowedByHashPrefix", ctx, "/search", map[string]string{"X-Index-Hash": hexA[:12]}, checkAnswer{code: 200, region: "c", grpc: codes.OK}},
		{"PinnedToBlockedDenied421", ctx, "/search?client_region=eu", map[string]string{"X-Region-Pin": "a"},
			checkAnswer{code: 421, region: "b", reason: misdirectReason("a"), grpc: codes.PermissionDenied}},
		{"PinnedFallbackWithRouteMetadata", routeMD, "/search?client_region=eu", map[string]string{"X-Region-Pin": "a"}, checkAnswer{code: 200, region: "b", grpc: codes.OK}},
		{"PinnedFallbackWithRouteHeader", ctx, "/search?client_region=us", map[string]string{"X-Region-Pin": "a", "X-Ragparity-Fallback": "route"}, checkAnswer{code: 200, region: "c", grpc: codes.OK}},
		{"MetadataReplacesTheClientsHeader", routeMD, "/search", map[string]string{"X-Region-Pin": "a", "X-Ragparity-Fallback": "bogus"}, checkAnswer{code: 200, region: "b", grpc: codes.OK}},
		{"WrongReleaseDenied409", ctx, "/search", map[string]string{"X-Region-Pin": "b", "X-Release": "r0"},
			checkAnswer{code: 409, reason: "verdict is for release r1", grpc: codes.FailedPrecondition}},
		{"NoMatchDenied503", ctx, "/search", map[string]string{"X-Schema-Rev": "s9"}, checkAnswer{code: 503, reason: "no admitted region matches", grpc: codes.Unavailable}},
		{"BadFallbackDenied400", ctx, "/search", map[string]string{"X-Region-Pin": "b", "X-Ragparity-Fallback": "bogus"},
			checkAnswer{code: 400, reason: `X-Ragparity-Fallback must be "route" (or absent)`, grpc: codes.InvalidArgument}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := check(t, c, tc.ctx, checkRequest(tc.path, tc.hdr))
			if got != tc.want {
				t.Fatalf("Check = %+v, want %+v", got, tc.want)
			}
			// The same request to /v1/admit answers the same (the
			// metadata stands for the header a router sets).
			hdr := map[string]string{}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			if tc.ctx == routeMD {
				hdr["X-Ragparity-Fallback"] = "route"
			}
			rec := do(t, s.Handler(), "GET", "/v1/admit"+tc.path, nil, hdr)
			if rec.Code != got.code || rec.Header().Get("X-Route-Region") != got.region || rec.Header().Get("X-Ragparity-Reason") != got.reason {
				t.Errorf("/v1/admit answers %d %q %q, Check %+v", rec.Code, rec.Header().Get("X-Route-Region"), rec.Header().Get("X-Ragparity-Reason"), got)
			}
		})
	}
	t.Run("RawHeaderMap", func(t *testing.T) {
		// Envoy with encode_raw_headers sends header_map instead of headers.
		req := checkRequest("/search", nil)
		req.Attributes.Request.Http.Headers = nil
		req.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
			{Key: ":path", RawValue: []byte("/search")}, {Key: "x-region-pin", RawValue: []byte("c")}}}
		if a := check(t, c, ctx, req); a.code != 200 || a.region != "c" {
			t.Fatalf("got %+v", a)
		}
	})
	t.Run("NotHTTPIsInvalidArgument", func(t *testing.T) {
		_, err := c.Check(ctx, &authv3.CheckRequest{})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "attributes.request.http") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ExpiredVerdictDenied503", func(t *testing.T) {
		clk.Set(t0.Add(16 * time.Minute))
		a := check(t, c, ctx, checkRequest("/search", map[string]string{"X-Region-Pin": "b"}))
		if a.code != 503 || a.reason != "verdict expired" || a.grpc != codes.Unavailable {
			t.Fatalf("got %+v", a)
		}
	})
	t.Run("InconclusiveDenied503", func(t *testing.T) {
		clk.Set(t0.Add(2 * time.Minute))
		v := testVerdict("v2", t0.Add(time.Second), region("a"), region("b"))
		v.Decision = gate.Inconclusive
		s.Install(v, "local")
		a := check(t, c, ctx, checkRequest("/search", map[string]string{"X-Region-Pin": "b"}))
		if a.code != 503 || a.reason != "verdict inconclusive" {
			t.Fatalf("got %+v", a)
		}
	})
	t.Run("Counted", func(t *testing.T) {
		body := do(t, s.Handler(), "GET", "/metrics", nil, nil).Body.String()
		if !strings.Contains(body, `ragparity_gate_admit_decisions_total{code="503",decision="refuse_inconclusive",region="b",release_id="r1",revision="v2"} 1`) {
			t.Errorf("the gRPC refusal is not counted:\n%s", body)
		}
	})
}

func BenchmarkExtAuthzCheck(b *testing.B) {
	s, _ := NewServer(ServerOptions{Verify: (&fakeVerifier{}).Verify, Release: "r1"})
	s.Install(testVerdict("v1", time.Now(), region("a"), region("b")), "local")
	a := &authorization{s: s}
	req := checkRequest("/search", map[string]string{"X-Region-Pin": "a", "X-Release": "r1"})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		a.Check(ctx, req)
	}
}
