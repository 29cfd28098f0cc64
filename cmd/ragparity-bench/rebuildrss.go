package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"
)

// benchRebuildRSS runs the real `ragparity rebuild` on a source folder
// holding one large text file and prints its peak RSS (target < 200 MB for
// 100 MB: chunking streams).
func benchRebuildRSS(args []string) error {
	fs := flag.NewFlagSet("rebuild-rss", flag.ExitOnError)
	bin := fs.String("bin", "bin/ragparity", "the ragparity binary")
	mb := fs.Int("mb", 100, "size of the single source file, in MB")
	chunk := fs.Int("chunk-size", 200, "analyzer chunk_size (words)")
	fs.Parse(args)
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "rp-bench-rss-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	f, err := os.Create(filepath.Join(src, "big.txt"))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(14, 14))
	vocab := strings.Fields("the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three")
	for written := 0; written < *mb<<20; {
		n, _ := w.WriteString(vocab[r.IntN(len(vocab))])
		w.WriteByte(' ')
		written += n + 1
		if written%97 == 0 {
			w.WriteByte('\n')
		}
	}
	w.Flush()
	f.Close()
	st, _ := os.Stat(filepath.Join(src, "big.txt"))

	table := fmt.Sprintf("rp_bench_rss_%08x", rand.Uint32())
	defer func() {
		if c, err := pgx.Connect(ctx, pgtest.URL()); err == nil {
			rows, _ := c.Query(ctx, "SELECT tablename FROM pg_tables WHERE tablename LIKE $1", table+"%")
			names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			for _, n := range names {
				c.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{n}.Sanitize())
			}
			c.Close(ctx)
		}
	}()
	cfg := filepath.Join(dir, "ragparity.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("embedder: glove\ncache_dir: %q\nanalyzer:\n  chunk_size: %d\n  overlap: 40\n  normalize: NFKC\nregions:\n  - name: bench\n    vectors: %q\n",
		filepath.Join(dir, "cache"), *chunk, pgTable(table))), 0o644)
	var out, errb bytes.Buffer
	cmd := exec.Command(*bin, "rebuild", "--config", cfg, "--source", src, "--json")
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	// Sample the split of the resident set: anonymous memory (heap,
	// chunking, batches) and file-backed pages (the binary, the mmapped
	// per-host embedding cache, which holds one vector per distinct chunk).
	var peakAnon, peakFile int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
				for _, line := range strings.Split(string(b), "\n") {
					var kb int64
					if n, _ := fmt.Sscanf(line, "RssAnon: %d kB", &kb); n == 1 {
						peakAnon = max(peakAnon, kb)
					}
					if n, _ := fmt.Sscanf(line, "RssFile: %d kB", &kb); n == 1 {
						peakFile = max(peakFile, kb)
					}
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	err = cmd.Wait()
	close(stop)
	<-sampled
	if err != nil {
		return fmt.Errorf("rebuild: %v\n%s", err, errb.String())
	}
	el := time.Since(t0)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	var res struct {
		Chunks int `json:"chunks"`
	}
	json.Unmarshal(out.Bytes(), &res)
	rss := float64(ru.Maxrss) / 1024 // KiB on Linux
	fmt.Printf("## rebuild peak RSS, one %.0f MB source file (pgvector, glove, chunk_size %d)\n\n", float64(st.Size())/1e6, *chunk)
	fmt.Printf("| file MB | chunks | seconds | peak RSS MB | of which anonymous (sampled) | file-backed (sampled) | target |\n|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %.0f | %d | %.1f | %.0f | %.0f | %.0f | < 200 MB RSS |\n", float64(st.Size())/1e6, res.Chunks, el.Seconds(), rss, float64(peakAnon)/1024, float64(peakFile)/1024)
	fmt.Println("\nFile-backed pages are mostly the mmapped embedding cache (one vector per distinct chunk; reclaimable page cache); the time is mostly PostgreSQL building the HNSW index.")
	if rss >= 200 {
		return fmt.Errorf("peak RSS %.0f MB >= 200 MB", rss)
	}
	return nil
}
