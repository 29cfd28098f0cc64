// Package demo is `ragparity demo`: the whole gate on the embedded default,
// driven through the CLI as a user would (build three regions, verify,
// drift one, catch it, repair it, report).
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/adapters/embedded"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/replicate"
)

//go:embed demodata/goldset.yaml
var demoGoldset []byte

// demoPackages' documentation (BSD-licensed, read from GOROOT at run time)
// is the demo corpus: one text file per package.
var demoPackages = []string{
	"fmt", "net/http", "encoding/json", "context", "os/exec", "flag", "regexp", "log/slog", "testing",
	"database/sql", "html/template", "embed", "sync/atomic", "runtime",
	"strings", "strconv", "sort", "errors", "bufio", "io", "os", "time", "sync", "bytes", "crypto/sha256",
	"crypto/tls", "net/url", "path/filepath", "compress/gzip", "archive/zip", "container/heap",
	"unicode/utf8", "encoding/csv", "text/template", "math/big", "reflect", "go/ast", "image", "mime",
}

// packageDoc returns the package comment of a GOROOT package.
func packageDoc(pkg string) (string, error) {
	dir := filepath.Join(runtime.GOROOT(), "src", filepath.FromSlash(pkg))
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	best := ""
	fset := token.NewFileSet()
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil || f.Doc == nil {
			continue
		}
		if t := f.Doc.Text(); len(t) > len(best) {
			best = t
		}
	}
	if strings.TrimSpace(best) == "" {
		return "", fmt.Errorf("no package documentation in %s", dir)
	}
	return best, nil
}

// contractServer answers each region's health contract on loopback, as the
// regions' own deploys would.
type contractServer struct {
	mu        sync.Mutex
	contracts map[string]map[string]string
	srv       *http.Server
	addr      string
}

func startContracts() (*contractServer, error) {
	cs := &contractServer{contracts: map[string]map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cs.addr = ln.Addr().String()
	cs.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		region := strings.TrimPrefix(r.URL.Path, "/health/")
		cs.mu.Lock()
		c, ok := cs.contracts[region]
		cs.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if c == nil {
			http.Error(w, "region down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c)
	}), ReadHeaderTimeout: 5 * time.Second}
	go cs.srv.Serve(ln)
	return cs, nil
}

func (cs *contractServer) set(region string, c map[string]string) {
	cs.mu.Lock()
	cs.contracts[region] = c
	cs.mu.Unlock()
}

// CLI runs one ragparity command (the binary's own dispatcher) and returns
// its exit code.
type CLI func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Exit codes of the CLI that the demo expects.
const (
	exitEqual   = 0
	exitDiffer  = 1
	exitUnknown = 2
)

// Options of a demo run.
type Options struct {
	// Keep keeps the working folder (regions, caches) as well as the report.
	Keep bool
	// Verbose prints every command's full output.
	Verbose bool
}

