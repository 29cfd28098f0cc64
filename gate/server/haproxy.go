package server

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// haproxyTemplate is the HAProxy configuration printed by serve
// --print-haproxy and run by TestHAProxyHealthChecks in cmd/ragparity.
var haproxyTemplate = template.Must(template.New("haproxy").Funcs(template.FuncMap{"ms": func(d time.Duration) string {
	return fmt.Sprintf("%dms", d.Milliseconds())
}}).Parse(`# ragparity in front of the regions (HAProxy health checks).
# Each region is one backend whose server HAProxy checks against ragparity:
# GET /v1/regions/<region>/ready answers 200 while the region is admitted
# and 503 (with the reason) once a verification blocks it. After {{.Fall}} failed
# checks {{ms .Inter}} apart the server is down and no request goes there; after
# {{.Rise}} passing checks it is back. A request pinned (X-Region-Pin) to a
# region that is down goes to any region that is up; with none up HAProxy
# answers 421 itself, so no 5xx of the gate reaches a client.
# With gate.tls_cert, add "check-ssl verify required ca-file <ca.pem>" to
# each checked server.
# HAProxy follows region health only: release, index hash, schema and model
# headers are not matched per request (use /v1/admit from nginx, Caddy or
# Envoy for that).
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    # A request whose region went down between the check and the connect
    # is sent again to another server.
    option redispatch
    retries 2

frontend ragparity_regions
    bind {{.Listen}}
    # Nothing admitted: 421, as nginx's configuration answers.
    http-request return status 421 content-type text/plain string "no admitted region" if { nbsrv(rp_any_region) eq 0 }
{{range .Regions}}    use_backend {{.Backend}} if { req.hdr(X-Region-Pin) -m str {{.Name}} } { nbsrv({{.Backend}}) gt 0 }
{{end}}    default_backend rp_any_region
{{range .Regions}}
backend {{.Backend}}
    option httpchk GET /v1/regions/{{.Name}}/ready
    http-check expect status 200
    http-send-name-header X-Route-Region
    server {{.Server}} {{.Addr}} check addr {{$.RagparityHost}} port {{$.RagparityPort}} inter {{ms $.Inter}} fall {{$.Fall}} rise {{$.Rise}}{{if .Comment}}  # {{.Comment}}{{end}}
{{end}}
# Any region that is up (unpinned requests, and pinned ones whose region is
# down): each server follows its region's check.
backend rp_any_region
    balance roundrobin
    # The server's name (its region) goes to the region in X-Route-Region.
    http-send-name-header X-Route-Region
{{range .Regions}}    server {{.Server}} {{.Addr}} track {{.Backend}}/{{.Server}}
{{end}}`))

// HAProxyRegion is one region in the HAProxy configuration.
type HAProxyRegion struct {
	Name, Addr, Comment string
	Backend, Server     string // set by RenderHAProxy
}

// HAProxyConfig fills haproxyTemplate.
type HAProxyConfig struct {
	Listen    string // bind address, e.g. ":80"
	Ragparity string // host:port of ragparity serve
	Regions   []HAProxyRegion
	// Inter is the check interval (default 2 s); Fall failed checks take
	// a region out (default 2) and Rise passing ones bring it back
	// (default 2).
	Inter      time.Duration
	Fall, Rise int

	RagparityHost, RagparityPort string // set by RenderHAProxy
}

var haproxyName = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// RenderHAProxy renders the HAProxy configuration of c.
func RenderHAProxy(c HAProxyConfig) (string, error) {
	if c.Inter <= 0 {
		c.Inter = 2 * time.Second
	}
	if c.Inter < time.Millisecond {
		return "", fmt.Errorf("haproxy: check interval %s is under 1ms", c.Inter)
	}
	if c.Fall <= 0 {
		c.Fall = 2
	}
	if c.Rise <= 0 {
		c.Rise = 2
	}
	host, port, err := net.SplitHostPort(c.Ragparity)
	if err != nil {
		return "", fmt.Errorf("haproxy: ragparity address %q: %w", c.Ragparity, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	c.RagparityHost, c.RagparityPort = host, port
	if len(c.Regions) == 0 {
		return "", fmt.Errorf("haproxy: no regions")
	}
	for i := range c.Regions {
		r := &c.Regions[i]
		if !haproxyName.MatchString(r.Name) {
			return "", fmt.Errorf("haproxy: region name %q cannot name an HAProxy server (letters, digits, '_', '.', ':', '-')", r.Name)
		}
		// The server is named after its region: http-send-name-header
		// sends that name as X-Route-Region.
		r.Server = r.Name
		r.Backend = "rp_region_" + notUpstreamChar.ReplaceAllString(r.Name, "_")
	}
	var b strings.Builder
	err = haproxyTemplate.Execute(&b, c)
	return b.String(), err
}
