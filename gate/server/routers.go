package server

import (
	"fmt"
	"regexp"
	"strings"
	"text/template"
)

// nginxTemplate is the nginx configuration documented above and tested by
// TestNginxAuthRequest in cmd/ragparity.
var nginxTemplate = template.Must(template.New("nginx").Parse(`# ragparity admission in front of the regions (nginx auth_request).
# nginx allows on 2xx, denies on 401/403 and turns any other auth answer
# (ragparity's 503 "no admitted region", 409 "other release", 400 "bad
# header", or ragparity down) into 500: error_page catches that 500 so no
# 5xx reaches clients. nginx routes on X-Route-Region, so it sends
# X-Ragparity-Fallback: route and a request pinned to a region that is
# not admitted goes to the admitted alternative (not 421).
# keepalive_timeout stays under ragparity's 2 min idle timeout, so nginx
# never reuses a connection ragparity is closing (that would refuse).
upstream ragparity { server {{.Ragparity}}; keepalive 32; keepalive_timeout 60s; }
upstream rp_refused { server {{.Refused}}; }
{{range .Regions}}upstream {{.Upstream}} { server {{.Addr}}; }{{if .Comment}}  # {{.Comment}}{{end}}
{{end}}
# X-Route-Region -> upstream; an unknown name is refused.
map $rp_route $rp_upstream {
    default rp_refused;
{{range .Regions}}    "{{.Name}}" {{.Upstream}};
{{end}}}

server {
    listen {{.Listen}};

    location / {
        auth_request     /_ragparity_admit;
        auth_request_set $rp_route  $upstream_http_x_route_region;
        auth_request_set $rp_status $upstream_status;
        auth_request_set $rp_reason $upstream_http_x_ragparity_reason;
        error_page 500 = @ragparity_refused;
        proxy_pass http://$rp_upstream;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header X-Route-Region $rp_route;
    }

    location = /_ragparity_admit {
        internal;
        # The client's URI goes after /v1/admit (as Envoy's path_prefix
        # does), so ?client_region= reaches ragparity.
        proxy_pass http://ragparity/v1/admit$request_uri;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Ragparity-Fallback route;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_connect_timeout 1s;
        proxy_read_timeout 2s;
    }

    # ragparity refused (503), named another release (409) or is down.
    location @ragparity_refused {
        add_header X-Ragparity-Reason $rp_reason always;
        if ($rp_status = 409) {
            return 409 "release mismatch: $rp_reason\n";
        }
        if ($rp_status = 400) {
            return 400 "bad request: $rp_reason\n";
        }
        return 421 "no admitted region: $rp_reason\n";
    }
}

# Answers requests whose X-Route-Region nginx does not know.
server {
    listen {{.Refused}};
    return 421 "no admitted region\n";
}
`))

// NginxRegion is one region upstream in the nginx configuration.
type NginxRegion struct{ Name, Upstream, Addr, Comment string }

// NginxConfig fills nginxTemplate.
type NginxConfig struct {
	Listen, Ragparity, Refused string
	Regions                    []NginxRegion
}

var notUpstreamChar = regexp.MustCompile(`[^A-Za-z0-9_]`)

// RenderNginx renders the nginx auth_request configuration of c.
func RenderNginx(c NginxConfig) (string, error) {
	for i := range c.Regions {
		if c.Regions[i].Upstream == "" {
			c.Regions[i].Upstream = "region_" + notUpstreamChar.ReplaceAllString(c.Regions[i].Name, "_")
		}
		if strings.ContainsAny(c.Regions[i].Name, "\"\\\n") {
			return "", fmt.Errorf("region name %q cannot be written in an nginx map", c.Regions[i].Name)
		}
	}
	var b strings.Builder
	err := nginxTemplate.Execute(&b, c)
	return b.String(), err
}
