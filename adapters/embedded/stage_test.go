package embedded_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/philippgille/chromem-go"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/adapters/embedded"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
)

func TestStager(t *testing.T) { vectortest.RunStager(t, harness(t)) }

// onDisk lists the chromem-go collections a fresh load of dir finds.
func onDisk(t *testing.T, dir string) []string {
	t.Helper()
	db, err := chromem.NewPersistentDB(dir, false)
	if err != nil {
		t.Fatalf("chromem: %v", err)
	}
	var names []string
	for n := range db.ListCollections() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func readSidecar(t *testing.T, dir, coll string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "ragparity-"+coll+".json"))
	if err != nil {
		t.Fatalf("sidecar: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("sidecar: %v", err)
	}
	return m
}

// TestPromoteOverCreatedCollection: a collection made by Create (a sidecar
// without "physical", as every folder written before staged rebuilds has)
// is replaced; the sidecar then names the stage's collection, the old one
// is gone from disk, and a fresh load of the folder reads the new data.
func TestPromoteOverCreatedCollection(t *testing.T) {
	dir := t.TempDir()
	live := open(t, dir, "chunks").(*embedded.Store)
	spec := vectortest.Spec(parity.IDString)
	vectortest.Load(t, live, spec, vectortest.Points(parity.IDString, 30, 1))
	if _, ok := readSidecar(t, dir, "chunks")["physical"]; ok {
		t.Errorf("a sidecar written by Create has a physical field")
	}
	newPts := vectortest.Points(parity.IDString, 40, 2)
	vectortest.Populate(t, live, "rebuild", spec, newPts)
	if got, want := readSidecar(t, dir, "chunks")["physical"], "chunks__rp_rebuild"; got != want {
		t.Errorf("sidecar physical = %v, want %v", got, want)
	}
	if got, want := onDisk(t, dir), []string{"chunks__rp_rebuild"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("collections on disk = %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "ragparity-chunks__rp_rebuild.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the promoted stage kept its own sidecar (%v)", err)
	}
	// A new process: everything is read from disk again.
	embedded.Forget(dir)
	again := open(t, dir, "chunks")
	vectortest.SameAs(t, "live after reload", vectortest.Collect(t, again), newPts)
	st, err := again.Settings(t.Context())
	if err != nil || st.Hashed["vector.dim"] != vectortest.Dim {
		t.Errorf("Settings after reload = %v, %v; want vector.dim %d", st.Hashed, err, vectortest.Dim)
	}
	// Create over the aliased name is refused; Drop removes the data.
	if err := again.Create(t.Context(), spec); !errors.Is(err, adapters.ErrExists) {
		t.Errorf("Create over a promoted collection: error = %v, want one wrapping ErrExists", err)
	}
	if err := again.Drop(t.Context()); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	if got := onDisk(t, dir); len(got) != 0 {
		t.Errorf("collections on disk after Drop = %v, want none", got)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.json")); len(m) != 0 {
		t.Errorf("sidecars left after Drop: %v", m)
	}
}

// TestStageSurvivesRestart: a stage written by one process is resumed and
// promoted by the next.
func TestStageSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	live := open(t, dir, "chunks").(*embedded.Store)
	spec := vectortest.Spec(parity.IDString)
	pts := vectortest.Points(parity.IDString, 50, 3)
	st, err := live.Stage(t.Context(), "rebuild", spec)
	if err != nil {
		t.Fatalf("Stage: %v", err)
	}
	if err := st.Upsert(t.Context(), pts[:20]); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	embedded.Forget(dir)
	live = open(t, dir, "chunks").(*embedded.Store)
	resumed := vectortest.OpenStage(t, live, "rebuild", spec)
	vectortest.SameAs(t, "resumed stage", vectortest.Collect(t, resumed), pts[:20])
	if err := resumed.Upsert(t.Context(), pts[20:]); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	if err := live.Promote(t.Context(), "rebuild"); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	embedded.Forget(dir)
	vectortest.SameAs(t, "live after reload", vectortest.Collect(t, open(t, dir, "chunks")), pts)
}

// TestScanDuringPromote: a scan running when Promote switches the sidecar
// reads the whole old collection; the next one the whole new collection.
func TestScanDuringPromote(t *testing.T) {
	dir := t.TempDir()
	live := open(t, dir, "chunks").(*embedded.Store)
	spec := vectortest.Spec(parity.IDString)
	oldPts := vectortest.Points(parity.IDString, 300, 1)
	newPts := vectortest.Points(parity.IDString, 400, 2)[100:]
	vectortest.Populate(t, live, "first", spec, oldPts)
	stage := vectortest.OpenStage(t, live, "second", spec)
	if err := stage.Upsert(t.Context(), newPts); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	got := map[string]parity.Point{}
	promoted := false
	err := live.Scan(t.Context(), func(p *parity.Point) error {
		if !promoted {
			promoted = true
			if err := live.Promote(t.Context(), "second"); err != nil {
				return err
			}
		}
		cp := *p
		cp.Vectors = []parity.NamedVector{{Values: append([]float32(nil), p.Vectors[0].Values...)}}
		cp.Payload = append([]byte(nil), p.Payload...)
		got[p.ID.S] = cp
		return nil
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	vectortest.SameAs(t, "scan overtaken by Promote", got, oldPts)
	vectortest.SameAs(t, "scan after Promote", vectortest.Collect(t, live), newPts)
}

// TestForeignCollectionRefused: a chromem-go collection without a sidecar
// is not replaced (nor deleted) by a rebuild.
func TestForeignCollectionRefused(t *testing.T) {
	dir := t.TempDir()
	live := open(t, dir, "chunks").(*embedded.Store)
	spec := vectortest.Spec(parity.IDString)
	vectortest.Load(t, live, spec, vectortest.Points(parity.IDString, 10, 1))
	if err := os.Remove(filepath.Join(dir, "ragparity-chunks.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Stage(t.Context(), "rebuild", spec); err == nil || !strings.Contains(err.Error(), "not created by ragparity") {
		t.Errorf("Stage over a foreign collection: error = %v, want one saying it was not created by ragparity", err)
	}
	if err := live.Promote(t.Context(), "rebuild"); err == nil || !strings.Contains(err.Error(), "not created by ragparity") {
		t.Errorf("Promote over a foreign collection: error = %v, want one saying it was not created by ragparity", err)
	}
	if err := live.DropStage(t.Context(), "rebuild"); err != nil {
		t.Errorf("DropStage next to a foreign collection: %v", err)
	}
	if got := onDisk(t, dir); fmt.Sprint(got) != "[chunks]" {
		t.Errorf("collections on disk = %v, want [chunks]", got)
	}
	t.Cleanup(func() { live.Drop(context.Background()) })
}
