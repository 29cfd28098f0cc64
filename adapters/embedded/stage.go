package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/ragparity/ragparity/adapters"
)

// Staged rebuilds (adapters.Stager).
//
// chromem-go cannot rename a collection, so the live collection's sidecar
// is an alias: its "physical" field names the chromem-go collection that
// holds the data, and every read resolves it at call time. A stage is the
// chromem-go collection <collection>__rp_<name> with its own sidecar;
// Promote atomically rewrites the live sidecar to point at it (temporary
// file + rename), removes the stage's sidecar and deletes the previously
// live chromem-go collection. After a Promote <collection>__rp_<name> holds
// the live data, so the next stage of the same name is
// <collection>__rp_<name>__alt (and the one after that the first again).
//
// A scan already running when Promote switches the sidecar keeps reading
// the chromem-go collection it resolved, which chromem-go keeps in memory
// until the scan drops it: it sees the whole old collection.

// stageMu serialises Stage, Promote and DropStage in the process (a folder
// is loaded by one process: see openDB).
var stageMu sync.Mutex

const (
	stageInfix = "__rp_"
	altSuffix  = "__alt"
)

// errForeign marks a live collection ragparity did not create.
var errForeign = errors.New("not created by ragparity")

func checkStageName(name string) error { return adapters.CheckStageName("embedded", name) }

// candidates are the two chromem-go collections stage name can use.
func (s *Store) candidates(name string) [2]string {
	p := s.collection + stageInfix + name
	return [2]string{p, p + altSuffix}
}

func (s *Store) sub(coll string) *Store {
	return &Store{path: s.path, collection: coll, text: s.text, db: s.db}
}

