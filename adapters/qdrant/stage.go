package qdrant

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"

	"github.com/ragparity/ragparity/adapters"
)

// Staged rebuilds (adapters.Stager).
//
// The live name in the URL is an alias for a physical collection. A stage
// is the physical collection <alias>__rp_<name>, written with batched
// upserts; Promote switches the alias to it in one UpdateAliases call
// (delete + create, which Qdrant applies atomically) and then deletes the
// collection the alias pointed at before. Qdrant cannot rename a
// collection, so after a Promote <alias>__rp_<name> stays live; the next
// stage of the same name is then <alias>__rp_<name>__alt (and the one
// after that <alias>__rp_<name> again). A live name that is a real
// collection, not an alias, is refused by Stage and Promote: switching it
// would mean deleting it.

var _ adapters.Stager = (*Store)(nil)

// ErrReplaced is wrapped by Scan when the collection behind the alias it
// was reading was deleted during the scan (a Promote replaced it). The
// points already passed to fn were all from that collection; scan again
// to read the new one.
var ErrReplaced = errors.New("the collection was replaced during the scan (a rebuild was promoted); scan again")

const (
	stageInfix = "__rp_"
	altSuffix  = "__alt"
)

func checkStageName(name string) error { return adapters.CheckStageName("qdrant", name) }

// candidates are the two physical collections stage name can use.
func (s *Store) candidates(name string) [2]string {
	p := s.coll + stageInfix + name
	return [2]string{p, p + altSuffix}
}

// layout is what the server says about the live name.
type layout struct {
	colls  map[string]bool // physical collections
	target string          // collection the live alias points at ("" if none)
}

func (s *Store) readLayout(ctx context.Context, op string) (layout, error) {
	l := layout{colls: map[string]bool{}}
	cl, err := s.client.GetCollectionsClient().List(ctx, &qdrant.ListCollectionsRequest{})
	if err != nil {
		return l, s.fail(ctx, op, err)
	}
	for _, c := range cl.GetCollections() {
		l.colls[c.GetName()] = true
	}
	al, err := s.client.GetCollectionsClient().ListAliases(ctx, &qdrant.ListAliasesRequest{})
	if err != nil {
		return l, s.fail(ctx, op, err)
	}
	for _, a := range al.GetAliases() {
		if a.GetAliasName() == s.coll {
			l.target = a.GetCollectionName()
		}
	}
	return l, nil
}

// notAlias refuses a live name that is a real collection.
func (s *Store) notAlias(l layout, op string) error {
	if !l.colls[s.coll] {
		return nil
	}
	return fmt.Errorf("qdrant: %s %q: %q is a collection, not an alias; a rebuild switches the live name, which must be an alias, to a new collection and deletes the old one, so nothing was changed. Copy the data into another collection and make %q an alias of it first", op, s.coll, s.coll, s.coll)
}

