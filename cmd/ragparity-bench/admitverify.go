package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ragparity/ragparity/adapters"
	_ "github.com/ragparity/ragparity/adapters/embedded"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

// benchAdmitVerifySetup writes, for scripts/bench-admit-verify.sh, two
// equal embedded regions of --points points each and a config that
// verifies them (index_hash only: the CPU-heavy scan and hash) every
// --schedule, and prints the config's path.
func benchAdmitVerifySetup(args []string) error {
	fs := flag.NewFlagSet("admit-verify-setup", flag.ExitOnError)
	dir := fs.String("dir", "", "folder for the regions and the config (required)")
	points := fs.Int("points", 20000, "points per region")
	schedule := fs.String("schedule", "1500ms", "gate.schedule")
	fs.Parse(args)
	if *dir == "" {
		return fmt.Errorf("--dir is required")
	}
	ctx := context.Background()
	pts := vectortest.Points(parity.IDString, *points, 7)
	var regions string
	for _, r := range []string{"a", "b"} {
		u := fmt.Sprintf("embedded://%s?collection=chunks", filepath.Join(*dir, r))
		s, err := adapters.OpenVector(ctx, u)
		if err != nil {
			return err
		}
		if err := s.Create(ctx, vectortest.Spec(parity.IDString)); err != nil {
			return err
		}
		for i := 0; i < len(pts); i += 500 {
			if err := s.Upsert(ctx, pts[i:min(i+500, len(pts))]); err != nil {
				return err
			}
		}
		s.Close()
		regions += fmt.Sprintf("  - name: %s\n    vectors: %q\n", r, u)
	}
	cfg := fmt.Sprintf("release: r-bench\ncache_dir: %q\ngate:\n  schedule: %s\n  verdict_ttl: 10m\n  skip: [blobs, health, probes, dedupe_kv]\n  routing: {eu: [a, b]}\nregions:\n%s",
		filepath.Join(*dir, "cache"), *schedule, regions)
	path := filepath.Join(*dir, "ragparity.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}
