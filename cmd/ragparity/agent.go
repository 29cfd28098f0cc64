package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/ragparity/ragparity/gate"
)

func init() {
	register("agent", "run a region's agent: scan next to its stores, serve signed leaves to the gate (agent keygen: a key pair)", runAgent)
}

const agentHelp = `Usage: ragparity agent --config region.yaml --addr :8443 [--region NAME]
       ragparity agent keygen --out DIR

Scans one region next to its stores, keeps the scan fresh (agent.interval,
the store's change marker every agent.check_every) and serves its settings,
Merkle leaves and bucket records to the gate, signed with agent.signing_key,
to requests carrying agent.token (and a client certificate signed by
agent.client_ca when set). See README "Regional agents".

keygen writes an Ed25519 pair to DIR (verdict-signing.key, .pub): the .key
is agent.signing_key, the .pub goes in the gate's regions[].agent.public_keys.

`

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
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(stderr, err)
	}
	hs := &http.Server{Handler: srv, TLSConfig: tc, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go srv.Run(ctx)
	errc := make(chan error, 1)
	go func() {
		if tc != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	logf("agent: key %s, listening on %s (tls %v, mTLS %v)", srv.KeyID(), ln.Addr(), tc != nil, cfg.Agent.ClientCA != "")
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		return 0
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return 0
		}
		return fail(stderr, err)
	}
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
