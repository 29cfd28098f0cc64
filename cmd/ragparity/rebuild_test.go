package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/replicate"
	"github.com/ragparity/ragparity/storetest/blobtest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// ragparityBin builds the real binary once per test run.
func ragparityBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ragparity-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "ragparity")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func pgTableURL(table string) string {
	return pgtest.TableURL(table, "payload", "metadata", "text", "content")
}

// openPGTable opens table (created on first write, dropped after the
// test) in the test database, failing with how to start PostgreSQL when it
// is unreachable; base is its URL.
func openPGTable(t *testing.T, table string) (s adapters.VectorStore, base *url.URL) {
	t.Helper()
	base, _ = url.Parse(pgTableURL(table))
	s, err := adapters.OpenVector(context.Background(), base.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Settings(context.Background()); err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatalf("PostgreSQL with pgvector is not reachable: %v\nstart it with `make services`", err)
	}
	t.Cleanup(func() { s.Drop(context.Background()) })
	return s, base
}

func rebuildConfig(t *testing.T, cache string, regions map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "release: r-test\nembedder: glove\ncache_dir: %q\nanalyzer:\n  chunk_size: 40\n  overlap: 8\n  normalize: NFKC\nfence:\n  lease: 1s\nregions:\n", cache)
	names := []string{"pg", "pg2", "local"}
	var others []string
	for name := range regions {
		if !slices.Contains(names, name) {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range append(names, others...) {
		if u, ok := regions[name]; ok {
			fmt.Fprintf(&b, "  - name: %s\n    vectors: %q\n", name, u)
		}
	}
	return writeConfig(t, b.String())
}

func dropTables(t *testing.T, prefix string) {
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pgtest.URL())
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		rows, _ := c.Query(context.Background(), "SELECT tablename FROM pg_tables WHERE tablename LIKE $1", prefix+"%")
		var names []string
		for rows.Next() {
			var n string
			rows.Scan(&n)
			names = append(names, n)
		}
		for _, n := range names {
			c.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{n}.Sanitize())
		}
	})
}

// TestRebuildKilledThenResumed kills a real `ragparity rebuild` with
// SIGKILL at three points of the run (the run, then two resumed runs); `--resume` then finishes with no duplicate and no
// missing point, and the INDEX_HASH equals an uninterrupted rebuild's.
func TestRebuildKilledThenResumed(t *testing.T) {
	bin := ragparityBin(t)
	source := filepath.Join("..", "..", "testdata", "scifact", "corpus.jsonl")
	prefix := fmt.Sprintf("rp_kill_%08x", rand.Uint32())
	dropTables(t, prefix)

	// Uninterrupted reference rebuild.
	// Two pgvector regions: INDEX_HASH includes each engine's settings, so
	// regions on different engines never agree by design.
	refCfg := rebuildConfig(t, t.TempDir(), map[string]string{"pg": pgTableURL(prefix + "_ref"), "pg2": pgTableURL(prefix + "_ref2")})
	out, err := exec.Command(bin, "rebuild", "--config", refCfg, "--source", source, "--promote", "--json").Output()
	if err != nil {
		t.Fatalf("reference rebuild: %v\n%s", err, out)
	}
	var ref replicate.Result
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatalf("reference JSON: %v\n%s", err, out)
	}
	if !ref.Promoted || !ref.Agree || ref.Chunks == 0 {
		t.Fatalf("reference rebuild: %+v", ref)
	}

	table := prefix + "_live"
	cache := t.TempDir()
	cfg := rebuildConfig(t, cache, map[string]string{"pg": pgTableURL(table), "pg2": pgTableURL(table + "2")})
	conn, err := pgx.Connect(context.Background(), pgtest.URL())
	if err != nil {
		t.Fatalf("PostgreSQL: %v (start it with `make services`)", err)
	}
	defer conn.Close(context.Background())
	stage := pgx.Identifier{table + "__rp_killme"}.Sanitize()
	// killAfter runs a rebuild and SIGKILLs it once the stage holds more
	// than after rows (so each kill lands after progress of its own).
	killAfter := func(after int64, args ...string) int64 {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"rebuild", "--config", cfg, "--source", source, "--promote", "--json", "--run-id", "killme", "--batch", "2"}, args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var atKill int64
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if conn.QueryRow(context.Background(), "SELECT count(*) FROM "+stage).Scan(&atKill) == nil && atKill > after {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if atKill <= after || atKill >= int64(ref.Chunks) {
			t.Fatalf("killed with %d of %d chunks in the stage (after %d): not mid-way", atKill, ref.Chunks, after)
		}
		t.Logf("killed with %d of %d chunks written", atKill, ref.Chunks)
		return atKill
	}
	// Three kills at three points of the run: early, then twice more
	// while resumed runs carry on.
	atKill := killAfter(0)
	// Without --resume the interrupted run is not silently restarted.
	if out, err := exec.Command(bin, "rebuild", "--config", cfg, "--source", source, "--run-id", "killme").CombinedOutput(); err == nil || !strings.Contains(string(out), "--resume") {
		t.Fatalf("restart without --resume: err %v, output %s", err, out)
	}
	for i := 1; i <= 2; i++ {
		// A killed run's claims are held for its lease (1 s here); the
		// next kill lands past i/3 of the chunks.
		time.Sleep(1100 * time.Millisecond)
		atKill = killAfter(max(atKill, int64(ref.Chunks)*int64(i)/3), "--resume")
	}
	time.Sleep(1100 * time.Millisecond)
	out, err = exec.Command(bin, "rebuild", "--config", cfg, "--source", source, "--promote", "--json", "--run-id", "killme", "--resume").Output()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	var res replicate.Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Promoted || res.Chunks != ref.Chunks {
		t.Fatalf("resume result: %+v", res)
	}
	for _, region := range []string{"pg", "pg2"} {
		if res.IndexHash[region] != ref.IndexHash[region] {
			t.Errorf("%s: INDEX_HASH after kill+resume %s, uninterrupted %s", region, res.IndexHash[region], ref.IndexHash[region])
		}
	}
	var n, distinct int64
	conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT id) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n, &distinct)
	if n != int64(ref.Chunks) || distinct != n {
		t.Errorf("live table has %d rows (%d distinct ids), want %d", n, distinct, ref.Chunks)
	}
	// The live index hashes as the rebuild reported.
	code, hout, herr := runCLI(t, "hash", "--config", cfg, "--json")
	if code != ExitEqual {
		t.Fatalf("hash after rebuild: exit %d %s", code, herr)
	}
	var h gate.HashJSON
	json.Unmarshal([]byte(hout), &h)
	for _, r := range h.Regions {
		if r.IndexHash != ref.IndexHash[r.Name] {
			t.Errorf("%s: live INDEX_HASH %s, rebuild reported %s", r.Name, r.IndexHash, ref.IndexHash[r.Name])
		}
	}
}

func TestRebuildBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "corpus.jsonl")
	os.WriteFile(bad, []byte("{\"_id\":\"a\",\"text\":\"some words\"}\nnot json at all\n"), 0o644)
	live := fmt.Sprintf("embedded://%s?collection=chunks", t.TempDir())
	cfg := rebuildConfig(t, t.TempDir(), map[string]string{"local": live})
	code, _, errOut := runCLI(t, "rebuild", "--config", cfg, "--source", bad, "--promote")
	if code != ExitUnknown || !strings.Contains(errOut, "corpus.jsonl:2: not a JSON object") || !strings.Contains(errOut, "untouched") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "rebuild", "--config", cfg, "--source", filepath.Join(dir, "missing"))
	if code != ExitUnknown || !strings.Contains(errOut, "missing") {
		t.Errorf("missing source: exit %d, stderr %q", code, errOut)
	}
	// A pgvector URL naming no payload or text column: refused before
	// anything is embedded, claimed or checkpointed.
	bare := rebuildConfig(t, t.TempDir(), map[string]string{"local": live, "pg": pgtest.TableURL(fmt.Sprintf("rp_bare_%08x", rand.Uint32()))})
	code, _, errOut = runCLI(t, "rebuild", "--config", bare, "--source", filepath.Join("..", "..", "testdata", "scifact", "corpus.jsonl"), "--promote")
	if code != ExitUnknown || !strings.Contains(errOut, "region pg:") || !strings.Contains(errOut, "payload=metadata&text=content") || strings.Contains(errOut, "--resume") || strings.Contains(errOut, "region local") {
		t.Errorf("pgvector URL without payload/text: exit %d, stderr %q", code, errOut)
	}
	noEmb := writeConfig(t, fmt.Sprintf("regions:\n  - name: local\n    vectors: %q\n", live))
	code, _, errOut = runCLI(t, "rebuild", "--config", noEmb, "--source", bad)
	if code != ExitUnknown || !strings.Contains(errOut, "needs an embedder") {
		t.Errorf("no embedder: exit %d, stderr %q", code, errOut)
	}
}

