package pgvector_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/adapters/pgvector"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

func TestStager(t *testing.T) { vectortest.RunStager(t, harness(t)) }

// newLive returns a *pgvector.Store on a fresh table name (dropped at
// cleanup) and the name.
func newLive(t *testing.T) (*pgvector.Store, string) {
	t.Helper()
	requirePG(t)
	table := uniqueTable()
	s := open(t, tableURL(pgtest.URL(), table)).(*pgvector.Store)
	t.Cleanup(func() { s.Drop(context.Background()) })
	return s, table
}

// indexNames lists the indexes of a table.
func indexNames(t *testing.T, s *pgvector.Store, table string) []string {
	t.Helper()
	rows, err := s.Pool().Query(t.Context(), `SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = to_regclass($1) ORDER BY 1`, table)
	if err != nil {
		t.Fatalf("list indexes: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatalf("list indexes: %v", err)
		}
		out = append(out, n)
	}
	return out
}

func TestPromoteBuildsHNSWWithOperatorClass(t *testing.T) {
	for _, tc := range []struct {
		metric, opclass string
		m, ef           int
		wantM, wantEf   int
	}{
		{"cosine", "vector_cosine_ops", 0, 0, 16, 64},
		{"l2", "vector_l2_ops", 8, 32, 8, 32},
		{"dot", "vector_ip_ops", 12, 0, 12, 64},
		{"l1", "vector_l1_ops", 0, 40, 16, 40},
	} {
		t.Run(tc.metric, func(t *testing.T) {
			live, table := newLive(t)
			spec := vectortest.Spec(parity.IDInt)
			spec.Metric, spec.HNSWM, spec.HNSWEfConstruction = tc.metric, tc.m, tc.ef
			vectortest.Populate(t, live, "rebuild", spec, vectortest.Points(parity.IDInt, 50, 1))
			st, err := live.Settings(t.Context())
			if err != nil {
				t.Fatalf("Settings: %v", err)
			}
			for k, want := range map[string]any{"vector.metric": tc.metric, "vector.dim": vectortest.Dim} {
				if got := st.Hashed[k]; got != want {
					t.Errorf("Settings %s = %v, want %v (semantic)", k, got, want)
				}
			}
			for k, want := range map[string]any{"index.type": "hnsw", "index.m": tc.wantM, "index.ef_construction": tc.wantEf} {
				if got := st.Engine[k]; got != want {
					t.Errorf("Settings %s = %v, want %v (engine)", k, got, want)
				}
			}
			if got, want := st.Info["index.opclass"], tc.opclass; got != want {
				t.Errorf("index.opclass = %v, want %v", got, want)
			}
			if got, want := indexNames(t, live, table), []string{table + "_embedding_hnsw", table + "_pkey"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("indexes of the promoted table = %v, want %v", got, want)
			}
		})
	}
}