// Run runs the demo through cli, narrating on stdout.
func Run(ctx context.Context, cli CLI, o Options, stdout io.Writer) error {
	keep, verbose := &o.Keep, &o.Verbose
	start := time.Now()
	work, err := os.MkdirTemp("", "ragparity-demo-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(work)
	}
	reportDir, err := os.MkdirTemp("", "ragparity-demo-report-")
	if err != nil {
		return err
	}
	step := func(format string, a ...any) { fmt.Fprintf(stdout, "\n== "+format+"\n", a...) }
	// sub runs a ragparity command; its output is shown (indented) when
	// verbose, or always when show is set.
	sub := func(show bool, want int, args ...string) (string, error) {
		var out, errb bytes.Buffer
		code := cli(ctx, args, &out, &errb)
		if show || *verbose || code != want {
			for _, l := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
				fmt.Fprintf(stdout, "   %s\n", l)
			}
		}
		if code != want {
			return out.String(), fmt.Errorf("demo: `ragparity %s` exited %d, expected %d:\n%s", strings.Join(args, " "), code, want, errb.String())
		}
		return out.String(), nil
	}

	// 1. Source texts and blobs.
	src := filepath.Join(work, "source")
	os.MkdirAll(src, 0o755)
	var names []string
	for _, pkg := range demoPackages {
		doc, err := packageDoc(pkg)
		if err != nil {
			continue
		}
		name := strings.ReplaceAll(pkg, "/", "_") + ".txt"
		if err := os.WriteFile(filepath.Join(src, name), []byte(doc), 0o644); err != nil {
			return err
		}
		names = append(names, name)
	}
	if len(names) < 20 {
		return fmt.Errorf("demo: found documentation for only %d packages under %s", len(names), runtime.GOROOT())
	}
	gold := filepath.Join(work, "goldset.yaml")
	os.WriteFile(gold, demoGoldset, 0o644)
	cs, err := startContracts()
	if err != nil {
		return err
	}
	defer cs.srv.Close()
	regions := []string{"us-east-1", "eu-west-1", "ap-south-1"}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "release: demo-%s\nembedder: glove\ncache_dir: %q\nanalyzer:\n  chunk_size: 60\n  overlap: 10\n  normalize: NFKC\n", time.Now().UTC().Format("2006-01-02"), filepath.Join(work, "cache"))
	// Default probe thresholds: drift and λ are compared with the release
	// baseline, and the quality floors (which the offline GloVe embedder
	// misses) gate the baseline, not the regions.
	keys := filepath.Join(work, "keys")
	if _, err := sub(false, exitEqual, "verdict", "keygen", "--out", keys); err != nil {
		return err
	}
	fmt.Fprintf(&cfg, "gate:\n  signing_key: %q\n  routing:\n    eu: [eu-west-1, us-east-1, ap-south-1]\n    asia: [ap-south-1, eu-west-1, us-east-1]\nregions:\n", filepath.Join(keys, "verdict-signing.key"))
	for _, r := range regions {
		blobs := filepath.Join(work, "blobs", r)
		os.MkdirAll(blobs, 0o755)
		for _, n := range names {
			b, _ := os.ReadFile(filepath.Join(src, n))
			os.WriteFile(filepath.Join(blobs, n), b, 0o644)
		}
		fmt.Fprintf(&cfg, "  - name: %s\n    vectors: %q\n    blobs: %q\n    health: %q\n    dedupe_kv: %q\n", r,
			"embedded://"+filepath.Join(work, "vectors", r)+"?collection=chunks", "file://"+blobs,
			"http://"+cs.addr+"/health/"+r, "file://"+filepath.Join(work, "fence", r+".db"))
	}
	cfgPath := filepath.Join(work, "regions.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ragparity demo: three regions on the embedded store (chromem-go), local blob folders,\n%d source texts (Go package documentation from %s), %d gold questions.\n", len(names), runtime.GOROOT(), bytes.Count(demoGoldset, []byte("- id:")))

	step("1. rebuild all regions from the source texts (glove embeddings, each chunk embedded once)")
	out, err := sub(false, exitEqual, "rebuild", "--config", cfgPath, "--source", src, "--promote", "--json")
	if err != nil {
		return err
	}
	var rb replicate.Result
	if err := json.Unmarshal([]byte(out), &rb); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "   %d documents, %d chunks, %d embedding calls (not %d: one per chunk, shared by the 3 regions)\n", rb.Documents, rb.Chunks, rb.Embedded, 3*rb.Chunks)
	for _, r := range regions {
		fmt.Fprintf(stdout, "   %-11s written %d, INDEX_HASH %s\n", r, rb.Written[r], parity.ShortHex(rb.IndexHash[r]))
	}
	e, err := gate.OpenEmbedder("glove")
	if err != nil {
		return err
	}
	for _, r := range regions {
		cs.set(r, map[string]string{"schema_rev": "chunks-v3", "model_tag": e.ModelTag(), "secrets_rev": "2026-11", "index_hash": rb.IndexHash[r]})
	}

	contract := func(r, ih string) {
		cs.set(r, map[string]string{"schema_rev": "chunks-v3", "model_tag": e.ModelTag(), "secrets_rev": "2026-11", "index_hash": ih})
	}

	step("2. take the release baseline from us-east-1: INDEX_HASH and Merkle leaves, blob manifest, contract, probe runs")
	var bout, berr bytes.Buffer
	code := cli(ctx, []string{"baseline", "create", "--config", cfgPath, "--from", "us-east-1", "--goldset", gold}, &bout, &berr)
	switch code {
	case exitEqual:
		indent(stdout, bout.String())
	case exitDiffer:
		fmt.Fprintf(stdout, "   refused: %s", strings.TrimPrefix(berr.String(), "Error: "))
		reason := "offline demo: GloVe embeddings on Go package docs are weaker than a production embedder; parity, not quality, is what the demo shows"
		fmt.Fprintf(stdout, "   accepting it below the floors with a recorded reason: %q\n", reason)
		out, err := sub(false, exitEqual, "baseline", "create", "--config", cfgPath, "--from", "us-east-1", "--goldset", gold, "--accept-below-floor", reason)
		if err != nil {
			return err
		}
		indent(stdout, out)
	default:
		return fmt.Errorf("baseline create: exit %d: %s", code, berr.String())
	}

	step("3. verify: every region against the baseline, default thresholds, one signed verdict (expect PASS)")
	if _, err := sub(true, exitEqual, "verify", "--config", cfgPath, "--goldset", gold, "--report", filepath.Join(reportDir, "1-pass.html")); err != nil {
		return err
	}

	step("4. drift ap-south-1: a partial reindex updated the texts of two documents but not their vectors, and one blob changed")
	stale, err := InjectStaleChunks(ctx, filepath.Join(work, "vectors", "ap-south-1"), "context.txt", "flag.txt")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "   %d chunks now hold another chunk's text under their old vectors\n", stale)
	changed := filepath.Join(work, "blobs", "ap-south-1", names[0])
	f, _ := os.OpenFile(changed, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\nA half-copied revision.\n")
	f.Close()
	fmt.Fprintf(stdout, "   blob %s changed\n", names[0])

	step("5. verify again (expect DEGRADED: ap-south-1 blocked, naming the ids, keys and questions; the others stay admitted)")
	if _, err := sub(true, exitDiffer, "verify", "--config", cfgPath, "--goldset", gold, "--report", filepath.Join(reportDir, "2-drift.html")); err != nil {
		return err
	}

	step("6. repair ap-south-1: rebuild it from the source texts, copy the blobs back, verify (expect PASS)")
	out, err = sub(*verbose, exitEqual, "rebuild", "--config", cfgPath, "--source", src, "--regions", "ap-south-1", "--run-id", "repair-1", "--promote", "--json")
	if err != nil {
		return err
	}
	var rep replicate.Result
	json.Unmarshal([]byte(out), &rep)
	fmt.Fprintf(stdout, "   rebuilt ap-south-1: %d chunks written, INDEX_HASH %s\n", rep.Written["ap-south-1"], parity.ShortHex(rep.IndexHash["ap-south-1"]))
	contract("ap-south-1", rep.IndexHash["ap-south-1"])
	if _, err := sub(true, exitEqual, "replicate", "blobs", "--config", cfgPath, "--from", "us-east-1", "--to", "ap-south-1"); err != nil {
		return err
	}
	if _, err := sub(*verbose, exitEqual, "verify", "--config", cfgPath, "--goldset", gold); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "   PASS: every region admitted again")

	step("7. outage: eu-west-1's vector store becomes unreachable and its health URL answers 503 (expect DEGRADED: eu-west-1 inconclusive, the others admitted)")
	restore, err := takeDown(filepath.Join(work, "vectors", "eu-west-1"))
	if err != nil {
		return err
	}
	cs.set("eu-west-1", nil)
	if _, err := sub(true, exitUnknown, "verify", "--config", cfgPath, "--goldset", gold, "--report", filepath.Join(reportDir, "3-outage.html")); err != nil {
		restore()
		return err
	}

	step("8. eu-west-1 is back: verify (expect PASS) and write the report")
	if err := restore(); err != nil {
		return err
	}
	contract("eu-west-1", rb.IndexHash["eu-west-1"])
	final := filepath.Join(reportDir, "report.html")
	if _, err := sub(true, exitEqual, "verify", "--config", cfgPath, "--goldset", gold, "--report", final); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\ndemo finished in %v: the drift was caught, located and repaired; the outage blocked only the region that was down.\nreport: %s\n(the verdicts of steps 3, 5 and 7: %s, %s, %s)\n",
		time.Since(start).Round(100*time.Millisecond), final, filepath.Join(reportDir, "1-pass.html"), filepath.Join(reportDir, "2-drift.html"), filepath.Join(reportDir, "3-outage.html"))
	return nil
}

