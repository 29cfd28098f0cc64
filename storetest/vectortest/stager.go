package vectortest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// RunStager runs the adapters.Stager conformance tests against one backend:
// every store h.New returns must implement adapters.Stager. The live
// collection a test replaces is itself made by a first Stage and Promote
// (a backend may require the live name to be one it manages, as Qdrant's
// alias does); backends test promoting over a collection made by Create
// in their own tests.
func RunStager(t *testing.T, h Harness) {
	t.Logf("vectortest: running the stager suite on backend %q against %s", h.Name, h.Target)
	kind := h.IDKinds[0]
	spec := Spec(kind)
	// oldPts has ids 0..199, newPts ids 100..299 with other vectors,
	// payloads and texts: after a Promote of newPts no old point may remain
	// and the shared ids must carry the new content.
	oldPts := Points(kind, 200, 31)
	newPts := Points(kind, 300, 32)[100:]

	t.Run("PromoteOntoMissingLive", func(t *testing.T) {
		live, st := newStager(t, h)
		stage := OpenStage(t, st, "rebuild", spec)
		write(t, stage, oldPts)
		if err := live.Scan(ctx(t), func(*parity.Point) error { return nil }); !errors.Is(err, adapters.ErrNotFound) {
			t.Fatalf("Scan of the live name before Promote: error = %v, want one wrapping ErrNotFound (a stage must be invisible)", err)
		}
		if err := st.Promote(ctx(t), "rebuild"); err != nil {
			t.Fatalf("Promote: %v", err)
		}
		SameAs(t, "live after Promote", collect(t, live), oldPts)
		s, err := live.Settings(ctx(t))
		if err != nil {
			t.Fatalf("Settings after Promote: %v", err)
		}
		if got, want := s.Hashed["vector.dim"], any(Dim); got != want {
			t.Errorf("vector.dim after Promote = %v, want %v", got, want)
		}
		if got, want := s.Hashed["vector.metric"], any("cosine"); got != want {
			t.Errorf("vector.metric after Promote = %v, want %v", got, want)
		}
	})

	t.Run("PromoteReplacesLive", func(t *testing.T) {
		live, st := newStager(t, h)
		Populate(t, st, "first", spec, oldPts)
		stage := OpenStage(t, st, "second", spec)
		if got := len(collect(t, stage)); got != 0 {
			t.Fatalf("a new stage holds %d points, want 0", got)
		}
		write(t, stage, newPts)
		// Closing the stage's handle leaves the live store usable.
		if err := stage.Close(); err != nil {
			t.Fatalf("stage Close: %v", err)
		}
		SameAs(t, "live while staged", collect(t, live), oldPts)
		if err := st.Promote(ctx(t), "second"); err != nil {
			t.Fatalf("Promote: %v", err)
		}
		SameAs(t, "live after Promote", collect(t, live), newPts)
		if err := st.Promote(ctx(t), "second"); err == nil {
			t.Errorf("a second Promote of a consumed stage succeeded, want an error")
		}
		SameAs(t, "live after a failed Promote", collect(t, live), newPts)
	})

	t.Run("SameNameTwice", func(t *testing.T) {
		// A rebuild that always uses the same stage name: the stage must
		// start empty although the previous one of that name is now live,
		// and neither writing to it nor dropping it may touch the live data.
		live, st := newStager(t, h)
		Populate(t, st, "rebuild", spec, oldPts)
		if err := st.DropStage(ctx(t), "rebuild"); err != nil {
			t.Fatalf("DropStage of a promoted name: %v", err)
		}
		SameAs(t, "live after DropStage of the promoted name", collect(t, live), oldPts)
		stage := OpenStage(t, st, "rebuild", spec)
		if got := len(collect(t, stage)); got != 0 {
			t.Fatalf("a stage reusing the promoted name holds %d points, want 0", got)
		}
		write(t, stage, newPts)
		SameAs(t, "live while staged", collect(t, live), oldPts)
		if err := st.Promote(ctx(t), "rebuild"); err != nil {
			t.Fatalf("Promote: %v", err)
		}
		SameAs(t, "live after the second Promote", collect(t, live), newPts)
		Populate(t, st, "rebuild", spec, oldPts)
		SameAs(t, "live after the third Promote", collect(t, live), oldPts)
	})

	t.Run("DropStageLeavesLive", func(t *testing.T) {
		live, st := newStager(t, h)
		Populate(t, st, "first", spec, oldPts)
		stage := OpenStage(t, st, "doomed", spec)
		write(t, stage, newPts)
		if err := st.DropStage(ctx(t), "doomed"); err != nil {
			t.Fatalf("DropStage: %v", err)
		}
		SameAs(t, "live after DropStage", collect(t, live), oldPts)
		if err := st.DropStage(ctx(t), "doomed"); err != nil {
			t.Errorf("DropStage of a dropped stage: %v, want nil", err)
		}
		if err := st.DropStage(ctx(t), "never-staged"); err != nil {
			t.Errorf("DropStage of a name never staged: %v, want nil", err)
		}
		if err := st.Promote(ctx(t), "doomed"); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("Promote of a dropped stage: error = %v, want one wrapping ErrNotFound", err)
		}
		SameAs(t, "live after a failed Promote", collect(t, live), oldPts)
	})

	t.Run("ResumeKeepsPoints", func(t *testing.T) {
		live, st := newStager(t, h)
		first := OpenStage(t, st, "resume", spec)
		write(t, first, newPts[:100])
		first.Close()
		again := OpenStage(t, st, "resume", spec)
		SameAs(t, "reopened stage", collect(t, again), newPts[:100])
		// The resumed rebuild rewrites the chunk it was in when it stopped.
		write(t, again, newPts[50:])
		if err := st.Promote(ctx(t), "resume"); err != nil {
			t.Fatalf("Promote: %v", err)
		}
		SameAs(t, "live after Promote", collect(t, live), newPts)
	})

	t.Run("PromoteNeverStaged", func(t *testing.T) {
		live, st := newStager(t, h)
		if err := st.Promote(ctx(t), "never"); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("Promote of a name never staged (no live collection): error = %v, want one wrapping ErrNotFound", err)
		}
		if _, err := live.Settings(ctx(t)); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("Settings after a failed Promote onto a missing live name: error = %v, want one wrapping ErrNotFound", err)
		}
		Populate(t, st, "first", spec, oldPts)
		if err := st.Promote(ctx(t), "never"); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("Promote of a name never staged: error = %v, want one wrapping ErrNotFound", err)
		}
		SameAs(t, "live after a failed Promote", collect(t, live), oldPts)
	})
}