// TestPromoteOverCreatedTable replaces a table made by Create (with an
// l2 index) by a cosine stage, twice, and checks index names stay stable,
// nothing is left behind, and grants, the table comment and a serial
// column's sequence are carried over.
func TestPromoteOverCreatedTable(t *testing.T) {
	live, table := newLive(t)
	ctx := t.Context()
	spec := vectortest.Spec(parity.IDInt)
	spec.Metric = "l2"
	vectortest.Load(t, live, spec, vectortest.Points(parity.IDInt, 40, 1))
	pool := live.Pool()
	for _, sql := range []string{
		"ALTER TABLE " + table + " ADD COLUMN seq bigserial",
		"CREATE INDEX " + table + "_doc_idx ON " + table + " ((metadata->>'doc'))",
		"COMMENT ON TABLE " + table + " IS 'chunks of the corpus'",
		"GRANT SELECT ON " + table + " TO PUBLIC",
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	wantIdx := []string{table + "_doc_idx", table + "_embedding_hnsw", table + "_pkey"}
	if got := indexNames(t, live, table); fmt.Sprint(got) != fmt.Sprint(wantIdx) {
		t.Fatalf("indexes before = %v, want %v", got, wantIdx)
	}
	cosine := vectortest.Spec(parity.IDInt)
	for round, seed := range []uint64{7, 8} {
		pts := vectortest.Points(parity.IDInt, 60, seed)
		stage := vectortest.OpenStage(t, live, "rebuild", cosine)
		if got := indexNames(t, live, table+"__rp_rebuild"); len(got) != 2 {
			// The primary key and the expression index, no ANN index while loading.
			t.Errorf("round %d: stage indexes = %v, want the primary key and the doc index only", round, got)
		}
		if err := stage.Upsert(ctx, pts); err != nil {
			t.Fatalf("round %d: Upsert: %v", round, err)
		}
		if err := live.Promote(ctx, "rebuild"); err != nil {
			t.Fatalf("round %d: Promote: %v", round, err)
		}
		vectortest.SameAs(t, fmt.Sprintf("round %d: live", round), vectortest.Collect(t, live), pts)
		if got := indexNames(t, live, table); fmt.Sprint(got) != fmt.Sprint(wantIdx) {
			t.Errorf("round %d: indexes after Promote = %v, want %v", round, got, wantIdx)
		}
		st, err := live.Settings(ctx)
		if err != nil {
			t.Fatalf("Settings: %v", err)
		}
		if got := st.Hashed["vector.metric"]; got != "cosine" {
			t.Errorf("round %d: vector.metric = %v, want cosine (from the stage spec)", round, got)
		}
		var comment *string
		var publicSelect, seqOwned bool
		var leftovers []string
		err = pool.QueryRow(ctx, `SELECT obj_description(to_regclass($1), 'pg_class'),
				has_table_privilege('public', $1, 'SELECT'),
				EXISTS (SELECT 1 FROM pg_depend WHERE refobjid = to_regclass($1) AND objid = pg_get_serial_sequence($1, 'seq')::regclass AND deptype = 'a'),
				ARRAY(SELECT relname FROM pg_class WHERE relname LIKE $2 || '\_\_rp\_%' ORDER BY 1)`,
			table, table).Scan(&comment, &publicSelect, &seqOwned, &leftovers)
		if err != nil {
			t.Fatalf("catalog: %v", err)
		}
		if comment == nil || *comment != "chunks of the corpus" {
			t.Errorf("round %d: table comment = %v, want the live table's", round, comment)
		}
		if !publicSelect {
			t.Errorf("round %d: the SELECT grant to PUBLIC was lost", round)
		}
		if !seqOwned {
			t.Errorf("round %d: the serial column's sequence is not owned by the new table", round)
		}
		if len(leftovers) != 0 {
			t.Errorf("round %d: relations left behind: %v", round, leftovers)
		}
	}
	// The serial default still works on the promoted table.
	if _, err := pool.Exec(ctx, "INSERT INTO "+table+" (id, embedding) VALUES (100000, '[1,0,0,0,0,0,0,0]')"); err != nil {
		t.Errorf("insert relying on the serial default: %v", err)
	}
}

// TestPromoteKeepsLiveWhenSomethingDepends: a view on the live table makes
// the swap impossible; Promote says so and changes nothing.
func TestPromoteKeepsLiveWhenSomethingDepends(t *testing.T) {
	live, table := newLive(t)
	ctx := t.Context()
	old := vectortest.Points(parity.IDInt, 30, 1)
	vectortest.Load(t, live, vectortest.Spec(parity.IDInt), old)
	if _, err := live.Pool().Exec(ctx, "CREATE VIEW "+table+"_v AS SELECT id FROM "+table); err != nil {
		t.Fatalf("create view: %v", err)
	}
	t.Cleanup(func() { live.Pool().Exec(context.Background(), "DROP VIEW IF EXISTS "+table+"_v") })
	stage := vectortest.OpenStage(t, live, "rebuild", vectortest.Spec(parity.IDInt))
	if err := stage.Upsert(ctx, vectortest.Points(parity.IDInt, 50, 2)); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	err := live.Promote(ctx, "rebuild")
	if err == nil || !strings.Contains(err.Error(), "depend") {
		t.Fatalf("Promote with a dependent view: error = %v, want one saying other objects depend on the table", err)
	}
	vectortest.SameAs(t, "live after the failed Promote", vectortest.Collect(t, live), old)
	// The stage is still there: drop the view and retry.
	if _, err := live.Pool().Exec(ctx, "DROP VIEW "+table+"_v"); err != nil {
		t.Fatalf("drop view: %v", err)
	}
	if err := live.Promote(ctx, "rebuild"); err != nil {
		t.Fatalf("Promote after dropping the view: %v", err)
	}
	vectortest.SameAs(t, "live after Promote", vectortest.Collect(t, live), vectortest.Points(parity.IDInt, 50, 2))
}

// TestConcurrentReaderSeesWholeTable runs COPY scans of the live table in
// other connections while Promote swaps it: a scan already running when
// Promote starts (held mid-stream by its callback) sees the whole old
// table, one that starts while the swap waits sees the whole new one, and
// scans looping throughout see one or the other, never a mix.
func TestConcurrentReaderSeesWholeTable(t *testing.T) {
	live, table := newLive(t)
	ctx := t.Context()
	big := func(pts []parity.Point) []parity.Point {
		// Long texts, so a scan's rows do not all fit in socket buffers and
		// a held scan really holds the table.
		for i := range pts {
			pts[i].Text = strings.Repeat(pts[i].Text+" ", 160)
		}
		return pts
	}
	// About 30 MB a table, more than loopback socket buffers hold.
	oldPts := big(vectortest.Points(parity.IDInt, 6000, 41))
	newPts := big(vectortest.Points(parity.IDInt, 7000, 42)[1000:])
	spec := vectortest.Spec(parity.IDInt)
	spec.HNSWM, spec.HNSWEfConstruction = 4, 8 // a quick index build
	vectortest.Populate(t, live, "first", spec, oldPts)
	stage := vectortest.OpenStage(t, live, "second", spec)
	if err := stage.Upsert(ctx, newPts); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	// Readers use their own pools: reader for the held and the late scan,
	// loopReader for the looping ones.
	reader := open(t, tableURL(pgtest.URL(), table))
	loopReader := open(t, tableURL(pgtest.URL(), table))

	type result struct {
		got map[string]parity.Point
		err error
	}
	scan := func(r adapters.VectorReader, started chan<- struct{}, hold <-chan struct{}) result {
		got := map[string]parity.Point{}
		first := true
		err := r.Scan(ctx, func(p *parity.Point) error {
			if first && started != nil {
				first = false
				close(started)
				<-hold
			}
			cp := *p
			cp.Vectors = []parity.NamedVector{{Values: append([]float32(nil), p.Vectors[0].Values...)}}
			cp.Payload = append([]byte(nil), p.Payload...)
			got[p.ID.S] = cp
			return nil
		})
		return result{got, err}
	}
	which := func(r result) string {
		if r.err != nil {
			return "error: " + r.err.Error()
		}
		if vectortest.Diff(r.got, oldPts) == nil {
			return "old"
		}
		if vectortest.Diff(r.got, newPts) == nil {
			return "new"
		}
		return fmt.Sprintf("a mix (%d points: vs old: %v; vs new: %v)", len(r.got), vectortest.Diff(r.got, oldPts), vectortest.Diff(r.got, newPts))
	}

	// Scans looping in the background for the whole test.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				w := which(scan(loopReader, nil, nil))
				mu.Lock()
				seen[w]++
				mu.Unlock()
			}
		}()
	}

	// A scan held mid-stream.
	started, hold := make(chan struct{}), make(chan struct{})
	heldRes := make(chan result, 1)
	go func() { heldRes <- scan(reader, started, hold) }()
	<-started

	promoted := make(chan error, 1)
	go func() { promoted <- live.Promote(ctx, "second") }()
	// Promote must wait for the held scan's lock.
	waitFor(t, "Promote to wait for the live table's lock", func() bool {
		var n int
		live.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE relation = to_regclass($1) AND mode = 'AccessExclusiveLock' AND NOT granted`, table).Scan(&n)
		return n > 0
	})
	select {
	case err := <-promoted:
		t.Fatalf("Promote returned (%v) while a scan held the live table", err)
	default:
	}
	// A scan that starts now queues behind the swap.
	lateRes := make(chan result, 1)
	go func() { lateRes <- scan(reader, nil, nil) }()
	waitFor(t, "the late scan to queue", func() bool {
		var n int
		live.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE relation = to_regclass($1) AND mode = 'AccessShareLock' AND NOT granted`, table).Scan(&n)
		return n > 0
	})
	close(hold)
	if got := which(<-heldRes); got != "old" {
		t.Errorf("scan running when Promote started saw %s, want the whole old table", got)
	}
	if err := <-promoted; err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if got := which(<-lateRes); got != "new" {
		t.Errorf("scan started during the swap saw %s, want the whole new table", got)
	}
	// Let the loops see the new table a few times, then stop them.
	waitFor(t, "the looping scans to see the new table", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["new"] >= 3
	})
	close(stop)
	wg.Wait()
	var kinds []string
	for w, n := range seen {
		kinds = append(kinds, fmt.Sprintf("%s ×%d", w, n))
		if w != "old" && w != "new" {
			t.Errorf("a looping scan saw %s", w)
		}
	}
	sort.Strings(kinds)
	t.Logf("looping scans: %s", strings.Join(kinds, ", "))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStageCopyPathAndResume: a stage's Upsert loads with COPY and, on ids