// InjectStaleChunks gives every chunk of the named documents the text of
// another document's chunk while keeping its stored vector: what a partial
// reindex that updated texts but not vectors leaves behind.
func InjectStaleChunks(ctx context.Context, folder string, docs ...string) (int, error) {
	s, err := adapters.OpenVector(ctx, "embedded://"+folder+"?collection=chunks")
	if err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, d := range docs {
		want[d] = true
	}
	var pts, others []parity.Point
	err = s.Scan(ctx, func(p *parity.Point) error {
		var pl struct {
			SourceID string `json:"source_id"`
		}
		json.Unmarshal(p.Payload, &pl)
		cp := *p
		cp.Vectors = []parity.NamedVector{{Values: append([]float32(nil), p.Vectors[0].Values...)}}
		cp.Payload = append([]byte(nil), p.Payload...)
		if want[pl.SourceID] {
			pts = append(pts, cp)
		} else {
			others = append(others, cp)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if len(pts) == 0 || len(others) == 0 {
		return 0, errors.New("demo: no chunks to drift")
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].ID.S < pts[j].ID.S })
	sort.Slice(others, func(i, j int) bool { return others[i].ID.S < others[j].ID.S })
	for i := range pts {
		pts[i].Text = others[(i*7)%len(others)].Text
	}
	return len(pts), s.Upsert(ctx, pts)
}

// takeDown makes an embedded store folder unreachable (its path becomes
// a file, and the process-wide handle is dropped) and returns the repair.
func takeDown(folder string) (func() error, error) {
	embedded.Forget(folder)
	if err := os.Rename(folder, folder+".down"); err != nil {
		return nil, err
	}
	if err := os.WriteFile(folder, []byte("not a store\n"), 0o644); err != nil {
		return nil, err
	}
	return func() error {
		if err := os.Remove(folder); err != nil {
			return err
		}
		embedded.Forget(folder)
		return os.Rename(folder+".down", folder)
	}, nil
}

// indent prints a command's output indented under its step.
func indent(w io.Writer, out string) {
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fmt.Fprintf(w, "   %s\n", l)
	}
}