// TestRebuildFromBlobSources rebuilds one region from a folder, from the
// same files behind a file:// URL and from an S3 bucket holding them: the
// three give one INDEX_HASH, and a blob source that is empty, not text or
// of an unknown scheme is refused, naming it.
func TestRebuildFromBlobSources(t *testing.T) {
	docs := map[string][]byte{
		"guide/intro.txt":  []byte("Parity between regions means every index holds the same points."),
		"guide/gate.txt":   []byte("The gate blocks routing until every check agrees across regions."),
		"notes/fence.txt":  []byte("The idempotency fence keeps a replayed write from landing twice."),
		".hidden/skip.txt": []byte("never read"),
	}
	folder := t.TempDir()
	for k, b := range docs {
		os.MkdirAll(filepath.Join(folder, filepath.Dir(k)), 0o755)
		os.WriteFile(filepath.Join(folder, k), b, 0o644)
	}
	bucket := newS3Bucket(t, "texts/", docs)
	rebuild := func(t *testing.T, source string) (int, string, string) {
		t.Helper()
		cfg := rebuildConfig(t, t.TempDir(), map[string]string{"local": fmt.Sprintf("embedded://%s?collection=chunks", t.TempDir())})
		return runCLI(t, "rebuild", "--config", cfg, "--source", source, "--promote", "--json")
	}
	hashes := map[string]string{}
	for name, src := range map[string]string{"folder": folder, "file": "file://" + folder, "s3": s3URL(t, bucket, "texts/")} {
		code, out, errOut := rebuild(t, src)
		var res replicate.Result
		if code != ExitEqual || json.Unmarshal([]byte(out), &res) != nil {
			t.Fatalf("%s source: exit %d\n%s%s", name, code, out, errOut)
		}
		if res.Documents != 3 {
			t.Errorf("%s source: %d documents, want 3 (the hidden one skipped)", name, res.Documents)
		}
		hashes[name] = res.IndexHash["local"]
	}
	if hashes["folder"] == "" || hashes["file"] != hashes["folder"] || hashes["s3"] != hashes["folder"] {
		t.Errorf("INDEX_HASH by source: %v, want one hash", hashes)
	}

	empty := newS3Bucket(t, "", map[string][]byte{})
	binary := newS3Bucket(t, "", map[string][]byte{"weights.bin": {0, 1, 2, 0xff}})
	for _, tc := range []struct{ source, want string }{
		{s3URL(t, empty, ""), "no objects"},
		{s3URL(t, binary, ""), "weights.bin: not UTF-8 text"},
		{"ftp://example.com/texts", `unknown scheme "ftp"`},
	} {
		code, _, errOut := rebuild(t, tc.source)
		if code != ExitUnknown || !strings.Contains(errOut, tc.want) {
			t.Errorf("source %s: exit %d, stderr %q; want 2 and %q", adapters.Redact(tc.source), code, errOut, tc.want)
		}
		if sk := blobtest.ServiceEnv("RAGPARITY_S3_SECRET_KEY"); strings.Contains(errOut, sk) {
			t.Errorf("the error shows the secret key: %s", errOut)
		}
	}
}

// TestRebuildReplayIntoWipedFolderExitsTwo: the same run id replayed after
// one region's folder was wiped writes nothing (the fence remembers the
// promoted run) and exits 2 naming the region and the way out, where it
// once exited 0 with the region left empty.
func TestRebuildReplayIntoWipedFolderExitsTwo(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	cfg := rebuildConfig(t, t.TempDir(), map[string]string{
		"a": fmt.Sprintf("embedded://%s?collection=chunks", dirA),
		"b": fmt.Sprintf("embedded://%s?collection=chunks", dirB)})
	src := filepath.Join("..", "..", "testdata", "scifact", "corpus.jsonl")
	if code, out, errOut := runCLI(t, "rebuild", "--config", cfg, "--source", src, "--promote", "--run-id", "wipe1"); code != ExitEqual {
		t.Fatalf("rebuild: exit %d\n%s%s", code, out, errOut)
	}
	ents, _ := os.ReadDir(dirA)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dirA, e.Name()))
	}
	code, out, errOut := runCLI(t, "rebuild", "--config", cfg, "--source", src, "--promote", "--run-id", "wipe1")
	if code != ExitUnknown || !strings.Contains(errOut, "region a:") || !strings.Contains(errOut, "no index now") || !strings.Contains(errOut, "--run-id") || strings.Contains(errOut, "region b:") {
		t.Errorf("replay into a wiped folder: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "rebuild", "--config", cfg, "--source", src, "--promote", "--run-id", "wipe2", "--regions", "a"); code != ExitEqual {
		t.Errorf("a new run id into the wiped folder: exit %d\n%s%s", code, out, errOut)
	}
}