// already present, still replaces them (the resume case).
func TestStageCopyPathAndResume(t *testing.T) {
	for name, kind := range map[string]parity.IDKind{"Int": parity.IDInt, "String": parity.IDString, "UUID": parity.IDUUID} {
		t.Run(name, func(t *testing.T) {
			live, _ := newLive(t)
			spec := vectortest.Spec(kind)
			stage := vectortest.OpenStage(t, live, "rebuild", spec)
			a := vectortest.Points(kind, 300, 1)
			b := vectortest.Points(kind, 300, 2)
			if err := stage.Upsert(t.Context(), a[:200]); err != nil {
				t.Fatalf("Upsert: %v", err)
			}
			// Overlapping ids with new content: the COPY hits a duplicate and
			// the merge replaces.
			if err := stage.Upsert(t.Context(), b[100:]); err != nil {
				t.Fatalf("Upsert over present ids: %v", err)
			}
			want := append(append([]parity.Point(nil), a[:100]...), b[100:]...)
			vectortest.SameAs(t, "stage", vectortest.Collect(t, stage), want)
		})
	}
}

func TestWriteRowByRow(t *testing.T) {
	live, _ := newLive(t)
	spec := vectortest.Spec(parity.IDUUID)
	if err := live.Create(t.Context(), spec); err != nil {
		t.Fatalf("Create: %v", err)
	}
	pts := vectortest.Points(parity.IDUUID, 120, 3)
	if err := live.WriteRowByRow(t.Context(), pts); err != nil {
		t.Fatalf("WriteRowByRow: %v", err)
	}
	vectortest.SameAs(t, "table", vectortest.Collect(t, live), pts)
	if err := live.WriteRowByRow(t.Context(), pts[:1]); err == nil {
		t.Errorf("WriteRowByRow of a present id succeeded, want a duplicate key error (plain INSERT)")
	}
}

