package server

import (
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/goccy/go-yaml"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestRenderEnvoy decodes the printed Envoy bootstrap strictly with
// Envoy's own protos (an unknown or misspelt field fails), runs their
// validation rules on it and on the filters inside, and checks the
// ext_authz filter is the one the README describes.
func TestRenderEnvoy(t *testing.T) {
	out, err := RenderEnvoy(EnvoyConfig{Listen: "0.0.0.0:10000", Authz: "ragparity.internal:9001",
		Regions: []EnvoyRegion{{Name: "eu-west-1", Addr: "eu.internal:8000", Comment: "set me"}, {Name: "us", Addr: "10.0.0.9:8000"}}})
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON([]byte(out))
	if err != nil {
		t.Fatalf("printed config is not YAML: %v\n%s", err, out)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatalf("Envoy's Bootstrap proto refuses the printed config: %v\n%s", err, out)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("Bootstrap validation: %v", err)
	}
	l := b.GetStaticResources().GetListeners()
	if len(l) != 1 {
		t.Fatalf("%d listeners", len(l))
	}
	var hcm hcmv3.HttpConnectionManager
	if err := l[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	if err := hcm.ValidateAll(); err != nil {
		t.Fatalf("HttpConnectionManager validation: %v", err)
	}
	var authz extauthzv3.ExtAuthz
	if err := hcm.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(&authz); err != nil {
		t.Fatal(err)
	}
	if err := authz.ValidateAll(); err != nil {
		t.Fatalf("ExtAuthz validation: %v", err)
	}
	gs := authz.GetGrpcService()
	if got, want := gs.GetEnvoyGrpc().GetClusterName(), "ragparity_authz"; got != want {
		t.Errorf("ext_authz cluster = %q, want %q", got, want)
	}
	if md := gs.GetInitialMetadata(); len(md) != 1 || md[0].GetKey() != "x-ragparity-fallback" || md[0].GetValue() != FallbackRoute {
		t.Errorf("initial_metadata = %v, want x-ragparity-fallback: route", md)
	}
	if authz.GetFailureModeAllow() || authz.GetStatusOnError().GetCode() != 421 || !authz.GetClearRouteCache() {
		t.Errorf("ext_authz must fail closed with 421 and clear the route cache: %v", &authz)
	}
	routes := hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
	if len(routes) != 3 || routes[0].GetMatch().GetHeaders()[0].GetStringMatch().GetExact() != "eu-west-1" ||
		routes[0].GetRoute().GetCluster() != "region_eu_west_1" || routes[2].GetDirectResponse().GetStatus() != 421 {
		t.Errorf("routes: %v", routes)
	}
	if m := hcm.GetLocalReplyConfig().GetMappers(); len(m) != 1 || m[0].GetStatusCode().GetValue() != 421 ||
		m[0].GetFilter().GetStatusCodeFilter().GetComparison().GetValue().GetDefaultValue() != 503 {
		t.Errorf("local reply mappers: %v", m)
	}
	if !strings.Contains(out, "# set me") {
		t.Error("region comment lost")
	}

	t.Run("ATypoInsideTheFilterIsRefused", func(t *testing.T) {
		js, _ := yaml.YAMLToJSON([]byte(strings.Replace(out, "clear_route_cache: true", "clear_route_cach: true", 1)))
		if err := protojson.Unmarshal(js, &bootstrapv3.Bootstrap{}); err == nil {
			t.Fatal("a misspelt ext_authz field was accepted: the decoding above proves nothing")
		}
	})
	t.Run("BadAddresses", func(t *testing.T) {
		for _, c := range []EnvoyConfig{
			{Listen: "10000", Authz: "a:1", Regions: []EnvoyRegion{{Name: "a", Addr: "h:1"}}},
			{Listen: ":1", Authz: "a", Regions: []EnvoyRegion{{Name: "a", Addr: "h:1"}}},
			{Listen: ":1", Authz: "a:1", Regions: []EnvoyRegion{{Name: "a b", Addr: "h:1"}}},
			{Listen: ":1", Authz: "a:1", Regions: []EnvoyRegion{{Name: "a", Addr: "h:99999"}}},
			{Listen: ":1", Authz: "a:1"},
		} {
			if _, err := RenderEnvoy(c); err == nil {
				t.Errorf("RenderEnvoy(%+v) accepted", c)
			}
		}
	})
}
