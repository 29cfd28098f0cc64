// Command ragparity-bench measures the figures the issues ask for and
// prints them (run through `make bench`, which starts the services first).
//
//	ragparity-bench hash [--points 100000,1000000] [--dim 384]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ragparity-bench hash|agent|rebuild|rebuild-rss|fence|probe|probe-exact|admit-server|authz|admit-verify-setup [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "hash":
		err = benchHash(os.Args[2:])
	case "agent":
		err = benchAgent(os.Args[2:])
	case "rebuild":
		err = benchRebuild(os.Args[2:])
	case "admit-server":
		err = benchAdmitServer(os.Args[2:])
	case "probe":
		err = benchProbe(os.Args[2:])
	case "probe-exact":
		err = benchProbeExact(os.Args[2:])
	case "rebuild-rss":
		err = benchRebuildRSS(os.Args[2:])
	case "fence":
		err = benchFence(os.Args[2:])
	case "authz":
		err = benchAuthz(os.Args[2:])
	case "admit-verify-setup":
		err = benchAdmitVerifySetup(os.Args[2:])
	default:
		err = fmt.Errorf("unknown bench %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(2)
	}
}

func pgBase() string {
	if u := os.Getenv("RAGPARITY_PG_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// ensureTable creates rp_bench_<n>_<dim> once (kept between runs).
func ensureTable(ctx context.Context, conn *pgx.Conn, n, dim int) (string, error) {
	table := fmt.Sprintf("rp_bench_%d_%d", n, dim)
	var count int64
	err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&count)
	if err == nil && count == int64(n) {
		return table, nil
	}
	fmt.Fprintf(os.Stderr, "creating %s (%d points x %d dims)...\n", table, n, dim)
	t0 := time.Now()
	stmts := []string{
		"DROP TABLE IF EXISTS " + table,
		fmt.Sprintf("CREATE TABLE %s (id bigint PRIMARY KEY, embedding vector(%d), metadata jsonb, content text)", table, dim),
		fmt.Sprintf(`INSERT INTO %s SELECT i,
			(SELECT array_agg(random()::real) FROM generate_series(1, %d) WHERE i > 0)::vector,
			jsonb_build_object('doc', 'd' || (i / 10), 'n', i, 'lang', 'en'),
			'chunk number ' || i || ' of the benchmark corpus'
			FROM generate_series(1, %d) i`, table, dim, n),
		"VACUUM ANALYZE " + table,
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return "", fmt.Errorf("%s: %w", strings.Fields(s)[0], err)
		}
	}
	fmt.Fprintf(os.Stderr, "created in %v\n", time.Since(t0).Round(time.Millisecond))
	return table, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func benchHash(args []string) error {
	fs := flag.NewFlagSet("hash", flag.ExitOnError)
	pointsFlag := fs.String("points", "100000,1000000", "table sizes; the first is the throughput table")
	dim := fs.Int("dim", 384, "dimensions")
	runs := fs.Int("runs", 3, "runs per figure (median reported)")
	bin := fs.String("bin", "bin/ragparity", "ragparity binary")
	fs.Parse(args)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgBase())
	if err != nil {
		return fmt.Errorf("PostgreSQL not reachable (start it with `make services`): %w", err)
	}
	defer conn.Close(ctx)
	var sizes []int
	for _, s := range strings.Split(*pointsFlag, ",") {
		var n int
		fmt.Sscan(s, &n)
		sizes = append(sizes, n)
	}
	fmt.Printf("## hash vs raw scan (pgvector, %d dims, median of %d runs, GOMAXPROCS=%s)\n\n", *dim, *runs, os.Getenv("GOMAXPROCS"))
	fmt.Printf("| points | raw COPY s | raw MB | hash s | hash points/s | hash MB/s | ratio hash/raw (target >= 0.8) | peak RSS MB |\n|---|---|---|---|---|---|---|---|\n")
	var missed []string
	for _, n := range sizes {
		table, err := ensureTable(ctx, conn, n, *dim)
		if err != nil {
			return err
		}
		sel := fmt.Sprintf("COPY (SELECT id::text, embedding::vector, metadata::text, content::text FROM %s) TO STDOUT (FORMAT binary)", table)
		var raws []time.Duration
		var bytes int64
		for i := 0; i < *runs; i++ {
			cw := &countWriter{}
			t0 := time.Now()
			if _, err := conn.PgConn().CopyTo(ctx, cw, sel); err != nil {
				return err
			}
			raws = append(raws, time.Since(t0))
			bytes = cw.n
		}
		u, _ := url.Parse(pgBase())
		q := u.Query()
		q.Set("table", table)
		q.Set("payload", "metadata")
		q.Set("text", "content")
		u.RawQuery = q.Encode()
		dir, _ := os.MkdirTemp("", "rp-bench-")
		cfg := filepath.Join(dir, "bench.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("release: bench\ntimeout: 30m\nregions:\n  - name: bench\n    vectors: %q\n", u.String())), 0o600)
		var hashes []time.Duration
		var peak int64
		for i := 0; i < *runs; i++ {
			cmd := exec.Command(*bin, "hash", "--config", cfg, "--json")
			cmd.Stderr = os.Stderr
			t0 := time.Now()
			out, err := cmd.Output()
			el := time.Since(t0)
			if err != nil {
				return fmt.Errorf("ragparity hash: %w", err)
			}
			var res struct {
				Regions []struct {
					Points int64 `json:"points"`
				} `json:"regions"`
			}
			if err := json.Unmarshal(out, &res); err != nil || len(res.Regions) != 1 || res.Regions[0].Points != int64(n) {
				return fmt.Errorf("unexpected hash output: %s", out)
			}
			hashes = append(hashes, el)
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				peak = max(peak, ru.Maxrss)
			}
		}
		os.RemoveAll(dir)
		r, h := median(raws), median(hashes)
		fmt.Printf("| %d | %.3f | %.0f | %.3f | %.0f | %.0f | %.2f | %.0f |\n", n, r.Seconds(), float64(bytes)/1e6, h.Seconds(),
			float64(n)/h.Seconds(), float64(bytes)/1e6/h.Seconds(), r.Seconds()/h.Seconds(), float64(peak)/1024)
		if r.Seconds()/h.Seconds() < 0.8 {
			missed = append(missed, fmt.Sprintf("%d points: %.2f", n, r.Seconds()/h.Seconds()))
		}
	}
	fmt.Println("\nhash s is the whole `ragparity hash` process (start-up, catalog reads, scan, hashing); ratio = hash rate / raw rate = raw s / hash s.")
	if len(missed) > 0 {
		return fmt.Errorf("hash/raw target (>= 0.8) missed: %s", strings.Join(missed, ", "))
	}
	return nil
}

var _ = io.Discard
