package server

import (
	"fmt"
	"net"
	"strings"

	"github.com/ragparity/ragparity/config"
)

// RouterKinds are the router configurations PrintRouter writes.
var RouterKinds = []string{"nginx", "haproxy", "caddy", "envoy", "k8s", "argo"}

// PrintOptions are what a printed router configuration needs beyond the
// config's regions.
type PrintOptions struct {
	// Addr is serve's HTTP address; GRPCAddr its ext_authz address
	// (Envoy; default 127.0.0.1:9001).
	Addr, GRPCAddr string
	// Version is the build's version: the image tag of the Kubernetes
	// manifests ("latest" for a development build).
	Version string
}

// PrintRouter renders the configuration of one router kind (RouterKinds)
// for the config's regions. Each region's upstream is a placeholder
// (REGION.example.internal:8000) with a comment saying to set it.
func PrintRouter(kind string, cfg *config.Config, o PrintOptions) (string, error) {
	type region struct{ name, addr, comment string }
	var rs []region
	for _, r := range cfg.Regions {
		rs = append(rs, region{r.Name, r.Name + ".example.internal:8000", "set region " + r.Name + "'s address"})
	}
	switch kind {
	case "nginx":
		c := NginxConfig{Listen: "80", Ragparity: o.Addr, Refused: "127.0.0.1:8099"}
		for _, r := range rs {
			c.Regions = append(c.Regions, NginxRegion{Name: r.name, Addr: r.addr, Comment: r.comment})
		}
		return RenderNginx(c)
	case "haproxy":
		c := HAProxyConfig{Listen: ":80", Ragparity: o.Addr}
		for _, r := range rs {
			c.Regions = append(c.Regions, HAProxyRegion{Name: r.name, Addr: r.addr, Comment: r.comment})
		}
		return RenderHAProxy(c)
	case "caddy":
		c := CaddyConfig{Site: ":80", Ragparity: o.Addr}
		for _, r := range rs {
			c.Regions = append(c.Regions, CaddyRegion{Name: r.name, Addr: r.addr, Comment: r.comment})
		}
		return RenderCaddy(c)
	case "envoy":
		authz := o.GRPCAddr
		if authz == "" {
			authz = "127.0.0.1:9001"
		}
		c := EnvoyConfig{Listen: "0.0.0.0:10000", Authz: authz}
		for _, r := range rs {
			c.Regions = append(c.Regions, EnvoyRegion{Name: r.name, Addr: r.addr, Comment: r.comment})
		}
		return RenderEnvoy(c)
	case "k8s", "argo":
		_, port, err := net.SplitHostPort(o.Addr)
		if err != nil {
			return "", fmt.Errorf("--addr %q: %w", o.Addr, err)
		}
		tag := o.Version
		if strings.Trim(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" || tag == "devel" || tag == "" {
			tag = "latest" // a development build has no image tag of its own
		}
		c := KubeConfig{Image: "ragparity/ragparity:" + tag, Port: port, Host: "RAGPARITY_CLUSTER_IP",
			URL: "http://ragparity.default.svc.cluster.local:" + port}
		for _, r := range cfg.Regions {
			c.Regions = append(c.Regions, r.Name)
		}
		if kind == "argo" {
			return RenderArgo(c)
		}
		return RenderKube(c)
	}
	return "", fmt.Errorf("no router configuration %q (known: %s)", kind, strings.Join(RouterKinds, ", "))
}
