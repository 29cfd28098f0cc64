package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"

	"github.com/ragparity/ragparity/replicate"
)

func redisTestURL() string {
	if u := os.Getenv("RAGPARITY_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// fencedConfig is rebuildConfig with every region on the real Redis
// dedupe_kv (a bbolt file cannot be shared by two processes).
func fencedConfig(t *testing.T, cache string, regions map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "release: r-test\nembedder: glove\ncache_dir: %q\nanalyzer:\n  chunk_size: 40\n  overlap: 8\n  normalize: NFKC\nfence:\n  lease: 1s\n  failover_window: 1h\nregions:\n", cache)
	for _, name := range []string{"pg", "pg2", "local"} {
		if u, ok := regions[name]; ok {
			fmt.Fprintf(&b, "  - name: %s\n    vectors: %q\n    dedupe_kv: %q\n", name, u, redisTestURL())
		}
	}
	return writeConfig(t, b.String())
}

// TestConcurrentRebuildsExitTwo: two `ragparity rebuild` processes of one
// region at once: exactly one writes and promotes, the other exits 2 with
// the lease message, naming the run, the host and the start.
func TestConcurrentRebuildsExitTwo(t *testing.T) {
	bin := ragparityBin(t)
	// A corpus large enough that the first run is still writing when the
	// second starts (one document per batch).
	source := filepath.Join(t.TempDir(), "corpus.jsonl")
	var cb strings.Builder
	r := rand.New(rand.NewPCG(5, 6))
	vocab := strings.Fields("the index region replica failover shard chunk embedding parity drift router gate blob manifest hash bucket payload text query answer protein cell gene")
	for i := 0; i < 3000; i++ {
		w := make([]string, 120)
		for j := range w {
			w[j] = vocab[r.IntN(len(vocab))]
		}
		fmt.Fprintf(&cb, "{\"_id\":\"d%d\",\"text\":%q}\n", i, strings.Join(w, " "))
	}
	os.WriteFile(source, []byte(cb.String()), 0o644)
	prefix := fmt.Sprintf("rp_conc_%08x", rand.Uint32())
	dropTables(t, prefix)
	table := prefix + "_live"
	cfg := fencedConfig(t, t.TempDir(), map[string]string{"pg": pgTableURL(table)})
	run := fmt.Sprintf("conc%d", rand.Uint32())
	var aOut, aErr bytes.Buffer
	a := exec.Command(bin, "rebuild", "--config", cfg, "--source", source, "--promote", "--json", "--run-id", run, "--batch", "1")
	a.Stdout, a.Stderr = &aOut, &aErr
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), pgtest.URL())
	if err != nil {
		t.Fatalf("PostgreSQL: %v (start it with `make services`)", err)
	}
	defer conn.Close(context.Background())
	var n int64
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && n == 0; time.Sleep(5 * time.Millisecond) {
		conn.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{table + "__rp_" + run}.Sanitize()).Scan(&n)
	}
	if n == 0 {
		a.Process.Kill()
		t.Fatalf("the first rebuild wrote nothing: %s", aErr.String())
	}
	// Same run id (same checkpoint) and another run id: both refused.
	for _, id := range []string{run, run + "b"} {
		out, err := exec.Command(bin, "rebuild", "--config", cfg, "--source", source, "--promote", "--run-id", id).CombinedOutput()
		ee, _ := err.(*exec.ExitError)
		host, _ := os.Hostname()
		want := fmt.Sprintf("region pg is being rebuilt by run %s on host %s since ", run, host)
		if ee == nil || ee.ExitCode() != 2 || !strings.Contains(string(out), want) {
			t.Errorf("second rebuild (run %s): %v, output %s; want exit 2 and %q", id, err, out, want)
		}
	}
	if a.ProcessState != nil {
		t.Fatalf("the first rebuild ended before the second ones ran: the test proves nothing")
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("first rebuild: %v\n%s", err, aErr.String())
	}
	var res replicate.Result
	if err := json.Unmarshal(aOut.Bytes(), &res); err != nil || !res.Promoted {
		t.Fatalf("first rebuild: %v %+v", err, res)
	}
	var rows, distinct int64
	conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT id) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&rows, &distinct)
	if rows != int64(res.Chunks) || distinct != rows {
		t.Errorf("live table: %d rows (%d distinct), want %d", rows, distinct, res.Chunks)
	}
}

