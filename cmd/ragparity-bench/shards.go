package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// shardN is how many `hash --shard i/N` processes the shard figure runs at
// once, against one whole run of the same table.
const shardN = 4

// benchShards measures N shards run in parallel against one whole run of
// the same table: wall time (target <= 1.2x), the bytes the server sent
// to all shards against the whole run's (through a counting proxy, in a
// separate untimed round), the table pages the server read (heap and
// TOAST blocks, pg_statio_user_tables; target 1.00x: N shards together
// read the table once), the rows its scans counted (seq_tup_read), and
// that the shards merge to the whole run's INDEX_HASH.
func benchShards(ctx context.Context, conn *pgx.Conn, bin, cfg, rawURL string, n, runs int, missed *[]string) error {
	dir, err := os.MkdirTemp("", "rp-bench-shards-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Four shard processes and their four backends on two cores make the
	// parallel time vary from round to round (context-switch storms in
	// some rounds, none in others), so the figure takes at least five
	// rounds, alternating, and prints the range of the rounds' ratios.
	runs = max(runs, 5)
	var wholes, shardeds []time.Duration
	var ratios []float64
	var wholeOut []byte
	for i := 0; i < runs; i++ {
		el, _, out, err := runHash(bin, cfg, n)
		if err != nil {
			return err
		}
		wholes, wholeOut = append(wholes, el), out
		el, err = runShards(bin, cfg, dir)
		if err != nil {
			return err
		}
		shardeds = append(shardeds, el)
		ratios = append(ratios, el.Seconds()/wholes[i].Seconds())
	}
	// The shards merge to the whole run's INDEX_HASH.
	var files []string
	for i := 0; i < shardN; i++ {
		files = append(files, filepath.Join(dir, fmt.Sprintf("shard-%d.json", i)))
	}
	// --allow-skew: the snapshot marker is the cluster's WAL position,
	// which anything else written to the cluster moves between the shards'
	// starts; the bench table itself is not written.
	mcmd := exec.Command(bin, append([]string{"merge", "--json", "--allow-skew"}, files...)...)
	var merr strings.Builder
	mcmd.Stderr = &merr
	mout, err := mcmd.Output()
	if err != nil && len(mout) == 0 {
		return fmt.Errorf("ragparity merge: %w: %s", err, merr.String())
	}
	var whole, merged struct {
		Regions []struct {
			IndexHash string `json:"index_hash"`
			Points    int64  `json:"points"`
		} `json:"regions"`
	}
	if json.Unmarshal(wholeOut, &whole) != nil || json.Unmarshal(mout, &merged) != nil || len(whole.Regions) != 1 || len(merged.Regions) != 1 {
		return fmt.Errorf("unexpected hash or merge output: %s / %s", wholeOut, mout)
	}
	sameHash := merged.Regions[0].IndexHash == whole.Regions[0].IndexHash && merged.Regions[0].Points == int64(n)

	// Bytes shipped, through a counting proxy (not timed), and the rows the
	// server's sequential scans read (pg_stat_user_tables).
	px, err := newURLProxy(rawURL)
	if err != nil {
		return err
	}
	defer px.Close()
	pcfg := filepath.Join(dir, "proxy.yaml")
	if err := os.WriteFile(pcfg, []byte(fmt.Sprintf("release: bench\ntimeout: 30m\nregions:\n  - name: bench\n    vectors: %q\n", px.url)), 0o600); err != nil {
		return err
	}
	table := tableOf(rawURL)
	tup0, pg0 := seqTupRead(ctx, conn, table)
	if _, _, _, err := runHash(bin, pcfg, n); err != nil {
		return err
	}
	wholeBytes := px.received.Swap(0)
	tup1, pg1 := seqTupRead(ctx, conn, table)
	if _, err := runShards(bin, pcfg, dir); err != nil {
		return err
	}
	shardBytes := px.received.Swap(0)
	tup2, pg2 := seqTupRead(ctx, conn, table)
	var points int64
	split := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var sj struct {
			Regions []struct {
				Points int64  `json:"points"`
				Split  string `json:"split"`
			} `json:"regions"`
		}
		if err := json.Unmarshal(b, &sj); err != nil || len(sj.Regions) != 1 {
			return fmt.Errorf("%s: unexpected shard output", f)
		}
		points += sj.Regions[0].Points
		if sj.Regions[0].Split == "" {
			sj.Regions[0].Split = "buckets"
		}
		split[sj.Regions[0].Split]++
	}
	w, sh := median(wholes), median(shardeds)
	ratio := sh.Seconds() / w.Seconds()
	bytesRatio := float64(shardBytes) / float64(wholeBytes)
	var splits []string
	for k, v := range split {
		splits = append(splits, fmt.Sprintf("%d by %s", v, k))
	}
	fmt.Printf("\n## hash --shard i/%d, all %d in parallel, vs one whole run (%d points, median of %d rounds; shards split %s)\n\n", shardN, shardN, n, runs, strings.Join(splits, ", "))
	fmt.Printf("| whole run s | %d shards in parallel s | ratio (target <= 1.2) | rounds' ratios | rows hashed by the shards | bytes the server sent: shards / whole run (target 1.00x) | table pages the server read: shards / whole run (target 1.00x) | rows the server's scans counted: shards / whole run | merged INDEX_HASH = whole run's |\n|---|---|---|---|---|---|---|---|---|\n", shardN)
	sort.Float64s(ratios)
	fmt.Printf("| %.3f | %.3f | %.2f | %.2f-%.2f | %d of %d (%.2fx the table) | %.1f MB / %.1f MB = %.2fx | %s | %s | %v |\n", w.Seconds(), sh.Seconds(), ratio, ratios[0], ratios[len(ratios)-1],
		points, n, float64(points)/float64(n), float64(shardBytes)/1e6, float64(wholeBytes)/1e6, bytesRatio, tupRatio(pg0, pg1, pg2), tupRatio(tup0, tup1, tup2), sameHash)
	fmt.Println("\nratio: median shards s / median whole run s; rounds' ratios: the lowest and highest of each round's shards s / whole run s.")
	fmt.Println("bytes: every byte PostgreSQL sent the hash processes (catalog reads included), counted by a proxy in a separate untimed round; pages: heap + TOAST blocks of the table the server read or found in its buffers (pg_statio_user_tables heap_blks_read + heap_blks_hit + toast_blks_read + toast_blks_hit), same round; rows counted: pg_stat_user_tables.seq_tup_read (sequential and TID range scans both count the rows they return).")
	if !sameHash {
		return fmt.Errorf("merged shards' INDEX_HASH %s differs from the whole run's %s", merged.Regions[0].IndexHash, whole.Regions[0].IndexHash)
	}
	if ratio > 1.2 {
		*missed = append(*missed, fmt.Sprintf("%d shards in parallel: %.2fx the whole run", shardN, ratio))
	}
	if points != int64(n) || bytesRatio > 1.05 {
		*missed = append(*missed, fmt.Sprintf("%d shards read %.2fx the whole run's bytes", shardN, bytesRatio))
	}
	if pr := pageRatio(pg0, pg1, pg2); pr < 0 || pr > 1.05 {
		*missed = append(*missed, fmt.Sprintf("%d shards read %s the whole run's table pages", shardN, tupRatio(pg0, pg1, pg2)))
	}
	return nil
}