// stageOf returns the existing stage among the candidates: a collection
// that exists and is not the live one ("" when none).
func (s *Store) stageOf(l layout, name string) (string, error) {
	var found []string
	for _, c := range s.candidates(name) {
		if l.colls[c] && c != l.target {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("qdrant: stage %q of %q: both %q and %q exist and neither is live; DropStage and stage again", name, s.coll, found[0], found[1])
}

// sub returns a store on another collection of the same server, sharing
// s's connection.
func (s *Store) sub(coll string) *Store {
	return &Store{client: s.client, addr: s.addr, coll: coll, textKey: s.textKey, pageSize: s.pageSize, vectors: s.vectors, borrowed: true}
}

// Stage opens the stage called name, creating its collection for spec when
// absent; reopening keeps the points written so far. The returned store's
// Close leaves s's connection open.
func (s *Store) Stage(ctx context.Context, name string, spec adapters.CollectionSpec) (adapters.VectorStore, error) {
	if err := checkStageName(name); err != nil {
		return nil, err
	}
	l, err := s.readLayout(ctx, "stage")
	if err != nil {
		return nil, err
	}
	if err := s.notAlias(l, "stage"); err != nil {
		return nil, err
	}
	existing, err := s.stageOf(l, name)
	if err != nil {
		return nil, err
	}
	if existing != "" {
		st := s.sub(existing)
		if err := st.checkSpec(ctx, spec); err != nil {
			return nil, err
		}
		return st, nil
	}
	c := s.candidates(name)
	phys := c[0]
	if phys == l.target {
		phys = c[1]
	}
	st := s.sub(phys)
	if err := st.Create(ctx, spec); err != nil {
		return nil, err
	}
	return st, nil
}

// checkSpec refuses to resume a stage whose vectors differ from spec.
func (s *Store) checkSpec(ctx context.Context, spec adapters.CollectionSpec) error {
	st, err := s.Settings(ctx)
	if err != nil {
		return err
	}
	for name, dim := range spec.Vectors {
		key := "vector.dim"
		if name != "" {
			key = "vector." + name + ".dim"
		}
		if got := st.Hashed[key]; got != dim {
			return fmt.Errorf("qdrant: stage collection %q exists with %s = %v, the spec asks for %d: DropStage it first", s.coll, key, got, dim)
		}
	}
	return nil
}

// Promote points the live alias at the stage's collection in one
// UpdateAliases call (creating the alias when the live name does not exist
// yet), then deletes the collection it pointed at before. A stage that
// does not exist is an error wrapping adapters.ErrNotFound.
func (s *Store) Promote(ctx context.Context, name string) error {
	if err := checkStageName(name); err != nil {
		return err
	}
	l, err := s.readLayout(ctx, "promote into")
	if err != nil {
		return err
	}
	if err := s.notAlias(l, "promote into"); err != nil {
		return err
	}
	stage, err := s.stageOf(l, name)
	if err != nil {
		return err
	}
	if stage == "" {
		return fmt.Errorf("qdrant: promote into %q: no stage %q (collection %q): %w", s.coll, name, s.candidates(name)[0], adapters.ErrNotFound)
	}
	var actions []*qdrant.AliasOperations
	if l.target != "" {
		actions = append(actions, qdrant.NewAliasDelete(s.coll))
	}
	actions = append(actions, qdrant.NewAliasCreate(s.coll, stage))
	if _, err := s.client.GetCollectionsClient().UpdateAliases(ctx, &qdrant.ChangeAliases{Actions: actions}); err != nil {
		return s.fail(ctx, "promote (switch alias of)", err)
	}
	if l.target == "" {
		return nil
	}
	if _, err := s.client.GetCollectionsClient().Delete(ctx, &qdrant.DeleteCollection{CollectionName: l.target}); err != nil && !errIs(err, codes.NotFound) {
		return fmt.Errorf("qdrant: promote into %q: the alias now points at %q, but deleting the previous collection %q failed (delete it by hand): %w", s.coll, stage, l.target, s.fail(ctx, "promote", err))
	}
	return nil
}

// DropStage deletes the stage's collection; a missing one is not an error.
// It never deletes the collection the live alias points at.
func (s *Store) DropStage(ctx context.Context, name string) error {
	if err := checkStageName(name); err != nil {
		return err
	}
	l, err := s.readLayout(ctx, "drop stage of")
	if err != nil {
		return err
	}
	for _, c := range s.candidates(name) {
		if !l.colls[c] || c == l.target {
			continue
		}
		if _, err := s.client.GetCollectionsClient().Delete(ctx, &qdrant.DeleteCollection{CollectionName: c}); err != nil && !errIs(err, codes.NotFound) {
			return s.sub(c).fail(ctx, "drop stage", err)
		}
	}
	return nil
}

// aliasTarget returns the collection s.coll is an alias of ("" when it is
// not an alias, or the server would not list aliases).
func (s *Store) aliasTarget(ctx context.Context) string {
	al, err := s.client.GetCollectionsClient().ListAliases(ctx, &qdrant.ListAliasesRequest{})
	if err != nil {
		return ""
	}
	for _, a := range al.GetAliases() {
		if a.GetAliasName() == s.coll {
			return a.GetCollectionName()
		}
	}
	return ""
}

// Stages lists the stages of the live alias (collections
// <collection>__rp_<name>[__alt] other than the one the alias points at)
// with their point counts.
func (s *Store) Stages(ctx context.Context) ([]adapters.StageInfo, error) {
	l, err := s.readLayout(ctx, "list stages of")
	if err != nil {
		return nil, err
	}
	prefix := s.coll + stageInfix
	out := []adapters.StageInfo{}
	for c := range l.colls {
		if c == l.target || !strings.HasPrefix(c, prefix) {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(c, prefix), altSuffix)
		if checkStageName(name) != nil {
			continue
		}
		info, err := s.client.GetCollectionsClient().Get(ctx, &qdrant.GetCollectionInfoRequest{CollectionName: c})
		if err != nil {
			if errIs(err, codes.NotFound) {
				continue
			}
			return nil, s.sub(c).fail(ctx, "list stages", err)
		}
		out = append(out, adapters.StageInfo{Name: name, Points: int64(info.GetResult().GetPointsCount())})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

var _ adapters.StageLister = (*Store)(nil)
