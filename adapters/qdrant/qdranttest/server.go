// Package qdranttest is an in-memory Qdrant server speaking Qdrant's real
// gRPC protocol (the service definitions generated in
// github.com/qdrant/go-client/qdrant). Tests and demos point the official
// client, or ragparity's qdrant adapter, at it instead of a real server.
//
// Implemented where it matters for ragparity, and faithful to Qdrant there:
//
//   - Collections: Create, Get, List, Delete, CollectionExists,
//     UpdateAliases (create / rename / delete, applied atomically),
//     ListAliases, ListCollectionAliases.
//   - Points: Upsert, Delete, Get, Count, Scroll, Search, Query (exact
//     nearest neighbours).
//   - Qdrant.HealthCheck (so the client's version check passes).
//
// Every other RPC answers codes.Unimplemented. Snapshots, sharding, sparse
// and multi vectors, payload indexes and payload filters other than HasId
// are not implemented.
package qdranttest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Version is the Qdrant version the server reports in HealthCheck.
const Version = "1.17.1"

// Server is an in-memory Qdrant. The zero value is not usable; call New (or
// Start in tests).
type Server struct {
	// ScrollHook, when set, is called before each Scroll page is answered,
	// with the request context and the 0-based number of the page within
	// its scroll (0 for a request without offset, otherwise the number of
	// points ordered before the offset divided by the page limit). A
	// non-nil error is returned to the client as the RPC's status (a
	// context error becomes Canceled / DeadlineExceeded). A hook that
	// blocks until ctx.Done() simulates a server that stops answering.
	// Set it before issuing requests.
	ScrollHook func(ctx context.Context, page int) error

	// DenseOutput selects how dense vectors are sent back in VectorOutput:
	// false (the default) fills the deprecated `data` field, as Qdrant
	// 1.x servers do; true fills the newer `dense` oneof instead. Both are
	// valid wire shapes a client must accept. Set it before issuing
	// requests.
	DenseOutput bool

	// APIKey, when non-empty, makes every RPC require the same value in the
	// "api-key" metadata header, as Qdrant does with service.api_key set.
	// Set it before serving.
	APIKey string

	mu      sync.Mutex
	colls   map[string]*collection
	aliases map[string]string // alias -> collection
	opID    uint64

	scrolled atomic.Int64

	grpc     *grpc.Server
	lisMu    sync.Mutex
	lis      net.Listener
	stopOnce sync.Once
}

// New returns a server with no collections, ready to Serve.
func New() *Server {
	s := &Server{
		colls:   map[string]*collection{},
		aliases: map[string]string{},
	}
	s.grpc = grpc.NewServer(
		grpc.ChainUnaryInterceptor(s.authInterceptor),
		// Qdrant's service.max_request_size_mb default.
		grpc.MaxRecvMsgSize(32<<20),
		// The official client pings every 10s even when idle; accept that
		// as Qdrant does instead of closing the connection (too_many_pings).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	qdrant.RegisterCollectionsServer(s.grpc, &collectionsService{s: s})
	qdrant.RegisterPointsServer(s.grpc, &pointsService{s: s})
	qdrant.RegisterQdrantServer(s.grpc, &healthService{})
	return s
}

// Start starts a server on 127.0.0.1 (a free port) and registers its Stop
// with tb.Cleanup.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s := New()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("qdranttest: listen: %v", err)
	}
	s.setListener(lis)
	go func() { _ = s.grpc.Serve(lis) }()
	tb.Cleanup(s.Stop)
	return s
}

// Serve serves gRPC on lis until Stop; it returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	s.setListener(lis)
	if err := s.grpc.Serve(lis); err != nil && err != grpc.ErrServerStopped {
		return err
	}
	return nil
}

func (s *Server) setListener(lis net.Listener) {
	s.lisMu.Lock()
	s.lis = lis
	s.lisMu.Unlock()
}

// Addr is the host:port the server listens on ("" before Serve / Start).
func (s *Server) Addr() string {
	s.lisMu.Lock()
	defer s.lisMu.Unlock()
	if s.lis == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// URL returns a ragparity qdrant URL for collection on this server, e.g.
// "qdrant://127.0.0.1:40123/docs".
func (s *Server) URL(collection string) string {
	return "qdrant://" + s.Addr() + "/" + collection
}

// Stop closes the listener and all connections; in-flight RPCs see their
// contexts cancelled. It is safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(s.grpc.Stop)
}

// ScrolledPoints is the number of points the server has returned from
// Scroll since it started (or since ResetScrolledPoints).
func (s *Server) ScrolledPoints() int64 { return s.scrolled.Load() }

// ResetScrolledPoints sets the ScrolledPoints counter to zero.
func (s *Server) ResetScrolledPoints() { s.scrolled.Store(0) }

func (s *Server) authInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.APIKey != "" && info.FullMethod != qdrant.Qdrant_HealthCheck_FullMethodName {
		md, _ := metadata.FromIncomingContext(ctx)
		got := md.Get("api-key")
		if len(got) == 0 || got[0] != s.APIKey {
			return nil, status.Error(codes.PermissionDenied, "Invalid api-key")
		}
	}
	return handler(ctx, req)
}

type healthService struct {
	qdrant.UnimplementedQdrantServer
}

func (healthService) HealthCheck(context.Context, *qdrant.HealthCheckRequest) (*qdrant.HealthCheckReply, error) {
	return &qdrant.HealthCheckReply{Title: "qdrant - vector search engine (qdranttest)", Version: Version}, nil
}

// resolveLocked maps a collection or alias name to its collection. Callers
// hold s.mu.
func (s *Server) resolveLocked(name string) (*collection, error) {
	if c, ok := s.colls[name]; ok {
		return c, nil
	}
	if target, ok := s.aliases[name]; ok {
		if c, ok := s.colls[target]; ok {
			return c, nil
		}
	}
	return nil, errNotFoundCollection(name)
}

func (s *Server) nextOpIDLocked() uint64 {
	s.opID++
	return s.opID
}

// Error helpers: Qdrant formats StorageError as "<Kind>: <description>" and
// maps the kind to a gRPC code.

func errNotFoundCollection(name string) error {
	return status.Errorf(codes.NotFound, "Not found: Collection `%s` doesn't exist!", name)
}

func errBadInput(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, "Wrong input: "+fmt.Sprintf(format, args...))
}

func errValidation(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, "Validation error in body: ["+fmt.Sprintf(format, args...)+"]")
}

func errUnimplemented(what string) error {
	return status.Errorf(codes.Unimplemented, "qdranttest: %s is not implemented", what)
}