// runShards runs every `hash --shard i/N` at once, each writing
// dir/shard-i.json, and returns the wall time until the last ends.
func runShards(bin, cfg, dir string) (time.Duration, error) {
	var wg sync.WaitGroup
	errs := make([]error, shardN)
	t0 := time.Now()
	for i := 0; i < shardN; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, _, out, err := runHash(bin, cfg, 0, "--shard", fmt.Sprintf("%d/%d", i, shardN))
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, fmt.Sprintf("shard-%d.json", i)), out, 0o600)
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	el := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return el, nil
}

func tableOf(raw string) string {
	u, _ := url.Parse(raw)
	return u.Query().Get("table")
}

// seqTupRead is the table's pg_stat_user_tables.seq_tup_read and its
// heap + TOAST blocks read or hit (pg_statio_user_tables) once the
// finished backends' statistics have been flushed; -1 if unknown.
func seqTupRead(ctx context.Context, conn *pgx.Conn, table string) (tup, pages int64) {
	time.Sleep(1500 * time.Millisecond) // backends flush their counts on exit, at most once a second
	conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()")
	if err := conn.QueryRow(ctx, `SELECT coalesce(t.seq_tup_read, -1),
		coalesce(s.heap_blks_read + s.heap_blks_hit + coalesce(s.toast_blks_read, 0) + coalesce(s.toast_blks_hit, 0), -1)
		FROM pg_stat_user_tables t JOIN pg_statio_user_tables s USING (relid) WHERE t.relname = $1`, table).Scan(&tup, &pages); err != nil {
		return -1, -1
	}
	return tup, pages
}

// pageRatio is (t2-t1)/(t1-t0), -1 when unknown.
func pageRatio(t0, t1, t2 int64) float64 {
	if t0 < 0 || t1 <= t0 || t2 < t1 {
		return -1
	}
	return float64(t2-t1) / float64(t1-t0)
}

func tupRatio(t0, t1, t2 int64) string {
	if t0 < 0 || t1 <= t0 || t2 < t1 {
		return "unknown"
	}
	return fmt.Sprintf("%d / %d = %.2fx", t2-t1, t1-t0, float64(t2-t1)/float64(t1-t0))
}