// livePhysical returns the chromem-go collection holding the live data (""
// when there is no live collection). A collection ragparity did not create
// (no sidecar) is an error: a rebuild would delete it.
func (s *Store) livePhysical() (string, error) {
	sc, err := s.readSidecar(s.collection)
	if errors.Is(err, os.ErrNotExist) {
		if s.db.GetCollection(s.collection, nil) != nil {
			return "", fmt.Errorf("embedded: collection %q in %s: %w (no %s); a rebuild would replace and delete it, so nothing was changed", s.collection, s.path, errForeign, s.sidecarPath())
		}
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if p := sc.physical(s.collection); s.db.GetCollection(p, nil) != nil {
		return p, nil
	}
	return "", nil
}

// isStage reports whether coll is a stage: a chromem-go collection with
// its own sidecar.
func (s *Store) isStage(coll string) bool {
	if s.db.GetCollection(coll, nil) == nil {
		return false
	}
	_, err := s.readSidecar(coll)
	return err == nil
}

// stageOf returns the existing stage of name ("" when none).
func (s *Store) stageOf(name, live string) (string, error) {
	var found []string
	for _, c := range s.candidates(name) {
		if c != live && s.isStage(c) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("embedded: stage %q of %q: both %q and %q exist; DropStage and stage again", name, s.collection, found[0], found[1])
}

// Stage opens the stage called name, creating it for spec when absent;
// reopening keeps the points written so far.
func (s *Store) Stage(ctx context.Context, name string, spec adapters.CollectionSpec) (adapters.VectorStore, error) {
	if err := checkStageName(name); err != nil {
		return nil, err
	}
	stageMu.Lock()
	defer stageMu.Unlock()
	live, err := s.livePhysical()
	if err != nil {
		return nil, err
	}
	existing, err := s.stageOf(name, live)
	if err != nil {
		return nil, err
	}
	if existing != "" {
		sc, err := s.readSidecar(existing)
		if err != nil {
			return nil, err
		}
		if dim := spec.Vectors[""]; len(spec.Vectors) != 1 || dim != sc.Dim {
			return nil, fmt.Errorf("embedded: stage %q of %q exists with dimension %d, the spec asks for %v: DropStage it first", name, s.collection, sc.Dim, spec.Vectors)
		}
		return s.sub(existing), nil
	}
	c := s.candidates(name)
	phys := c[0]
	if phys == live {
		phys = c[1]
	}
	// Remains of an interrupted Promote or DropStage (a collection without
	// its sidecar, or the other way round) are not a stage: clear them.
	if err := s.db.DeleteCollection(phys); err != nil {
		return nil, fmt.Errorf("embedded: stage %q: %w", phys, err)
	}
	if err := os.Remove(s.sidecarPathOf(phys)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("embedded: stage %q: %w", phys, err)
	}
	st := s.sub(phys)
	if err := st.Create(ctx, spec); err != nil {
		return nil, err
	}
	return st, nil
}

// Promote points the live sidecar at the stage's chromem-go collection
// (creating the sidecar when the collection did not exist yet) and deletes
// the previously live one. A stage that does not exist is an error wrapping
// adapters.ErrNotFound.
func (s *Store) Promote(_ context.Context, name string) error {
	if err := checkStageName(name); err != nil {
		return err
	}
	stageMu.Lock()
	defer stageMu.Unlock()
	live, err := s.livePhysical()
	if err != nil {
		return err
	}
	stage, err := s.stageOf(name, live)
	if err != nil {
		return err
	}
	if stage == "" {
		return fmt.Errorf("embedded: promote into %q: no stage %q in %s: %w", s.collection, name, s.path, adapters.ErrNotFound)
	}
	sc, err := s.readSidecar(stage)
	if err != nil {
		return err
	}
	sc.Physical = stage
	// The switch: one rename.
	if err := s.writeSidecar(s.collection, sc); err != nil {
		return fmt.Errorf("embedded: promote into %q: %w", s.collection, err)
	}
	if err := os.Remove(s.sidecarPathOf(stage)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("embedded: promote into %q: the stage is live, but removing its own sidecar failed: %w", s.collection, err)
	}
	if live == "" || live == stage {
		return nil
	}
	if err := s.db.DeleteCollection(live); err != nil {
		return fmt.Errorf("embedded: promote into %q: the stage is live, but deleting the previous data %q failed: %w", s.collection, live, err)
	}
	if live != s.collection {
		if err := os.Remove(s.sidecarPathOf(live)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("embedded: promote into %q: %w", s.collection, err)
		}
	}
	return nil
}

// DropStage deletes the stage; a missing one is not an error. It never
// deletes the live data.
func (s *Store) DropStage(_ context.Context, name string) error {
	if err := checkStageName(name); err != nil {
		return err
	}
	stageMu.Lock()
	defer stageMu.Unlock()
	live, err := s.livePhysical()
	if err != nil && !errors.Is(err, errForeign) {
		return err
	}
	for _, c := range s.candidates(name) {
		if c == live {
			continue
		}
		if err := s.db.DeleteCollection(c); err != nil {
			return fmt.Errorf("embedded: drop stage %q: %w", c, err)
		}
		if err := os.Remove(s.sidecarPathOf(c)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("embedded: drop stage %q: %w", c, err)
		}
	}
	return nil
}

// Stages lists the stages of the live collection (chromem-go collections
// <collection>__rp_<name>[__alt] with their own sidecar, other than the live
// one) with their point counts.
func (s *Store) Stages(_ context.Context) ([]adapters.StageInfo, error) {
	stageMu.Lock()
	defer stageMu.Unlock()
	live, err := s.livePhysical()
	if err != nil {
		return nil, err
	}
	prefix := s.collection + stageInfix
	out := []adapters.StageInfo{}
	for coll, c := range s.db.ListCollections() {
		if coll == live || !strings.HasPrefix(coll, prefix) || !s.isStage(coll) {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(coll, prefix), altSuffix)
		if checkStageName(name) != nil {
			continue
		}
		out = append(out, adapters.StageInfo{Name: name, Points: int64(c.Count())})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

var _ adapters.StageLister = (*Store)(nil)
