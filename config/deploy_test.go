package config

import (
	"os"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestDeployAgentConfigParses: the region.yaml that deploy/agent.yaml
// mounts is a valid agent config.
func TestDeployAgentConfigParses(t *testing.T) {
	b, err := os.ReadFile("../deploy/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var text string
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var cm struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := yaml.Unmarshal([]byte(doc), &cm); err != nil {
			t.Fatalf("deploy/agent.yaml: %v", err)
		}
		if cm.Kind == "ConfigMap" {
			text = cm.Data["region.yaml"]
		}
	}
	if text == "" {
		t.Fatal("deploy/agent.yaml has no ConfigMap with region.yaml")
	}
	t.Setenv("RAGPARITY_AGENT_TOKEN", "t")
	t.Setenv("RAGPARITY_AGENT_STORE", "postgres://u@h:5432/db?table=chunks")
	c, err := Parse("region.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if c.Agent.ClientCA == "" || c.Agent.Token != "t" || len(c.Regions) != 1 {
		t.Errorf("agent config %+v", c.Agent)
	}
}
