package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/ragparity/ragparity/fence"
)

// benchFence prints fence claims per second (claim + done per write)
// through the Go API and the HTTP API against the real Redis.
func benchFence(args []string) error {
	fs := flag.NewFlagSet("fence", flag.ExitOnError)
	n := fs.Int("writes", 20000, "writes claimed and completed per API")
	workers := fs.Int("workers", 4, "concurrent writers")
	fs.Parse(args)
	ctx := context.Background()
	url := os.Getenv("RAGPARITY_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	f, err := fence.Open(url, "")
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Warm(ctx); err != nil {
		return fmt.Errorf("Redis at %s: %w", url, err)
	}
	region := fmt.Sprintf("bench-%d", rand.Uint64())
	w, err := fence.NewWriter(f, fence.WriterOptions{Region: region, Lease: time.Minute, TTL: time.Hour, Window: time.Hour})
	if err != nil {
		return err
	}
	h, err := fence.NewHTTPHandler(fence.HTTPOptions{Writers: map[string]*fence.Writer{region: w}, Token: "bench-token"})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *workers}}
	post := func(path string, body any, out any) error {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer bench-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: HTTP %d", path, resp.StatusCode)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	run := func(api string, write func(i int) error) (float64, error) {
		var wg sync.WaitGroup
		errs := make([]error, *workers)
		t0 := time.Now()
		for g := 0; g < *workers; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := g; i < *n; i += *workers {
					if err := write(i); err != nil {
						errs[g] = err
						return
					}
				}
			}(g)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return 0, fmt.Errorf("%s: %w", api, err)
			}
		}
		return float64(*n) / time.Since(t0).Seconds(), nil
	}
	runID := fmt.Sprint(rand.Uint64())
	goRate, err := run("Go", func(i int) error {
		k := fence.Key(fmt.Sprint("go", i), "1", "ih", runID)
		st, err := w.Claim(ctx, k)
		if err != nil || st != fence.Acquired {
			return fmt.Errorf("claim %d: %v %v", i, st, err)
		}
		_, err = w.Done(ctx, k)
		return err
	})
	if err != nil {
		return err
	}
	httpRate, err := run("HTTP", func(i int) error {
		var cr struct{ Key, State string }
		if err := post("/v1/fence/claim", map[string]any{"region": region, "source_id": fmt.Sprint("http", i), "revision": "1",
			"index_hash": "ih", "partition": runID, "owner": "bench"}, &cr); err != nil {
			return err
		}
		if cr.State != "acquired" {
			return fmt.Errorf("claim %d: %s", i, cr.State)
		}
		var dr struct{ Duplicate bool }
		return post("/v1/fence/done", map[string]any{"region": region, "key": cr.Key, "owner": "bench"}, &dr)
	})
	if err != nil {
		return err
	}
	// Replays: every write again through the Go API, all hits.
	replay, err := run("Go replay", func(i int) error {
		st, err := w.Claim(ctx, fence.Key(fmt.Sprint("go", i), "1", "ih", runID))
		if err == nil && st != fence.AlreadyDone {
			err = fmt.Errorf("replay %d: %v", i, st)
		}
		return err
	})
	if err != nil {
		return err
	}
	stat, err := w.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("## fence throughput (real Redis, %d writers, %d writes per API; a write = claim + done)\n\n", *workers, *n)
	fmt.Printf("| API | writes/s |\n|---|---|\n| Go (fence.Writer) | %.0f |\n| HTTP (POST /v1/fence/claim + /done) | %.0f |\n| Go, replayed claims (all dedupe hits) | %.0f |\n", goRate, httpRate, replay)
	fmt.Printf("\nwindow: %d misses, %d hits, %d duplicates; dedupe rate %.4f over %d replayed writes\n", stat.Misses, stat.Hits, stat.Duplicates, stat.Rate, stat.Replayed)
	return nil
}
