package server

import (
	"fmt"
	"strings"
	"text/template"
)

// caddyTemplate is the Caddyfile printed by serve --print-caddy and run by
// TestCaddyForwardAuth in cmd/ragparity.
var caddyTemplate = template.Must(template.New("caddy").Parse(`# ragparity admission in front of the regions (Caddy forward_auth).
# Caddy asks ragparity's /v1/admit (the client's URI appended, so
# ?client_region= reaches it) with the client's headers; a 2xx copies
# X-Route-Region onto the request, which is routed on it. Caddy sends
# X-Ragparity-Fallback: route, so a request pinned to a region that is
# not admitted gets the admitted alternative. Refusals are answered here:
# 409 (another release), 400 (a bad header) and 421 for everything else
# (no admitted region, ragparity down), so no 5xx of the gate reaches a
# client.
{
	admin off
}

{{.Site}} {
{{if .Bind}}	bind {{.Bind}}
{{end}}	route {
		forward_auth {{.Ragparity}} {
			uri /v1/admit{uri}
			copy_headers X-Route-Region
			header_up X-Ragparity-Fallback route
			@rp_conflict status 409
			handle_response @rp_conflict {
				header X-Ragparity-Reason "{rp.header.X-Ragparity-Reason}"
				respond "release mismatch: {rp.header.X-Ragparity-Reason}" 409
			}
			@rp_bad status 400
			handle_response @rp_bad {
				header X-Ragparity-Reason "{rp.header.X-Ragparity-Reason}"
				respond "bad request: {rp.header.X-Ragparity-Reason}" 400
			}
			handle_response {
				header X-Ragparity-Reason "{rp.header.X-Ragparity-Reason}"
				respond "no admitted region: {rp.header.X-Ragparity-Reason}" 421
			}
		}
{{range .Regions}}		@{{.Matcher}} header X-Route-Region {{.Name}}
		reverse_proxy @{{.Matcher}} {{.Addr}}{{if .Comment}}  # {{.Comment}}{{end}}
{{end}}		respond "no admitted region" 421
	}
	# ragparity unreachable: fail closed.
	handle_errors {
		respond "no admitted region: {err.message}" 421
	}
}
`))

// CaddyRegion is one region in the Caddyfile.
type CaddyRegion struct {
	Name, Addr, Comment string
	Matcher             string // set by RenderCaddy
}

// CaddyConfig fills caddyTemplate.
type CaddyConfig struct {
	Site      string // site address, e.g. ":80"
	Bind      string // optional interface to listen on, e.g. "127.0.0.1"
	Ragparity string // host:port of ragparity serve
	Regions   []CaddyRegion
}

// RenderCaddy renders the Caddyfile of c.
func RenderCaddy(c CaddyConfig) (string, error) {
	if len(c.Regions) == 0 {
		return "", fmt.Errorf("caddy: no regions")
	}
	if c.Site == "" || c.Ragparity == "" || strings.ContainsAny(c.Site+c.Ragparity+c.Bind, " \t\n{}\"") {
		return "", fmt.Errorf("caddy: site %q and ragparity address %q must be set, without spaces or braces", c.Site, c.Ragparity)
	}
	for i := range c.Regions {
		r := &c.Regions[i]
		if !haproxyName.MatchString(r.Name) {
			return "", fmt.Errorf("caddy: region name %q cannot be written in a Caddyfile matcher (letters, digits, '_', '.', ':', '-')", r.Name)
		}
		r.Matcher = "region_" + notUpstreamChar.ReplaceAllString(r.Name, "_")
	}
	var b strings.Builder
	err := caddyTemplate.Execute(&b, c)
	return b.String(), err
}
