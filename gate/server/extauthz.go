package server

import (
	"context"
	"net/url"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// RegisterAuthorization serves Envoy's external authorization
// (envoy.service.auth.v3.Authorization/Check, the gRPC ext_authz that
// Istio and most Envoy deployments use) on g. Check reads the headers of
// the request Envoy asks about as /v1/admit reads its own, and answers
// from the same Admitter: OK adding x-route-region upstream, or DENIED
// with /v1/admit's status, reason and headers.
//
// A router that routes on x-route-region says so with the gRPC metadata
// x-ragparity-fallback: route (Envoy's grpc_service initial_metadata); it
// replaces a value in the request's own headers.
func (s *Server) RegisterAuthorization(g *grpc.Server) {
	authv3.RegisterAuthorizationServer(g, &authorization{s: s})
}

type authorization struct {
	authv3.UnimplementedAuthorizationServer
	s *Server
}

// checkHeaders returns the request's headers by lower-case name, from
// headers or, when Envoy sends raw headers (encode_raw_headers), from
// header_map.
func checkHeaders(h *authv3.AttributeContext_HttpRequest) func(string) string {
	if m := h.GetHeaders(); len(m) > 0 || h.GetHeaderMap() == nil {
		return func(k string) string { return m[k] }
	}
	hm := h.GetHeaderMap().GetHeaders()
	return func(k string) string {
		for _, hv := range hm {
			if strings.EqualFold(hv.GetKey(), k) {
				if v := hv.GetValue(); v != "" {
					return v
				}
				return string(hv.GetRawValue())
			}
		}
		return ""
	}
}

// clientRegionOf reads client_region from a query string, else the
// X-Client-Region header's value.
func clientRegionOf(rawQuery, hdr string) string {
	if rawQuery != "" && strings.Contains(rawQuery, "client_region=") {
		if vs, err := url.ParseQuery(rawQuery); err == nil {
			if v := vs.Get("client_region"); v != "" {
				return v
			}
		}
	}
	return hdr
}

func (a *authorization) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	hr := req.GetAttributes().GetRequest().GetHttp()
	if hr == nil {
		return nil, status.Error(codes.InvalidArgument, "ragparity: CheckRequest has no attributes.request.http (only HTTP requests are admitted)")
	}
	h := checkHeaders(hr)
	_, query, _ := strings.Cut(hr.GetPath(), "?")
	if query == "" {
		query = hr.GetQuery()
	}
	q := AdmitRequest{
		Release:      h("x-release"),
		Pin:          h("x-region-pin"),
		ClientRegion: clientRegionOf(query, h("x-client-region")),
		IndexHash:    h("x-index-hash"),
		SchemaRev:    h("x-schema-rev"),
		ModelTag:     h("x-model-tag"),
		Fallback:     h("x-ragparity-fallback"),
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-ragparity-fallback"); len(v) > 0 {
			q.Fallback = v[0]
		}
	}
	st := a.s.state.Load()
	now := a.s.now()
	res := st.adm.Admit(&q, now)
	st.count(&q, &res, now)
	if res.Code == 200 {
		return &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers: []*corev3.HeaderValueOption{headerOption("x-route-region", res.Region)},
			}},
		}, nil
	}
	hdrs := []*corev3.HeaderValueOption{
		headerOption("x-ragparity-reason", headerSafe(res.Reason)),
		headerOption("cache-control", "no-store"),
		headerOption("content-type", "text/plain; charset=utf-8"),
	}
	if res.Region != "" {
		hdrs = append(hdrs, headerOption("x-route-region", res.Region))
	}
	if st.v != nil {
		hdrs = append(hdrs, headerOption("x-ragparity-verdict", st.v.ID))
	}
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode(res.Code)), Message: "ragparity: " + strconv.Itoa(res.Code) + ": " + res.Reason},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(res.Code)},
			Headers: hdrs,
			Body:    res.Reason + "\n",
		}},
	}, nil
}

func headerOption(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, Value: v},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// grpcCode is the gRPC status of a refusal (Envoy denies on any code but
// OK; the code tells a log reader the kind).
func grpcCode(httpCode int) codes.Code {
	switch httpCode {
	case 400:
		return codes.InvalidArgument
	case 409:
		return codes.FailedPrecondition
	case 421:
		return codes.PermissionDenied
	default:
		return codes.Unavailable
	}
}