func TestStageNames(t *testing.T) {
	live, _ := newLive(t)
	for _, name := range []string{"", "old", "a__b", "-x", "a b", "a;drop", strings.Repeat("x", 60)} {
		if _, err := live.Stage(t.Context(), name, vectortest.Spec(parity.IDInt)); err == nil {
			t.Errorf("Stage(%q) succeeded, want an error", name)
			live.DropStage(context.Background(), name)
		}
	}
	if err := live.Promote(t.Context(), "x"); !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("Promote of a missing stage: %v, want ErrNotFound", err)
	}
}

// BenchmarkWrite compares loading a stage with COPY (Upsert) against one
// INSERT per row (WriteRowByRow).
func BenchmarkWrite(b *testing.B) {
	const n = 5000
	pts := vectortest.Points(parity.IDInt, n, 5)
	for _, tc := range []struct {
		name  string
		write func(s *pgvector.Store, ctx context.Context, pts []parity.Point) error
	}{
		{"COPY", (*pgvector.Store).Upsert},
		{"RowByRow", (*pgvector.Store).WriteRowByRow},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := adapters.OpenVector(context.Background(), tableURL(pgtest.URL(), uniqueTable()))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			live := s.(*pgvector.Store)
			for b.Loop() {
				b.StopTimer()
				st, err := live.Stage(context.Background(), "bench", vectortest.Spec(parity.IDInt))
				if err != nil {
					b.Fatalf("Stage: %v (run make services)", err)
				}
				b.StartTimer()
				if err := tc.write(st.(*pgvector.Store), context.Background(), pts); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				live.DropStage(context.Background(), "bench")
				b.StartTimer()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "points/s")
		})
	}
}
