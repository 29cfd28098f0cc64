// Command ragparity-bench measures the figures the issues ask for and
// prints them (run through `make bench`, which starts the services first).
//
//	ragparity-bench hash [--points 100000,1000000] [--dim 384]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
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
	// The raw COPY anchor reads through the same 256 KiB buffer as the
	// pgvector adapter: pgx's own 8 KiB reads would slow the anchor, not
	// the server.
	ccfg, err := pgx.ParseConfig(pgtest.URL())
	if err != nil {
		return err
	}
	ccfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, 256<<10), w)
	}
	conn, err := pgx.ConnectConfig(ctx, ccfg)
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
	fmt.Printf("| points | raw COPY s | raw MB | hash s | hash points/s | hash MB/s | ratio hash/raw (target >= %.1f) | peak RSS MB |\n|---|---|---|---|---|---|---|---|\n", hashTarget)
	var missed []string
	type sized struct {
		n        int
		hash     time.Duration
		peakKB   int64
		cfg, url string
	}
	var done []sized
	for _, n := range sizes {
		table, err := ensureTable(ctx, conn, n, *dim)
		if err != nil {
			return err
		}
		sel := fmt.Sprintf("COPY (SELECT id::text, embedding::vector, metadata::text, content::text FROM %s) TO STDOUT (FORMAT binary)", table)
		var raws []time.Duration
		var bytes int64
		raw := func() error {
			cw := &countWriter{}
			t0 := time.Now()
			if _, err := conn.PgConn().CopyTo(ctx, cw, sel); err != nil {
				return err
			}
			raws = append(raws, time.Since(t0))
			bytes = cw.n
			return nil
		}
		u := pgtest.TableURL(table, "payload", "metadata", "text", "content")
		dir, _ := os.MkdirTemp("", "rp-bench-")
		cfg := filepath.Join(dir, "bench.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("release: bench\ntimeout: 30m\nregions:\n  - name: bench\n    vectors: %q\n", u)), 0o600)
		// Raw COPY and hash runs alternate, and the ratio is the median of
		// each pair's: on a shared machine whose load drifts, the two
		// medians alone may come from different load.
		var hashes, ratios []time.Duration
		var peak int64
		for i := 0; i < *runs; i++ {
			if err := raw(); err != nil {
				return err
			}
			el, kb, _, err := runHash(*bin, cfg, n)
			if err != nil {
				return err
			}
			hashes = append(hashes, el)
			ratios = append(ratios, time.Duration(float64(time.Second)*raws[i].Seconds()/el.Seconds()))
			peak = max(peak, kb)
		}
		r, h, ratio := median(raws), median(hashes), median(ratios).Seconds()
		fmt.Printf("| %d | %.3f | %.0f | %.3f | %.0f | %.0f | %.2f | %.0f |\n", n, r.Seconds(), float64(bytes)/1e6, h.Seconds(),
			float64(n)/h.Seconds(), float64(bytes)/1e6/h.Seconds(), ratio, float64(peak)/1024)
		if ratio < hashTarget {
			missed = append(missed, fmt.Sprintf("%d points: %.2f", n, ratio))
		}
		done = append(done, sized{n: n, hash: h, peakKB: peak, cfg: cfg, url: u})
		defer os.RemoveAll(dir)
	}
	fmt.Println("\nhash s is the whole `ragparity hash` process (start-up, catalog reads, scan, hashing); ratio = hash rate / raw rate: the median over alternating pairs of raw s / hash s.")
	if len(done) >= 2 {
		// 10M extrapolated with the growth measured from the second-largest
		// to the largest table (100k -> 1M by default), per factor of 10.
		a, b := done[len(done)-2], done[len(done)-1]
		decades := math.Log10(float64(b.n) / float64(a.n))
		tg := math.Pow(b.hash.Seconds()/a.hash.Seconds(), 1/decades)
		mg := math.Pow(float64(b.peakKB)/float64(a.peakKB), 1/decades)
		to := math.Log10(1e7 / float64(b.n))
		fmt.Printf("\n10M-point estimate, extrapolated from %d -> %d points (time x%.2f, peak RSS x%.2f per 10x points): hash %.0f s, peak RSS %.0f MB\n",
			a.n, b.n, tg, mg, b.hash.Seconds()*math.Pow(tg, to), float64(b.peakKB)/1024*math.Pow(mg, to))
	}
	if len(done) > 0 {
		last := done[len(done)-1]
		if err := benchShards(ctx, conn, *bin, last.cfg, last.url, last.n, *runs, &missed); err != nil {
			return err
		}
	}
	if len(missed) > 0 {
		return fmt.Errorf("hash targets missed: %s", strings.Join(missed, ", "))
	}
	return nil
}

// hashTarget is the floor for hash rate / raw COPY rate.
const hashTarget = 0.9

// runHash runs `ragparity hash` (extra args appended) and returns its wall
// time, peak RSS in KB and stdout; want > 0 checks the point count.
func runHash(bin, cfg string, want int, extra ...string) (time.Duration, int64, []byte, error) {
	cmd := exec.Command(bin, append([]string{"hash", "--config", cfg, "--json"}, extra...)...)
	cmd.Stderr = os.Stderr
	t0 := time.Now()
	out, err := cmd.Output()
	el := time.Since(t0)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("ragparity hash %v: %w", extra, err)
	}
	if want > 0 {
		var res struct {
			Regions []struct {
				Points int64 `json:"points"`
			} `json:"regions"`
		}
		if err := json.Unmarshal(out, &res); err != nil || len(res.Regions) != 1 || res.Regions[0].Points != int64(want) {
			return 0, 0, nil, fmt.Errorf("unexpected hash output: %s", out)
		}
	}
	var kb int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		kb = ru.Maxrss
	}
	return el, kb, out, nil
}

var _ = io.Discard
