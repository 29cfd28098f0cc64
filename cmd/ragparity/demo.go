package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unicode"

	"github.com/ragparity/ragparity/adapters"
)

func init() {
	register("demo", "build three embedded regions from Go's package docs, drift one, show hash and diff", runDemo)
}

// demoPackages are read from GOROOT at run time (BSD-licensed text, not
// shipped in the binary).
var demoPackages = []string{"fmt", "strings", "sort", "bufio", "errors", "context", "sync", "io", "os", "time", "net/http", "encoding/json"}

// featureVector is a deterministic bag-of-words feature-hashing vector: a
// stand-in embedding for the demo's hash-parity step.
func featureVector(text string, dim int) []float32 {
	v := make([]float32, dim)
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		h := fnv.New64a()
		h.Write([]byte(w))
		x := h.Sum64()
		sign := float32(1)
		if x>>63 == 1 {
			sign = -1
		}
		v[int(x%uint64(dim))] += sign
	}
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 {
		v[0] = 1
		return v
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / math.Sqrt(n))
	}
	return v
}

// demoChunks splits the package docs into paragraph chunks.
func demoChunks() ([]adapters.Point, error) {
	root := runtime.GOROOT()
	var pts []adapters.Point
	for _, pkg := range demoPackages {
		b, err := os.ReadFile(filepath.Join(root, "src", pkg, "doc.go"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var para []string
		flush := func() {
			if len(para) > 0 {
				text := strings.Join(para, " ")
				id := fmt.Sprintf("%s#%d", pkg, len(pts))
				pts = append(pts, adapters.Point{
					ID:      adapters.ID{Kind: adapters.IDString, S: id},
					Vectors: []adapters.NamedVector{{Values: featureVector(text, 64)}},
					Payload: []byte(fmt.Sprintf(`{"source":"go/src/%s/doc.go","package":%q}`, pkg, pkg)),
					Text:    text, HasText: true,
				})
			}
			para = para[:0]
		}
		for _, line := range strings.Split(string(b), "\n") {
			l := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "//"))
			if strings.HasPrefix(line, "package ") {
				break
			}
			if l == "" {
				flush()
				continue
			}
			para = append(para, l)
		}
		flush()
	}
	if len(pts) == 0 {
		return nil, fmt.Errorf("demo: no package docs found under %s/src", root)
	}
	return pts, nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Bool("keep", false, "keep the demo folder instead of removing it")
	if err := parseFlags(fs, args, stderr); err != nil {
		return flagExit(err)
	}
	pts, err := demoChunks()
	if err != nil {
		return fail(stderr, err)
	}
	dir, err := os.MkdirTemp("", "ragparity-demo-")
	if err != nil {
		return fail(stderr, err)
	}
	if *keep {
		fmt.Fprintf(stdout, "demo folder: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	regions := []string{"us-east-1", "eu-west-1", "ap-south-1"}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "release: demo\nsettings:\n  model_tag: feature-hash-64\n  chunker: paragraph/v1\nregions:\n")
	stores := map[string]adapters.VectorStore{}
	for _, r := range regions {
		u := fmt.Sprintf("embedded://%s?collection=chunks", filepath.Join(dir, r))
		fmt.Fprintf(&cfg, "  - name: %s\n    vectors: %q\n", r, u)
		s, err := adapters.OpenVector(ctx, u)
		if err != nil {
			return fail(stderr, err)
		}
		if err := s.Create(ctx, adapters.CollectionSpec{Vectors: map[string]int{"": 64}, Metric: "cosine"}); err != nil {
			return fail(stderr, err)
		}
		if err := s.Upsert(ctx, pts); err != nil {
			return fail(stderr, err)
		}
		stores[r] = s
	}
	cfgPath := filepath.Join(dir, "regions.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "== 1. three regions loaded with %d chunks of Go package docs: ragparity hash\n\n", len(pts))
	if code := run(ctx, []string{"hash", "--config", cfgPath}, stdout, stderr); code != ExitEqual {
		return fail(stderr, fmt.Errorf("demo: identical regions did not hash equal (exit %d)", code))
	}
	// Drift ap-south-1: a partial reindex replaced two chunks' text but not
	// their vectors, and lost one chunk.
	drift := []adapters.Point{pts[1], pts[len(pts)/2]}
	for i := range drift {
		drift[i].Text = strings.ToUpper(drift[i].Text)
	}
	if err := stores["ap-south-1"].Upsert(ctx, drift); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "\n== 2. ap-south-1 drifted (two stale chunks, one lost): ragparity hash\n\n")
	lost := pts[len(pts)-1]
	if err := dropPoint(ctx, stores["ap-south-1"], pts, lost.ID.S); err != nil {
		return fail(stderr, err)
	}
	if code := run(ctx, []string{"hash", "--config", cfgPath}, stdout, stderr); code != ExitDiffer {
		return fail(stderr, fmt.Errorf("demo: drifted region was not caught (exit %d)", code))
	}
	fmt.Fprintf(stdout, "\n== 3. which chunks: ragparity diff --from us-east-1 --to ap-south-1\n\n")
	if code := run(ctx, []string{"diff", "--config", cfgPath, "--from", "us-east-1", "--to", "ap-south-1"}, stdout, stderr); code != ExitDiffer {
		return fail(stderr, fmt.Errorf("demo: diff did not report the drift (exit %d)", code))
	}
	fmt.Fprintf(stdout, "\ndemo finished: the drift was caught and located.\n")
	return 0
}

// dropPoint rebuilds the collection without one id (the embedded store has
// no delete in the adapter interface).
func dropPoint(ctx context.Context, s adapters.VectorStore, pts []adapters.Point, id string) error {
	var cur []adapters.Point
	err := s.Scan(ctx, func(p *adapters.Point) error {
		if p.ID.S != id {
			cp := *p
			cp.Vectors = []adapters.NamedVector{{Values: append([]float32(nil), p.Vectors[0].Values...)}}
			cp.Payload = append([]byte(nil), p.Payload...)
			cur = append(cur, cp)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.Drop(ctx); err != nil {
		return err
	}
	if err := s.Create(ctx, adapters.CollectionSpec{Vectors: map[string]int{"": 64}, Metric: "cosine"}); err != nil {
		return err
	}
	return s.Upsert(ctx, cur)
}
