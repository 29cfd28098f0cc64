package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
	"github.com/ragparity/ragparity/verifier"
)

// `hash --shard i/4` of a pgvector table with a primary key writes
// row-range shards ("split": "rows", every bucket's partial leaves), and
// `merge` adds them into the whole run's INDEX_HASH; without a shard it
// refuses.
func TestRowShardsMergeToWholeRun(t *testing.T) {
	table := fmt.Sprintf("ctid_cli_%d", time.Now().UnixNano())
	s, base := openPGTable(t, table)
	vectortest.Load(t, s, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 2000, 5))
	cfg := writeConfig(t, fmt.Sprintf("regions:\n  - name: pg\n    vectors: %q\n", base.String()))
	code, whole, errOut := runCLI(t, "hash", "--config", cfg, "--json")
	if code != ExitEqual {
		t.Fatalf("hash: exit %d: %s", code, errOut)
	}
	if strings.Contains(whole, `"split"`) {
		t.Errorf("the whole run's JSON carries a split:\n%s", whole)
	}
	var w gate.HashJSON
	if err := json.Unmarshal([]byte(whole), &w); err != nil || len(w.Regions) != 1 {
		t.Fatalf("hash JSON: %v\n%s", err, whole)
	}
	dir := t.TempDir()
	var files []string
	for i := 0; i < 4; i++ {
		code, out, errOut := runCLI(t, "hash", "--config", cfg, "--shard", fmt.Sprintf("%d/4", i), "--json")
		if code != ExitEqual {
			t.Fatalf("shard %d: exit %d: %s", i, code, errOut)
		}
		var sj verifier.ShardJSON
		if err := json.Unmarshal([]byte(out), &sj); err != nil || len(sj.Regions) != 1 {
			t.Fatalf("shard %d JSON: %v", i, err)
		}
		if r := sj.Regions[0]; r.Split != verifier.SplitRows || r.Range != [2]int{0, sj.Buckets} || r.Points == 0 || r.Points == 2000 {
			t.Fatalf("shard %d: split %q range %v points %d; want a row-range shard holding part of the table", i, r.Split, r.Range, r.Points)
		}
		f := filepath.Join(dir, fmt.Sprintf("s%d.json", i))
		os.WriteFile(f, []byte(out), 0o600)
		files = append(files, f)
	}
	code, out, errOut := runCLI(t, append([]string{"merge", "--json", "--allow-skew"}, files...)...)
	if code != ExitEqual {
		t.Fatalf("merge: exit %d: %s", code, errOut)
	}
	var m gate.HashJSON
	if err := json.Unmarshal([]byte(out), &m); err != nil || len(m.Regions) != 1 {
		t.Fatalf("merge JSON: %v\n%s", err, out)
	}
	if m.Regions[0].IndexHash != w.Regions[0].IndexHash || m.Regions[0].Points != 2000 {
		t.Errorf("merged %s (%d points), whole run %s (%d)", m.Regions[0].IndexHash, m.Regions[0].Points, w.Regions[0].IndexHash, w.Regions[0].Points)
	}
	code, _, errOut = runCLI(t, "merge", "--allow-skew", files[0], files[1], files[3])
	if code != ExitUnknown || !strings.Contains(errOut, "missing shards [2] of 4") {
		t.Errorf("merge with a missing shard: exit %d, stderr %q", code, errOut)
	}
	code, out, _ = runCLI(t, "hash", "--config", cfg, "--shard", "1/4")
	if code != ExitEqual || !strings.Contains(out, "pg shard 1/4: rows part 1/4 of the table, every bucket") {
		t.Errorf("shard text output: exit %d\n%s", code, out)
	}
}
