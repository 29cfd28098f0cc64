package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/verifier"
)

// TestDuplicateIDs: LlamaIndex's PGVectorStore inserts instead of
// upserting, so a re-ingest leaves two rows with one node_id (its table:
// id bigserial, text, metadata_ json, node_id, embedding). Keyed on
// node_id, the duplicated ids are reported as duplicates (never as "only
// in" a region), `hash` says the regions differ, and the gate fails that
// region alone, naming the ids.
func TestDuplicateIDs(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatalf("PostgreSQL: %v (start it with `make services`)", err)
	}
	defer conn.Close(ctx)
	prefix := fmt.Sprintf("data_rp_dup_%08x", rand.Uint32())
	dropTables(t, prefix)
	urls := map[string]string{}
	for _, r := range []string{"a", "b"} {
		tbl := prefix + "_" + r
		id := pgx.Identifier{tbl}.Sanitize()
		stmts := []string{
			"CREATE TABLE " + id + " (id bigserial PRIMARY KEY, text varchar NOT NULL, metadata_ json, node_id varchar, embedding vector(4))",
		}
		rows := 6
		for i := 0; i < rows; i++ {
			stmts = append(stmts, fmt.Sprintf("INSERT INTO %s (text, metadata_, node_id, embedding) VALUES ('chunk %d', '{\"doc_id\": \"d%d\"}', 'node-%d', '[%d,1,0,0]')", id, i, i%3, i, i+1))
		}
		if r == "b" { // a re-ingest of two nodes, inserted again
			for _, i := range []int{1, 4} {
				stmts = append(stmts, fmt.Sprintf("INSERT INTO %s (text, metadata_, node_id, embedding) VALUES ('chunk %d', '{\"doc_id\": \"d%d\"}', 'node-%d', '[%d,1,0,0]')", id, i, i%3, i, i+1))
			}
		}
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		urls[r] = pgtest.TableURL(tbl, "id", "node_id", "vector", "embedding", "payload", "metadata_", "text", "text")
	}
	cfg := writeConfig(t, fmt.Sprintf("release: r-dup\nsettings: {vector.metric: cosine}\ngate:\n  skip: [blobs, health, probes, dedupe_kv]\n  primary: a\nregions:\n  - name: a\n    vectors: %q\n  - name: b\n    vectors: %q\n", urls["a"], urls["b"]))

	code, out, errOut := runCLI(t, "hash", "--config", cfg, "--json")
	var h gate.HashJSON
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("hash --json: %v\n%s%s", err, out, errOut)
	}
	if code != ExitDiffer || len(h.Regions[0].Duplicates) != 0 || h.Regions[1].Duplicates["node-1"] != 2 || h.Regions[1].Duplicates["node-4"] != 2 || len(h.Regions[1].Duplicates) != 2 {
		t.Errorf("hash: exit %d, duplicates a %v b %v", code, h.Regions[0].Duplicates, h.Regions[1].Duplicates)
	}

	code, out, _ = runCLI(t, "diff", "--config", cfg, "--from", "a", "--to", "b", "--json")
	var d verifier.DiffResult
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if code != ExitDiffer || len(d.OnlyInTo) != 0 || len(d.OnlyInFrom) != 0 || d.DuplicatesTo["node-1"] != 2 {
		t.Errorf("diff: exit %d, only in a %v, only in b %v, duplicates in b %v", code, d.OnlyInFrom, d.OnlyInTo, d.DuplicatesTo)
	}
	_, text, _ := runCLI(t, "diff", "--config", cfg, "--from", "a", "--to", "b")
	if !strings.Contains(text, "duplicate in b (2 ids held more than once)") || !strings.Contains(text, "node-4  x2") {
		t.Errorf("diff text does not list the duplicates:\n%s", text)
	}

	code, out, errOut = runCLI(t, "verify", "--config", cfg, "--json")
	var v gate.Verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("verify: %v\n%s", err, errOut)
	}
	rb, _ := v.Region("b")
	ra, _ := v.Region("a")
	if code != ExitDiffer || !ra.Admit || rb.Admit || !strings.Contains(strings.Join(rb.Reasons, " "), "2 ids held more than once") ||
		!strings.Contains(strings.Join(v.Checks[0].Evidence, "\n"), "b: id node-1 held 2 times") {
		t.Errorf("verify: exit %d, a %+v, b %+v, evidence %q", code, ra, rb, v.Checks[0].Evidence)
	}
}
