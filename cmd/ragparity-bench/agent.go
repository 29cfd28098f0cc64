package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/agent"
	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/verifier"
)

// benchAgent measures the bytes moved between a regional agent and the
// gate (on the wire, TLS included) for one verification and for
// localising one changed point of a pgvector table, beside the bytes a
// direct scan of the same table moves (through a counting TCP proxy in
// front of PostgreSQL).
func benchAgent(args []string) error {
	fs := flag.NewFlagSet("agent", flag.ExitOnError)
	points := fs.Int("points", 1000000, "table size")
	dim := fs.Int("dim", 384, "vector dimensions")
	fs.Parse(args)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	base, err := ensureTable(ctx, conn, *points, *dim)
	if err != nil {
		return err
	}
	// The bench changes a row for a while: a copy of its own, kept
	// between runs, so that the shared table is never touched.
	table := "rp_bench_agent_" + strings.TrimPrefix(base, "rp_bench_")
	var count int64
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&count); err != nil || count != int64(*points) {
		fmt.Fprintf(os.Stderr, "copying %s to %s...\n", base, table)
		for _, s := range []string{"DROP TABLE IF EXISTS " + table, "CREATE TABLE " + table + " (LIKE " + base + " INCLUDING ALL)",
			"INSERT INTO " + table + " SELECT * FROM " + base, "VACUUM ANALYZE " + table} {
			if _, err := conn.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
	}
	tableURL := func(table, host string) string {
		u, _ := url.Parse(pgtest.TableURL(table, "payload", "metadata", "text", "content"))
		if host != "" {
			u.Host = host
		}
		return u.String()
	}
	storeURL := func(host string) string { return tableURL(table, host) }
	pgHost, _ := url.Parse(pgtest.URL())
	proxy, err := startCountingProxy(pgHost.Host)
	if err != nil {
		return err
	}
	defer proxy.Close()

	dir, err := os.MkdirTemp("", "rp-bench-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	token := base64.RawURLEncoding.EncodeToString(key[:16])
	srv, err := agent.New(agent.Options{Region: "eu", Vectors: storeURL(""), Key: key, Token: token, SpillDir: dir, Timeout: 30 * time.Minute})
	if err != nil {
		return err
	}
	defer srv.Close()
	t0 := time.Now()
	if err := srv.Rescan(ctx); err != nil {
		return err
	}
	agentScan := time.Since(t0)
	ts := httptest.NewTLSServer(srv)
	defer ts.Close()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		return err
	}
	cfgText := fmt.Sprintf("release: bench\ntimeout: 30m\nregions:\n  - name: direct\n    vectors: %q\n  - name: eu\n    agent:\n      url: %q\n      token: %q\n      public_keys: [%q]\n      ca: %q\n",
		storeURL(proxy.Addr()), ts.URL, token, base64.StdEncoding.EncodeToString(pub), caFile)
	cfg, err := config.Parse("bench-agent.yaml", []byte(cfgText))
	if err != nil {
		return err
	}
	direct, eu := &cfg.Regions[0], &cfg.Regions[1]

	// Direct scan (with the records a diff needs), through the proxy.
	t0 = time.Now()
	ref := gate.ScanRegions(ctx, cfg, []*config.Region{direct}, gate.ScanOptions{Spill: true})
	if ref[0].Err != nil {
		return ref[0].Err
	}
	defer ref[0].Close()
	directBytes, directTime := proxy.Total(), time.Since(t0)

	// One verification: hash fetches the whole leaves (as `ragparity hash`
	// and a gate with no other region's leaves to compare against).
	var n agent.Counter
	t0 = time.Now()
	out := gate.ScanRegions(ctx, cfg, []*config.Region{eu}, gate.ScanOptions{AgentCounter: &n})
	if out[0].Err != nil {
		return out[0].Err
	}
	verifyBytes, verifyTime := n.Total(), time.Since(t0)
	if out[0].Scan.IndexHash() != ref[0].Scan.IndexHash() {
		return fmt.Errorf("agent INDEX_HASH %s differs from the direct scan's %s", out[0].Scan.IndexHash(), ref[0].Scan.IndexHash())
	}
	// verify/serve beside an equal region: tree nodes only.
	n.Reset()
	both := gate.ScanRegions(ctx, cfg, []*config.Region{direct, eu}, gate.ScanOptions{Spill: true, AgentCounter: &n})
	for i := range both {
		defer both[i].Close()
		if both[i].Err != nil {
			return both[i].Err
		}
	}
	besideBytes := n.Total()

	// Localise one changed point: change one row, let the agent rescan,
	// then fetch nodes, the differing subtree's leaves and that bucket's
	// records, and diff against the direct scan (then restore the row).
	id := *points/2 + 1
	var old string
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT content FROM %s WHERE id = $1", table), id).Scan(&old); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("UPDATE %s SET content = content || ' (changed)' WHERE id = $1", table), id); err != nil {
		return err
	}
	defer conn.Exec(ctx, fmt.Sprintf("UPDATE %s SET content = $2 WHERE id = $1", table), id, old)
	if err := srv.Rescan(ctx); err != nil {
		return err
	}
	c, err := gate.AgentClient(eu, &n)
	if err != nil {
		return err
	}
	n.Reset()
	t0 = time.Now()
	rem, err := c.Fetch(ctx, agent.FetchOptions{Nodes: true})
	if err != nil {
		return err
	}
	if err := rem.Complete(ctx, ref[0].Scan.Leaves); err != nil {
		return err
	}
	d, err := verifier.Diff("direct", "eu", ref[0].Scan, rem.Scan, ref[0].Spill, rem)
	if err != nil {
		return err
	}
	localiseBytes, localiseTime := n.Total(), time.Since(t0)
	if len(d.Changed) != 1 || d.Changed[0].ID != fmt.Sprint(id) {
		return fmt.Errorf("diff found %d changed ids (%v), want id %d", len(d.Changed), d.Changed, id)
	}

	// The same change between two agent regions: a second agent over the
	// unchanged table; `diff` fetches both agents' summaries and tree
	// nodes, both sides' leaves under the differing node and both sides'
	// records of the differing bucket (agent.CompletePair).
	srv2, err := agent.New(agent.Options{Region: "eu2", Vectors: tableURL(base, ""), Key: key, Token: token, SpillDir: mkdir(filepath.Join(dir, "eu2")), Timeout: 30 * time.Minute})
	if err != nil {
		return err
	}
	defer srv2.Close()
	if err := srv2.Rescan(ctx); err != nil {
		return err
	}
	ts2 := httptest.NewTLSServer(srv2)
	defer ts2.Close()
	ca2 := filepath.Join(dir, "ca2.pem")
	if err := os.WriteFile(ca2, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts2.Certificate().Raw}), 0o600); err != nil {
		return err
	}
	cfg2, err := config.Parse("bench-agents.yaml", []byte(cfgText+fmt.Sprintf("  - name: eu2\n    agent:\n      url: %q\n      token: %q\n      public_keys: [%q]\n      ca: %q\n",
		ts2.URL, token, base64.StdEncoding.EncodeToString(pub), ca2)))
	if err != nil {
		return err
	}
	n.Reset()
	t0 = time.Now()
	dd, err := gate.DiffRegions(ctx, cfg2, "eu2", "eu", gate.ScanOptions{AgentCounter: &n})
	if err != nil {
		return err
	}
	pairBytes, pairTime := n.Total(), time.Since(t0)
	if len(dd.Changed) != 1 || dd.Changed[0].ID != fmt.Sprint(id) {
		return fmt.Errorf("agent-to-agent diff found %d changed ids (%v), want id %d", len(dd.Changed), dd.Changed, id)
	}

	fmt.Printf("## regional agent: bytes moved between agent and gate (pgvector %s, %d points x %d dims, HTTPS, gzip)\n\n", table, *points, *dim)
	fmt.Printf("| what | bytes on the wire | time | target |\n|---|---|---|---|\n")
	fmt.Printf("| direct scan of the table (PostgreSQL protocol, through a counting proxy) | %d (%.1f MB) | %.2f s | |\n", directBytes, float64(directBytes)/1e6, directTime.Seconds())
	fmt.Printf("| one verification through the agent (summary + all %d leaves, checked against the signed root) | %d (%.1f KB) | %.2f s | <= 256 KB |\n", len(out[0].Scan.Leaves), verifyBytes, float64(verifyBytes)/1024, verifyTime.Seconds())
	fmt.Printf("| the same beside an equal direct region (summary + %d tree nodes) | %d (%.1f KB) | | |\n", 1<<6, besideBytes, float64(besideBytes)/1024)
	fmt.Printf("| localising one changed point (nodes, one subtree's leaves, one bucket's records: %d records) | %d (%.1f KB) | %.2f s | <= 128 KB |\n", d.PointsExamined/2, localiseBytes, float64(localiseBytes)/1024, localiseTime.Seconds())
	fmt.Printf("| diff between two agent regions, one point changed (both agents' summaries and tree nodes, both sides' differing subtree and records of the bucket) | %d (%.1f KB) | %.2f s | <= 128 KB |\n", pairBytes, float64(pairBytes)/1024, pairTime.Seconds())
	fmt.Printf("\nthe agent's own scan took %.2f s (it runs next to the store; the gate never waits for it). Direct bytes / verification bytes: %.0fx.\n", agentScan.Seconds(), float64(directBytes)/float64(verifyBytes))
	var missed []string
	if verifyBytes > 256<<10 {
		missed = append(missed, fmt.Sprintf("verification %d bytes > 256 KB", verifyBytes))
	}
	if localiseBytes > 128<<10 {
		missed = append(missed, fmt.Sprintf("localising %d bytes > 128 KB", localiseBytes))
	}
	if pairBytes > 128<<10 {
		missed = append(missed, fmt.Sprintf("agent-to-agent diff %d bytes > 128 KB", pairBytes))
	}
	if len(missed) > 0 {
		return fmt.Errorf("agent targets missed: %s", strings.Join(missed, "; "))
	}
	return nil
}

// mkdir creates dir (and parents) and returns it; an error surfaces where
// the directory is used.
func mkdir(dir string) string {
	os.MkdirAll(dir, 0o700)
	return dir
}