// TestStagesListAndDrop: an unpromoted run leaves a stage; `stages list`
// shows it with its run id, points and promotability; a rebuild of other
// content warns about it; `stages drop` removes it.
func TestStagesListAndDrop(t *testing.T) {
	dir := t.TempDir()
	for i, text := range []string{"alpha beta gamma delta", "epsilon zeta eta theta iota"} {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("d%d.txt", i)), []byte(text), 0o644)
	}
	live := fmt.Sprintf("embedded://%s?collection=chunks", t.TempDir())
	cfg := rebuildConfig(t, t.TempDir(), map[string]string{"local": live})
	code, out, errOut := runCLI(t, "rebuild", "--config", cfg, "--source", dir, "--json")
	if code != 0 {
		t.Fatalf("rebuild: %d %s", code, errOut)
	}
	var res replicate.Result
	json.Unmarshal([]byte(out), &res)
	code, out, errOut = runCLI(t, "stages", "list", "--config", cfg, "--json")
	var list []replicate.StageEntry
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
		t.Fatalf("stages list: %d %s %s", code, out, errOut)
	}
	if s := list[0]; s.Region != "local" || s.RunID != res.RunID || s.Points != int64(res.Chunks) || !s.Promotable || s.Created.IsZero() {
		t.Errorf("stage %+v, want region local, run %s, %d points, promotable", s, res.RunID, res.Chunks)
	}
	os.WriteFile(filepath.Join(dir, "d2.txt"), []byte("kappa lambda"), 0o644)
	code, _, errOut = runCLI(t, "rebuild", "--config", cfg, "--source", dir)
	if code != 0 || !strings.Contains(errOut, "stale stage of run "+res.RunID) {
		t.Errorf("rebuild over changed content: exit %d, stderr %q: want a warning about the stale stage", code, errOut)
	}
	code, out, errOut = runCLI(t, "stages", "drop", "--config", cfg, "--region", "local", "--run-id", res.RunID)
	if code != 0 || !strings.Contains(out, "dropped local\t"+res.RunID) {
		t.Fatalf("stages drop: %d %s %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "stages", "list", "--config", cfg)
	if code != 0 || strings.Contains(out, res.RunID) {
		t.Errorf("after drop: %s", out)
	}
	if code, _, errOut = runCLI(t, "stages", "drop", "--config", cfg, "--run-id", "nosuch"); code != 2 || !strings.Contains(errOut, "no stage of run nosuch") {
		t.Errorf("dropping a missing stage: %d %q", code, errOut)
	}
	if code, _, _ = runCLI(t, "stages", "frobnicate", "--config", cfg); code != 2 {
		t.Errorf("unknown verb: exit %d", code)
	}
}

// TestFenceCLI: a script claims, completes and replays a write through
// `ragparity fence`, and status reports the dedupe rate.
func TestFenceCLI(t *testing.T) {
	region := fmt.Sprintf("pg")
	cfg := fencedConfig(t, t.TempDir(), map[string]string{"pg": pgTableURL("unused")})
	src := fmt.Sprint(rand.Uint64())
	claim := []string{"fence", "claim", "--config", cfg, "--region", region, "--source-id", src, "--revision", "1", "--index-hash", "ih", "--owner", "script-a"}
	code, out, errOut := runCLI(t, claim...)
	f := strings.Fields(out)
	if code != 0 || len(f) != 2 || f[0] != "acquired" {
		t.Fatalf("claim: %d %q %q", code, out, errOut)
	}
	key := f[1]
	if code, out, _ = runCLI(t, append(claim[:len(claim)-1], "script-b")...); code != 1 || !strings.HasPrefix(out, "held ") {
		t.Errorf("claim while held: %d %q", code, out)
	}
	if code, out, _ = runCLI(t, "fence", "done", "--config", cfg, "--region", region, "--key", key); code != 0 || out != "done "+key+"\n" {
		t.Errorf("done: %d %q", code, out)
	}
	if code, out, _ = runCLI(t, claim...); code != 1 || !strings.HasPrefix(out, "done ") {
		t.Errorf("replayed claim: %d %q, want done (exit 1)", code, out)
	}
	code, out, _ = runCLI(t, "fence", "status", "--config", cfg, "--region", region, "--json")
	var st struct {
		Window struct {
			Hits, Replayed int64
			Rate           float64
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Window.Hits < 1 || st.Window.Replayed < 1 {
		t.Errorf("status: %d %s", code, out)
	}
	for _, bad := range [][]string{
		{"fence", "claim", "--config", cfg, "--region", region, "--revision", "1", "--index-hash", "ih"},
		{"fence", "done", "--config", cfg, "--region", region, "--key", "zz"},
		{"fence", "status", "--config", cfg, "--region", "nosuch"},
	} {
		if code, _, errOut := runCLI(t, bad...); code != 2 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", bad, code, errOut)
		}
	}
}