// newStager returns a fresh store of the harness and its Stager.
func newStager(t *testing.T, h Harness) (adapters.VectorStore, adapters.Stager) {
	t.Helper()
	s := h.New(t)
	st, ok := s.(adapters.Stager)
	if !ok {
		t.Fatalf("backend %s: %T does not implement adapters.Stager", h.Name, s)
	}
	return s, st
}

// OpenStage opens stage name and registers its DropStage (and Close) with
// t.Cleanup.
func OpenStage(t *testing.T, st adapters.Stager, name string, spec adapters.CollectionSpec) adapters.VectorStore {
	t.Helper()
	s, err := st.Stage(ctx(t), name, spec)
	if err != nil {
		t.Fatalf("Stage(%q): %v", name, err)
	}
	t.Cleanup(func() {
		s.Close()
		st.DropStage(context.Background(), name)
	})
	return s
}

// Populate stages pts under name and promotes them: the live collection
// then holds exactly pts.
func Populate(t *testing.T, st adapters.Stager, name string, spec adapters.CollectionSpec, pts []parity.Point) {
	t.Helper()
	write(t, OpenStage(t, st, name, spec), pts)
	if err := st.Promote(ctx(t), name); err != nil {
		t.Fatalf("Promote(%q): %v", name, err)
	}
}

func write(t *testing.T, s adapters.VectorWriter, pts []parity.Point) {
	t.Helper()
	for i := 0; i < len(pts); i += 64 {
		if err := s.Upsert(ctx(t), pts[i:min(i+64, len(pts))]); err != nil {
			t.Fatalf("Upsert: %v", err)
		}
	}
}

// Collect scans r into a map by id, copying each point.
func Collect(t *testing.T, r adapters.VectorReader) map[string]parity.Point { return collect(t, r) }

// SameAs checks that got holds exactly the points of want: the same ids,
// vectors (within 1e-6), canonical payloads and texts.
func SameAs(t *testing.T, what string, got map[string]parity.Point, want []parity.Point) {
	t.Helper()
	if err := Diff(got, want); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Diff says how got differs from exactly the points of want (nil when it
// does not).
func Diff(got map[string]parity.Point, want []parity.Point) error {
	ids := make(map[string]bool, len(want))
	for _, p := range want {
		ids[p.ID.S] = true
		g, ok := got[p.ID.S]
		if !ok {
			return fmt.Errorf("id %s missing (%d points, want %d)", p.ID.S, len(got), len(want))
		}
		if len(g.Vectors) != len(p.Vectors) {
			return fmt.Errorf("id %s: %d vectors, want %d", p.ID.S, len(g.Vectors), len(p.Vectors))
		}
		for i, v := range p.Vectors {
			gv := g.Vectors[i]
			if gv.Name != v.Name || len(gv.Values) != len(v.Values) {
				return fmt.Errorf("id %s: vector %q of %d components, want %q of %d", p.ID.S, gv.Name, len(gv.Values), v.Name, len(v.Values))
			}
			for j, x := range v.Values {
				if math.Abs(float64(x-gv.Values[j])) > 1e-6 {
					return fmt.Errorf("id %s: vector component %d = %v, want %v (old content?)", p.ID.S, j, gv.Values[j], x)
				}
			}
		}
		wp, _ := parity.CanonicalPayload(p.Payload)
		gp, err := parity.CanonicalPayload(g.Payload)
		if err != nil || string(gp) != string(wp) {
			return fmt.Errorf("id %s: payload = %s (%v), want %s", p.ID.S, g.Payload, err, wp)
		}
		if g.HasText != p.HasText || g.Text != p.Text {
			return fmt.Errorf("id %s: text = %q (has %v), want %q", p.ID.S, g.Text, g.HasText, p.Text)
		}
	}
	for id := range got {
		if !ids[id] {
			return fmt.Errorf("id %s should not be there (%d points, want %d)", id, len(got), len(want))
		}
	}
	return nil
}
