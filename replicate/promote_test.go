package replicate_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/jackc/pgx/v5"

	_ "github.com/ragparity/ragparity/adapters/pgvector"
	"github.com/ragparity/ragparity/replicate"
)

// pgRegions are regions on real PostgreSQL tables (dropped at the end).
func pgRegions(t *testing.T, names ...string) []region {
	t.Helper()
	prefix := fmt.Sprintf("rp14_%d", rand.Uint32())
	var out []region
	for _, n := range names {
		out = append(out, region{name: n, url: pgtest.TableURL(prefix+"_"+n, "payload", "metadata", "text", "content"), writes: &atomic.Int64{}})
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), pgtest.URL())
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		rows, _ := c.Query(context.Background(), "SELECT tablename FROM pg_tables WHERE tablename LIKE $1", prefix+"%")
		names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range names {
			c.Exec(context.Background(), "DROP TABLE IF EXISTS "+pgx.Identifier{n}.Sanitize())
		}
	})
	return out
}

func pgExec(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	c, err := pgx.Connect(context.Background(), pgtest.URL())
	if err != nil {
		t.Fatalf("PostgreSQL not reachable (start it with `make services`): %v", err)
	}
	defer c.Close(context.Background())
	tag, err := c.Exec(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return tag.RowsAffected()
}

func tableOf(r region) string {
	u, _ := url.Parse(r.url)
	return u.Query().Get("table")
}

// writeCorpus writes docs (id -> text) as a corpus.jsonl in dir.
func writeCorpus(t *testing.T, dir string, docs [][2]string) replicate.Source {
	var b strings.Builder
	for _, d := range docs {
		fmt.Fprintf(&b, "{\"_id\":%q,\"text\":%q}\n", d[0], d[1])
	}
	p := filepath.Join(dir, "corpus.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := replicate.OpenSource(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func words(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 7))
	vocab := strings.Fields("vector index region replica failover shard chunk embedding parity drift router gate blob manifest hash merkle bucket payload text query answer")
	w := make([]string, n)
	for i := range w {
		w[i] = vocab[r.IntN(len(vocab))]
	}
	return strings.Join(w, " ")
}

// freshHash rebuilds src into new regions and returns its INDEX_HASH and
// point count: what any correct promote of src must produce.
func freshHash(t *testing.T, src replicate.Source, pg bool) (string, int) {
	regs := embeddedRegions(t, "fresh")
	if pg {
		regs = pgRegions(t, "fresh")
	}
	o := opts(src, hashEmbedder(t), "fresh")
	o.Promote = true
	res, err := replicate.Rebuild(context.Background(), targets(t, regs, boltFence(t)), o)
	if err != nil {
		t.Fatal(err)
	}
	return liveHash(t, regs[0].url).IndexHash().Hex(), res.Chunks
}

// TestStageDroppedThenReplayedWritesAgain: the stage of a run is dropped
// (as error messages advise); replaying the run with --promote writes the
// documents again (the fence's records belonged to the dropped stage) and
// promotes what a fresh run promotes, never an empty index.
func TestStageDroppedThenReplayedWritesAgain(t *testing.T) {
	src := corpus(t, 80)
	regs := pgRegions(t, "a", "b")
	f := redisFence(t)
	run := fmt.Sprintf("drop%d", rand.Uint32())
	first, err := replicate.Rebuild(context.Background(), targets(t, regs, f), opts(src, hashEmbedder(t), run))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regs {
		if n := pgExec(t, "DROP TABLE "+pgx.Identifier{tableOf(r) + "__rp_" + run}.Sanitize()); n != 0 {
			t.Fatalf("drop: %d", n)
		}
	}
	o := opts(src, hashEmbedder(t), run)
	o.Promote = true
	res, err := replicate.Rebuild(context.Background(), targets(t, regs, f), o)
	if err != nil {
		t.Fatalf("replay after the stage was dropped: %v", err)
	}
	want, chunks := freshHash(t, src, true)
	for _, r := range regs {
		if res.Written[r.name] != first.Chunks || res.Dedupe[r.name].Hits != 0 {
			t.Errorf("%s: replay wrote %d (hits %d), want every chunk (%d) written again", r.name, res.Written[r.name], res.Dedupe[r.name].Hits, first.Chunks)
		}
		live := liveHash(t, r.url)
		if got := res.IndexHash[r.name]; got != live.IndexHash().Hex() {
			t.Errorf("%s: the rebuild reported INDEX_HASH %s, the live index hashes to %s", r.name, got, live.IndexHash())
		}
		if live.Points != int64(chunks) || live.IndexHash().Hex() != want {
			t.Errorf("%s: live %d points %s, want a fresh run's %d points %s", r.name, live.Points, live.IndexHash(), chunks, want)
		}
	}
}

// TestEditedCorpusReplayedPromotesOnlyCurrent: three documents staged; one
// deleted and one shortened; the same run replayed with --promote: the
// live index is a fresh run's over the edited corpus (no deleted or stale
// chunk). With the default, content-derived run id the edit is a new run.
func TestEditedCorpusReplayedPromotesOnlyCurrent(t *testing.T) {
	dir := t.TempDir()
	docs := [][2]string{{"keep", words(1, 90)}, {"takedown", words(2, 90)}, {"shorten", words(3, 120)}}
	before := writeCorpus(t, dir, docs)
	edited := [][2]string{docs[0], {"shorten", words(3, 30)}}

	t.Run("SameRunID", func(t *testing.T) {
		regs := pgRegions(t, "a")
		f := redisFence(t)
		run := fmt.Sprintf("edit%d", rand.Uint32())
		if _, err := replicate.Rebuild(context.Background(), targets(t, regs, f), opts(before, hashEmbedder(t), run)); err != nil {
			t.Fatal(err)
		}
		after := writeCorpus(t, t.TempDir(), edited)
		o := opts(after, hashEmbedder(t), run)
		o.Promote = true
		res, err := replicate.Rebuild(context.Background(), targets(t, regs, f), o)
		if err != nil {
			t.Fatalf("replay over the edited corpus: %v", err)
		}
		if len(res.Restaged) != 1 {
			t.Errorf("restaged %v, want region a (its stage held chunks the source no longer has)", res.Restaged)
		}
		want, chunks := freshHash(t, after, true)
		live := liveHash(t, regs[0].url)
		if live.Points != int64(chunks) || live.IndexHash().Hex() != want {
			t.Errorf("live %d points %s, want a fresh run's over the edited corpus: %d points %s", live.Points, live.IndexHash(), chunks, want)
		}
		if n := pgExec(t, "DELETE FROM "+pgx.Identifier{tableOf(regs[0])}.Sanitize()+" WHERE metadata->>'source_id' = 'takedown'"); n != 0 {
			t.Errorf("%d chunks of the deleted document are live", n)
		}
	})
	t.Run("DerivedRunID", func(t *testing.T) {
		regs := embeddedRegions(t, "a")
		f := boltFence(t)
		r1, err := replicate.Rebuild(context.Background(), targets(t, regs, f), opts(before, hashEmbedder(t), ""))
		if err != nil {
			t.Fatal(err)
		}
		after := writeCorpus(t, t.TempDir(), edited)
		o := opts(after, hashEmbedder(t), "")
		o.Promote = true
		r2, err := replicate.Rebuild(context.Background(), targets(t, regs, f), o)
		if err != nil {
			t.Fatal(err)
		}
		if r1.RunID == r2.RunID {
			t.Errorf("edited content kept run id %s", r1.RunID)
		}
		if len(r2.StaleStages) != 1 || r2.StaleStages[0].RunID != r1.RunID {
			t.Errorf("stale stages %+v, want the first run's", r2.StaleStages)
		}
		want, _ := freshHash(t, after, false)
		if got := liveHash(t, regs[0].url).IndexHash().Hex(); got != want {
			t.Errorf("live %s, want %s", got, want)
		}
		r3, err := replicate.Rebuild(context.Background(), targets(t, regs, f), opts(writeCorpus(t, t.TempDir(), edited), hashEmbedder(t), ""))
		if err != nil || r3.RunID != r2.RunID || r3.Written["a"] != 0 {
			t.Errorf("replay over the same content: run %s (want %s), written %v, err %v: want a no-op", r3.RunID, r2.RunID, r3.Written, err)
		}
	})
}

// TestTamperedStageRefused: between staging and promote one row of the
// stage is deleted and one text changed: promote is refused, naming both
// ids, and the live index is untouched.
func TestTamperedStageRefused(t *testing.T) {
	src := corpus(t, 40)
	regs := pgRegions(t, "a")
	f := redisFence(t)
	good := opts(src, hashEmbedder(t), fmt.Sprintf("good%d", rand.Uint32()))
	good.Promote = true
	if _, err := replicate.Rebuild(context.Background(), targets(t, regs, f), good); err != nil {
		t.Fatal(err)
	}
	liveBefore := liveHash(t, regs[0].url)
	run := fmt.Sprintf("tamper%d", rand.Uint32())
	if _, err := replicate.Rebuild(context.Background(), targets(t, regs, f), opts(src, hashEmbedder(t), run)); err != nil {
		t.Fatal(err)
	}
	stage := pgx.Identifier{tableOf(regs[0]) + "__rp_" + run}.Sanitize()
	deleted, changed := replicate.ChunkID("doc3", 0), replicate.ChunkID("doc7", 1)
	if pgExec(t, "DELETE FROM "+stage+" WHERE id = $1", deleted) != 1 || pgExec(t, "UPDATE "+stage+" SET content = 'tampered' WHERE id = $1", changed) != 1 {
		t.Fatal("tampering failed")
	}
	o := opts(src, hashEmbedder(t), run)
	o.Promote = true
	res, err := replicate.Rebuild(context.Background(), targets(t, regs, f), o)
	var me *replicate.MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("promote of a tampered stage: %v, want a *MismatchError", err)
	}
	for _, want := range []string{"region a", "missing ids: " + deleted, "changed ids: " + changed + " (text)", "untouched"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if res != nil && res.Promoted {
		t.Errorf("promoted")
	}
	if after := liveHash(t, regs[0].url); after.IndexHash() != liveBefore.IndexHash() {
		t.Errorf("the live index changed")
	}
}

// TestReplayIntoWipedRegionSaysSo: a run promoted in two regions is
// replayed after region a's store was wiped. The fence remembers the run,
// so nothing is written; the rebuild must say that a holds no index (and
// exit non-zero through the CLI), not report success, while b, which
// still holds the run's index, is just skipped.
func TestReplayIntoWipedRegionSaysSo(t *testing.T) {
	src := corpus(t, 30)
	dirA, dirB := t.TempDir(), t.TempDir()
	regs := []region{
		{name: "a", url: "embedded://" + dirA + "?collection=chunks", writes: &atomic.Int64{}},
		{name: "b", url: "embedded://" + dirB + "?collection=chunks", writes: &atomic.Int64{}},
	}
	f := boltFence(t)
	o := opts(src, hashEmbedder(t), "wiped")
	o.Promote = true
	if _, err := replicate.Rebuild(context.Background(), targets(t, regs, f), o); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dirA)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dirA, e.Name()))
	}
	res, err := replicate.Rebuild(context.Background(), targets(t, regs, f), o)
	if err == nil {
		t.Fatalf("replay into a wiped region: no error (note %q)", res.Note)
	}
	for _, want := range []string{"region a", "no index", "--run-id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "region b") {
		t.Errorf("error %q names region b, whose index is still there", err)
	}
	if res == nil || len(res.Gone) != 1 || res.Gone[0] != "a" {
		t.Fatalf("result Gone = %v, want [a]", res)
	}
	if res.Written["a"] != 0 || res.Written["b"] != 0 {
		t.Errorf("written %v, want nothing (the run was promoted)", res.Written)
	}
}

// TestRebuildIntoStoreThatDropsTextRefusedFirst: a pgvector URL that names
// no payload= or text= column keeps ids and vectors only. A rebuild into
// it once embedded and wrote every chunk and then failed its stage check
// with "changed ids (payload+text)"; it must refuse before writing,
// naming the region and the URL parameters that keep the content.
func TestRebuildIntoStoreThatDropsTextRefusedFirst(t *testing.T) {
	src := corpus(t, 10)
	regs := pgRegions(t, "a", "b")
	u, err := url.Parse(regs[1].url)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("payload")
	q.Del("text")
	u.RawQuery = q.Encode()
	regs[1].url = u.String()
	o := opts(src, hashEmbedder(t), "notext")
	o.Promote = true
	_, err = replicate.Rebuild(context.Background(), targets(t, regs, boltFence(t)), o)
	if err == nil {
		t.Fatal("rebuild into a store without payload and text columns: no error")
	}
	for _, want := range []string{"region b", "payload=", "text="} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "region a") {
		t.Errorf("error %q names region a", err)
	}
	for _, r := range regs {
		if n := r.writes.Load(); n != 0 {
			t.Errorf("%s: %d points written before the refusal", r.name, n)
		}
	}
}
