package qdrant_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	qc "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ragparity/ragparity/adapters/qdrant"
	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

func TestStager(t *testing.T) { vectortest.RunStager(t, harness(t)) }

// collections lists the server's physical collections and its aliases.
func collections(t *testing.T, s *qdrant.Store) (colls []string, aliases map[string]string) {
	t.Helper()
	colls, err := s.Client().ListCollections(t.Context())
	if err != nil {
		t.Fatalf("ListCollections: %v", err)
	}
	sort.Strings(colls)
	al, err := s.Client().ListAliases(t.Context())
	if err != nil {
		t.Fatalf("ListAliases: %v", err)
	}
	aliases = map[string]string{}
	for _, a := range al {
		aliases[a.GetAliasName()] = a.GetCollectionName()
	}
	return colls, aliases
}

// TestPromoteSwitchesAlias checks the physical layout: the live name is an
// alias, the previous collection is deleted, a reused stage name
// alternates between two physical collections.
func TestPromoteSwitchesAlias(t *testing.T) {
	srv := qdranttest.Start(t)
	live := newStore(t, srv, "text", "content")
	name := live.Collection()
	spec := vectortest.Spec(parity.IDInt)
	want := []struct {
		colls  []string
		target string
	}{
		{[]string{name + "__rp_rebuild"}, name + "__rp_rebuild"},
		{[]string{name + "__rp_rebuild__alt"}, name + "__rp_rebuild__alt"},
		{[]string{name + "__rp_rebuild"}, name + "__rp_rebuild"},
	}
	for round, w := range want {
		vectortest.Populate(t, live, "rebuild", spec, vectortest.Points(parity.IDInt, 20, uint64(round)))
		colls, aliases := collections(t, live)
		if fmt.Sprint(colls) != fmt.Sprint(w.colls) || aliases[name] != w.target || len(aliases) != 1 {
			t.Errorf("round %d: collections %v, aliases %v; want collections %v and %s -> %s", round, colls, aliases, w.colls, name, w.target)
		}
	}
	// Drop of the live alias removes the alias and the collection behind it.
	if err := live.Drop(t.Context()); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	if colls, aliases := collections(t, live); len(colls) != 0 || len(aliases) != 0 {
		t.Errorf("after Drop: collections %v, aliases %v; want none", colls, aliases)
	}
}

// TestDropAliasOfForeignCollection: Drop of an alias that points at a
// collection ragparity did not make removes only the alias.
func TestDropAliasOfForeignCollection(t *testing.T) {
	srv := qdranttest.Start(t)
	mine := newStore(t, srv, "text", "content")
	vectortest.Load(t, mine, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 5, 1))
	if err := mine.Client().CreateAlias(t.Context(), "front", mine.Collection()); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	front := open(t, collURL(t, "qdrant://"+srv.Addr(), "front", "text", "content"))
	if err := front.Drop(t.Context()); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	colls, aliases := collections(t, mine)
	if fmt.Sprint(colls) != fmt.Sprint([]string{mine.Collection()}) || len(aliases) != 0 {
		t.Errorf("after Drop of the alias: collections %v, aliases %v; want only %s and no alias", colls, aliases, mine.Collection())
	}
}

// TestPromoteRefusesRealCollection: a live name that is a collection, not
// an alias, is refused with an explanation, and nothing is deleted.
func TestPromoteRefusesRealCollection(t *testing.T) {
	srv := qdranttest.Start(t)
	live := newStore(t, srv, "text", "content")
	pts := vectortest.Points(parity.IDInt, 30, 1)
	vectortest.Load(t, live, vectortest.Spec(parity.IDInt), pts)
	if _, err := live.Stage(t.Context(), "rebuild", vectortest.Spec(parity.IDInt)); err == nil || !strings.Contains(err.Error(), "not an alias") {
		t.Errorf("Stage with a real live collection: error = %v, want one saying the live name must be an alias", err)
	}
	// A stage made behind Stage's back: Promote must still refuse.
	stage := open(t, collURL(t, "qdrant://"+srv.Addr(), live.Collection()+"__rp_rebuild", "text", "content"))
	vectortest.Load(t, stage, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 10, 2))
	t.Cleanup(func() { stage.Drop(context.Background()) })
	err := live.Promote(t.Context(), "rebuild")
	if err == nil || !strings.Contains(err.Error(), "not an alias") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("Promote with a real live collection: error = %v, want one saying the live name must be an alias", err)
	}
	vectortest.SameAs(t, "the real collection after the refused Promote", vectortest.Collect(t, live), pts)
	if got := len(vectortest.Collect(t, stage)); got != 10 {
		t.Errorf("the stage collection holds %d points after the refused Promote, want 10", got)
	}
}

