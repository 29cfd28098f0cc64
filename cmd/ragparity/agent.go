package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/ragparity/ragparity/agent"
	"github.com/ragparity/ragparity/gate"
)

var agentHelp = help("agent")

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keygen" {
		return runAgentKeygen(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	cfgPath := fs.String("config", "ragparity.yaml", "the region's config (YAML)")
	addr := fs.String("addr", ":8443", "listen address")
	region := fs.String("region", "", "the region to scan (default agent.region, else the only one)")
	fs.Usage = func() { fmt.Fprint(stderr, agentHelp); fs.PrintDefaults() }
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	cf := commonFlags{config: *cfgPath}
	cfg, err := cf.load()
	if err != nil {
		return fail(stderr, err)
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, a...))
	}
	srv, tc, err := gate.AgentServer(cfg, *region, logf)
	if err != nil {
		return fail(stderr, err)
	}
	defer srv.Close()
	err = agent.ListenAndServe(ctx, srv, *addr, tc, func(addr string) {
		logf("agent: key %s, listening on %s (tls %v, mTLS %v)", srv.KeyID(), addr, tc != nil, cfg.Agent.ClientCA != "")
	})
	if err != nil {
		return fail(stderr, err)
	}
	return 0
}

func runAgentKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agent keygen", flag.ContinueOnError)
	out := fs.String("out", "", "folder for the key pair (created 0700 if missing)")
	fs.Usage = func() { fmt.Fprint(stderr, agentHelp); fs.PrintDefaults() }
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	if *out == "" {
		return fail(stderr, errors.New("--out DIR is required"))
	}
	priv, pub, pk, err := gate.WriteKeyPair(*out)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "private key %s (mode 0600): the agent's agent.signing_key: file:%s\npublic key  %s: list it in the gate's regions[].agent.public_keys\nkey id      %s\n",
		priv, priv, pub, gate.KeyID(pk))
	return 0
}
