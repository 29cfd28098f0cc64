package server

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"text/template"
)

// envoyTemplate is the Envoy bootstrap printed by serve --print-envoy:
// the gRPC ext_authz filter asking ragparity's Authorization/Check, and
// routes on the x-route-region header it adds. TestRenderEnvoy decodes it
// strictly with Envoy's own protos (go-control-plane) and validates it.
var envoyTemplate = template.Must(template.New("envoy").Parse(`# ragparity admission in front of the regions (Envoy gRPC ext_authz).
# For every request Envoy calls ragparity's envoy.service.auth.v3.
# Authorization/Check (serve --grpc-addr) with the request's headers:
#   OK      ragparity adds x-route-region (overwriting a client's);
#           clear_route_cache re-picks the route, which matches that header.
#   DENIED  ragparity's status, reason (x-ragparity-reason) and body reach
#           the client: 409 other release, 400 bad header, 421 naming the
#           alternative; 503 (no admitted region, verdict expired or
#           inconclusive) is mapped to 421 below so no 5xx of the gate
#           reaches a client.
#   ragparity unreachable or slow: status_on_error 421 (fail closed).
# initial_metadata tells ragparity this Envoy routes on x-route-region, so
# a request pinned to a region that is not admitted goes to the admitted
# alternative instead of 421. Istio: the same grpc_service goes in an
# extensionProviders envoyExtAuthzGrpc entry of the mesh config.
static_resources:
  listeners:
  - name: ragparity_regions
    address:
      socket_address: { address: {{.ListenHost}}, port_value: {{.ListenPort}} }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ragparity_regions
          local_reply_config:
            mappers:
            - filter:
                status_code_filter:
                  comparison:
                    op: EQ
                    value: { default_value: 503, runtime_key: ragparity.refused_status }
              status_code: 421
          route_config:
            name: ragparity_regions
            virtual_hosts:
            - name: regions
              domains: ["*"]
              routes:
{{range .Regions}}              - match:
                  prefix: "/"
                  headers:
                  - name: x-route-region
                    string_match: { exact: "{{.Name}}" }
                route: { cluster: {{.Cluster}} }
{{end}}              - match: { prefix: "/" }
                direct_response:
                  status: 421
                  body: { inline_string: "no admitted region\n" }
          http_filters:
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              grpc_service:
                envoy_grpc: { cluster_name: ragparity_authz }
                timeout: 0.5s
                initial_metadata:
                - key: x-ragparity-fallback
                  value: route
              failure_mode_allow: false
              status_on_error: { code: MisdirectedRequest }
              clear_route_cache: true
              include_peer_certificate: false
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: ragparity_authz
    type: STRICT_DNS
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }
    load_assignment:
      cluster_name: ragparity_authz
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: {{.AuthzHost}}, port_value: {{.AuthzPort}} } } }
{{range .Regions}}  - name: {{.Cluster}}{{if .Comment}}  # {{.Comment}}{{end}}
    type: STRICT_DNS
    connect_timeout: 1s
    load_assignment:
      cluster_name: {{.Cluster}}
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: {{.Host}}, port_value: {{.Port}} } } }
{{end}}`))

// EnvoyRegion is one region cluster in the Envoy configuration.
type EnvoyRegion struct {
	Name, Addr, Comment string
	Cluster, Host, Port string // set by RenderEnvoy
}

// EnvoyConfig fills envoyTemplate.
type EnvoyConfig struct {
	Listen  string // host:port Envoy listens on
	Authz   string // host:port of serve's gRPC ext_authz (--grpc-addr)
	Regions []EnvoyRegion

	ListenHost, ListenPort, AuthzHost, AuthzPort string // set by RenderEnvoy
}

func splitPort(what, addr string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(addr)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return "", "", fmt.Errorf("envoy: %s %q: want host:port", what, addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// RenderEnvoy renders the Envoy bootstrap of c.
func RenderEnvoy(c EnvoyConfig) (string, error) {
	var err error
	if c.ListenHost, c.ListenPort, err = splitPort("listen address", c.Listen); err != nil {
		return "", err
	}
	if c.AuthzHost, c.AuthzPort, err = splitPort("ragparity gRPC address", c.Authz); err != nil {
		return "", err
	}
	if len(c.Regions) == 0 {
		return "", fmt.Errorf("envoy: no regions")
	}
	for i := range c.Regions {
		r := &c.Regions[i]
		if !haproxyName.MatchString(r.Name) {
			return "", fmt.Errorf("envoy: region name %q cannot be written in the configuration (letters, digits, '_', '.', ':', '-')", r.Name)
		}
		r.Cluster = "region_" + notUpstreamChar.ReplaceAllString(r.Name, "_")
		if r.Host, r.Port, err = splitPort("region "+r.Name+" address", r.Addr); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	err = envoyTemplate.Execute(&b, c)
	return b.String(), err
}