// TestScanPinsAliasTarget: an alias switched in the middle of a scan does
// not change what the scan reads.
func TestScanPinsAliasTarget(t *testing.T) {
	srv := qdranttest.Start(t)
	live := newStore(t, srv, "text", "content", "page_size", "10")
	oldPts := vectortest.Points(parity.IDInt, 100, 1)
	vectortest.Populate(t, live, "first", vectortest.Spec(parity.IDInt), oldPts)
	other := newStore(t, srv, "text", "content")
	vectortest.Load(t, other, vectortest.Spec(parity.IDInt), vectortest.Points(parity.IDInt, 100, 2))
	got := map[string]parity.Point{}
	n := 0
	err := live.Scan(t.Context(), func(p *parity.Point) error {
		if n++; n == 15 {
			// Switch the alias by hand, without deleting the old collection.
			if err := live.Client().UpdateAliases(t.Context(), []*qc.AliasOperations{
				qc.NewAliasDelete(live.Collection()), qc.NewAliasCreate(live.Collection(), other.Collection()),
			}); err != nil {
				return err
			}
		}
		got[p.ID.S] = copyPoint(p)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	vectortest.SameAs(t, "scan across an alias switch", got, oldPts)
}

func copyPoint(p *parity.Point) parity.Point {
	cp := *p
	cp.Vectors = nil
	for _, v := range p.Vectors {
		cp.Vectors = append(cp.Vectors, parity.NamedVector{Name: v.Name, Values: append([]float32(nil), v.Values...)})
	}
	cp.Payload = append([]byte(nil), p.Payload...)
	return cp
}

// TestReadersDuringPromote: scans through the alias while Promote switches
// it see the whole old collection or the whole new one, never a mix; a scan
// whose collection Promote deleted under it fails with ErrReplaced after
// having passed only old points.
func TestReadersDuringPromote(t *testing.T) {
	srv := qdranttest.Start(t)
	live := newStore(t, srv, "text", "content", "page_size", "25")
	spec := vectortest.Spec(parity.IDInt)
	oldPts := vectortest.Points(parity.IDInt, 400, 1)
	newPts := vectortest.Points(parity.IDInt, 600, 2)[200:]
	vectortest.Populate(t, live, "first", spec, oldPts)
	stage := vectortest.OpenStage(t, live, "second", spec)
	if err := stage.Upsert(t.Context(), newPts); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	reader := open(t, collURL(t, "qdrant://"+srv.Addr(), live.Collection(), "text", "content", "page_size", "25"))

	which := func(got map[string]parity.Point, err error) string {
		switch {
		case errors.Is(err, qdrant.ErrReplaced) && subsetOf(got, oldPts):
			return "replaced"
		case errors.Is(err, qdrant.ErrReplaced):
			return "replaced after passing non-old points"
		case err != nil:
			return "error: " + err.Error()
		case vectortest.Diff(got, oldPts) == nil:
			return "old"
		case vectortest.Diff(got, newPts) == nil:
			return "new"
		}
		return fmt.Sprintf("a mix of %d points", len(got))
	}
	scan := func(onFirst func()) (map[string]parity.Point, error) {
		got := map[string]parity.Point{}
		err := reader.Scan(t.Context(), func(p *parity.Point) error {
			if onFirst != nil {
				onFirst()
				onFirst = nil
			}
			got[p.ID.S] = copyPoint(p)
			return nil
		})
		return got, err
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	var scans atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				w := which(scan(nil))
				scans.Add(1)
				mu.Lock()
				seen[w]++
				mu.Unlock()
			}
		}()
	}
	// Let the loops read the old collection for a while.
	waitUntil(t, func() bool { return scans.Load() >= 20 })
	// A scan that Promote overtakes after its first point.
	got, err := scan(func() {
		if err := live.Promote(t.Context(), "second"); err != nil {
			t.Errorf("Promote: %v", err)
		}
	})
	if w := which(got, err); w != "replaced" {
		t.Errorf("scan overtaken by Promote: %s, want an error wrapping ErrReplaced after old points only", w)
	}
	base := scans.Load()
	waitUntil(t, func() bool { return scans.Load() >= base+20 })
	close(stop)
	wg.Wait()
	var kinds []string
	for w, n := range seen {
		kinds = append(kinds, fmt.Sprintf("%s ×%d", w, n))
		if w != "old" && w != "new" && w != "replaced" {
			t.Errorf("a looping scan saw %s", w)
		}
	}
	sort.Strings(kinds)
	t.Logf("looping scans: %s", strings.Join(kinds, ", "))
	if seen["new"] == 0 {
		t.Errorf("no looping scan saw the new collection")
	}
	vectortest.SameAs(t, "scan after Promote", vectortest.Collect(t, reader), newPts)
}

func subsetOf(got map[string]parity.Point, of []parity.Point) bool {
	byID := map[string]parity.Point{}
	for _, p := range of {
		byID[p.ID.S] = p
	}
	for id, g := range got {
		p, ok := byID[id]
		if !ok || vectortest.Diff(map[string]parity.Point{id: g}, []parity.Point{p}) != nil {
			return false
		}
	}
	return true
}

// TestScanReplacedBeforeFirstPage: when the collection the alias named is
// gone by the time the first page is asked for, nothing was read yet and
// Scan resolves the alias again.
func TestScanReplacedBeforeFirstPage(t *testing.T) {
	srv := qdranttest.Start(t)
	live := newStore(t, srv, "text", "content")
	spec := vectortest.Spec(parity.IDInt)
	vectortest.Populate(t, live, "first", spec, vectortest.Points(parity.IDInt, 30, 1))
	newPts := vectortest.Points(parity.IDInt, 40, 2)
	stage := vectortest.OpenStage(t, live, "second", spec)
	if err := stage.Upsert(t.Context(), newPts); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	var once sync.Once
	srv.ScrollHook = func(ctx context.Context, page int) error {
		var err error
		once.Do(func() {
			// The first page of the old collection is answered as if Promote
			// had deleted it just before.
			if perr := live.Promote(ctx, "second"); perr != nil {
				t.Errorf("Promote: %v", perr)
			}
			err = status.Error(codes.NotFound, "Not found: Collection doesn't exist!")
		})
		return err
	}
	vectortest.SameAs(t, "scan", vectortest.Collect(t, live), newPts)
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
