package replicate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/embed"
	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/verifier"
)

// Target is one region to rebuild.
type Target struct {
	Region string
	// Store is the region's live store; it must implement adapters.Stager.
	Store adapters.VectorStore
	Fence fence.Fence
	// Declared are the settings hashed into the region's digest besides
	// what the store reports (model_tag and analyzer included).
	Declared map[string]any
	Analyzer Analyzer
}

// Options of a rebuild.
type Options struct {
	Source   Source
	Embedder embed.Embedder
	Spec     adapters.CollectionSpec
	// RunID names the staged collections and scopes the fence: replaying
	// the same run writes nothing twice. Derived from the content
	// (DeriveRunID) when "".
	RunID string
	// Owner identifies this writer in pending fence claims and in the
	// region leases; a resumed run reuses the interrupted run's owner to
	// take over its claims and its leases.
	Owner string
	// Host names this machine in the region lease (for the message a
	// second rebuild prints).
	Host string
	// Wait makes a rebuild whose region is being rebuilt by another run
	// wait for it instead of failing with a *LeaseError.
	Wait bool
	// Lease bounds how long a dead writer's pending claim (or region
	// lease) blocks others; TTL is how long a done claim is kept
	// (failover_window + 24 h); Window is the dedupe counting window
	// (failover_window).
	Lease, TTL, Window time.Duration
	// BatchDocs documents are claimed, embedded and written together.
	BatchDocs int
	Promote   bool
	Buckets   int
	// SpillDir holds the digests compared when a stage differs from what
	// was written (default os.TempDir()).
	SpillDir string
	Progress func(docs int)
	// OnBatch is called after each written batch (tests use it).
	OnBatch func(docs int)
	// BeforeCheck is called once every stage is written, before the stages
	// are checked against the expected content (tests use it).
	BeforeCheck func()
}

// Result is the rebuild summary (the --json document).
type Result struct {
	// Regions are the target regions, in the order given (not printed:
	// Written and IndexHash name them).
	Regions   []string                    `json:"-"`
	RunID     string                      `json:"run_id"`
	Documents int                         `json:"documents"`
	Chunks    int                         `json:"chunks"`
	Embedded  int64                       `json:"embedded"`
	Written   map[string]int              `json:"written"`
	Deduped   int                         `json:"deduped"`
	Dedupe    map[string]fence.DedupeStat `json:"dedupe"`
	IndexHash map[string]string           `json:"index_hash"`
	// ExpectedRoot is, per region, the content root the source says the
	// region must have; the stage was checked against it.
	ExpectedRoot map[string]string `json:"expected_root"`
	// Restaged names the regions whose stage held rows the source no longer
	// has (or whose stage was gone): it was staged again from scratch.
	Restaged []string `json:"restaged,omitempty"`
	// Gone names the regions where the run was promoted before but whose
	// store holds no index now (dropped or wiped since): the fence skips
	// them, so nothing is written until a new run id is given.
	Gone        []string     `json:"gone,omitempty"`
	StaleStages []StageEntry `json:"stale_stages,omitempty"`
	Agree       bool         `json:"agree"`
	Promoted    bool         `json:"promoted"`
	Note        string       `json:"note,omitempty"`
	ElapsedMS   int64        `json:"elapsed_ms"`
}

// NewOwner returns a random writer identity.
func NewOwner() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// DeriveRunID names a run from its content: the source manifest (every
// source id and revision), and per region the analyzer and the declared
// settings (model tag included), and the collection spec. Replaying the
// same content lands on the same stage and fence keys; changed content is
// a new run.
func DeriveRunID(ctx context.Context, src Source, model string, spec adapters.CollectionSpec, targets []Target) (string, error) {
	manifest, _, err := ManifestDigest(ctx, src)
	if err != nil {
		return "", err
	}
	parts := []any{"run/v2", manifest, model, spec}
	for _, t := range targets {
		parts = append(parts, t.Analyzer.Version(), t.Declared)
	}
	b, err := json.Marshal(parts)
	if err != nil {
		return "", err
	}
	return "r" + hex.EncodeToString(parity.SHA256(b)[:6]), nil
}

type tstate struct {
	t         Target
	stager    adapters.Stager
	stage     adapters.VectorStore
	settingsD string
	partition string
	gen       string
	skip      bool // run already promoted in this region
	gone      bool // ... and its store holds no index now
	stat      fence.DedupeStat
	dups      int
	written   int
	expected  *verifier.Expected
	expSpill  *verifier.Spill
	indexHash string
	checkErr  error
}

// LeaseError says a region is being rebuilt by another run.
type LeaseError struct {
	Region string
	Holder fence.Holder
}

func (e *LeaseError) Error() string {
	run, host := e.Holder.RunID, e.Holder.Host
	if run == "" {
		run = "?"
	}
	if host == "" {
		host = "?"
	}
	return fmt.Sprintf("region %s is being rebuilt by run %s on host %s since %s", e.Region, run, host, e.Holder.Since.UTC().Format(time.RFC3339))
}

// MismatchError says a stage does not hold what the source says it must:
// nothing was promoted.
type MismatchError struct {
	Region        string
	Points, Want  int64
	Missing       []string
	Extra         []string
	Changed       []verifier.Changed
	Got, Expected string
}

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "region %s: the stage does not hold the content the source says it must (%d points, want %d; content root %s, want %s)", e.Region, e.Points, e.Want, parity.ShortHex(e.Got), parity.ShortHex(e.Expected))
	list := func(what string, ids []string) {
		if len(ids) == 0 {
			return
		}
		shown := ids[:min(len(ids), 10)]
		fmt.Fprintf(&b, "; %s ids: %s", what, strings.Join(shown, ", "))
		if len(ids) > len(shown) {
			fmt.Fprintf(&b, " and %d more", len(ids)-len(shown))
		}
	}
	list("missing", e.Missing)
	list("extra", e.Extra)
	var ch []string
	for _, c := range e.Changed {
		ch = append(ch, c.ID+" ("+strings.Join(c.Fields, "+")+")")
	}
	list("changed", ch)
	return b.String()
}

func leaseName(region string) string { return "rebuild:" + region }
func stageNote(region, run string) string {
	return "stage:" + region + "/" + run
}

// stageInfo is what the fence remembers of a stage (fence note).
type stageInfo struct {
	Gen     string    `json:"gen"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
	// Checked is set once the stage was found to hold exactly the expected
	// content, with that content's root and point count.
	Checked bool   `json:"checked"`
	Root    string `json:"root,omitempty"`
	Points  int64  `json:"points,omitempty"`
}

// Rebuild writes every document of the source into a staged collection in
// every target, fenced, checks each stage against the content the source
// says it must hold, and (with Promote) swaps the stages in when every
// check passed and every region's INDEX_HASH agrees. One rebuild per region
// at a time: a region leased by another run fails with a *LeaseError (or
// waits, with Wait).
func Rebuild(ctx context.Context, targets []Target, o Options) (*Result, error) {
	start := time.Now()
	if o.BatchDocs <= 0 {
		o.BatchDocs = 64
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.TTL <= 0 {
		o.TTL = 25 * time.Hour
	}
	if o.Window <= 0 {
		o.Window = time.Hour
	}
	if o.Owner == "" {
		o.Owner = NewOwner()
	}
	if len(targets) == 0 {
		return nil, errors.New("rebuild: no target regions")
	}
	if o.RunID == "" {
		id, err := DeriveRunID(ctx, o.Source, o.Embedder.ModelTag(), o.Spec, targets)
		if err != nil {
			return nil, fmt.Errorf("rebuild: %w", err)
		}
		o.RunID = id
	}
	if err := CheckTargets(targets); err != nil {
		return nil, err
	}
	ctx, unlease, err := leaseRegions(ctx, targets, o)
	if err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	defer unlease()

	counter := embed.NewCounting(o.Embedder)
	res := &Result{RunID: o.RunID, Written: map[string]int{}, Dedupe: map[string]fence.DedupeStat{}, IndexHash: map[string]string{}, ExpectedRoot: map[string]string{}}
	for _, t := range targets {
		res.Regions = append(res.Regions, t.Region)
	}
	ts := make([]*tstate, len(targets))
	defer func() {
		for _, st := range ts {
			if st != nil && st.expSpill != nil {
				st.expSpill.Close()
			}
		}
	}()
	for i, t := range targets {
		st := &tstate{t: t}
		ts[i] = st
		stager, ok := t.Store.(adapters.Stager)
		if !ok {
			return nil, fmt.Errorf("rebuild: region %s: its store cannot stage writes", t.Region)
		}
		st.stager = stager
		state, err := t.Fence.Claim(ctx, runKey(o.RunID, t.Region), o.Owner, o.Lease)
		if err != nil {
			return nil, fmt.Errorf("rebuild: region %s: %w", t.Region, err)
		}
		if state == fence.AlreadyDone {
			st.skip = true
			// The fence remembers the run, not the index: a store wiped
			// since would stay empty without a word.
			if _, err := t.Store.Settings(ctx); errors.Is(err, adapters.ErrNotFound) {
				st.gone = true
			}
			continue
		}
		// The fence's index_hash component names the index being built:
		// the declared settings and the collection spec (stable across
		// resumes, unlike the half-built stage's own settings).
		fs := map[string]any{"spec": o.Spec}
		for k, v := range t.Declared {
			fs[k] = v
		}
		sd, err := parity.SettingsDigest(fs)
		if err != nil {
			return nil, err
		}
		st.settingsD = sd.Hex()
		stages, listed, err := listStages(ctx, stager)
		if err != nil {
			return nil, fmt.Errorf("rebuild: region %s: %w", t.Region, err)
		}
		// A store that cannot list its stages keeps the fence's records
		// (the check before promote still catches a lost stage).
		exists := !listed
		for _, s := range stages {
			if s.Name == o.RunID {
				exists = true
			} else {
				res.StaleStages = append(res.StaleStages, StageEntry{Region: t.Region, RunID: s.Name, Points: s.Points})
			}
		}
		if err := st.open(ctx, o, !exists); err != nil {
			return nil, fmt.Errorf("rebuild: region %s: %w", t.Region, err)
		}
		if st.expSpill, err = verifier.NewSpill(o.SpillDir, o.Buckets); err != nil {
			return nil, err
		}
		if st.expected, err = verifier.NewExpected(verifier.Options{Buckets: o.Buckets, Spill: st.expSpill}); err != nil {
			return nil, err
		}
	}

	// Pass 1: claim, chunk (streaming), embed each chunk once, note what
	// every region must hold, write what the fence says is not written.
	w := newWriter(ctx, ts, o, counter, true, nil)
	docs := 0
	err = o.Source.Each(ctx, func(d Document) error {
		docs++
		if err := w.add(d); err != nil {
			return err
		}
		if docs%o.BatchDocs == 0 && o.Progress != nil {
			o.Progress(docs)
		}
		return nil
	})
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		return nil, fmt.Errorf("rebuild: %w (the live index is untouched)", err)
	}
	res.Documents = docs
	res.Chunks = w.chunks

	// Pass 2: wait for claims other writers hold (their lease runs out if
	// they died), so that every stage is complete before it is checked.
	if err := awaitOthers(ctx, ts, o, counter, nil); err != nil {
		return nil, fmt.Errorf("rebuild: %w (the live index is untouched)", err)
	}
	if o.BeforeCheck != nil {
		o.BeforeCheck()
	}

	// Check every stage against the expected content; a stage holding rows
	// the source no longer has is staged again from scratch.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, st := range ts {
		if st.skip {
			continue
		}
		wg.Add(1)
		go func(st *tstate) {
			defer wg.Done()
			extra, err := st.check(ctx, o)
			if err == nil && extra {
				mu.Lock()
				res.Restaged = append(res.Restaged, st.t.Region)
				mu.Unlock()
				if err = st.restage(ctx, o, ts, counter); err == nil {
					_, err = st.check(ctx, o)
				}
			}
			st.checkErr = err
		}(st)
	}
	wg.Wait()
	sort.Strings(res.Restaged)
	res.Embedded = counter.Texts()
	res.Agree = true
	first := ""
	var errs []error
	for _, st := range ts {
		res.Written[st.t.Region] = st.written
		res.Dedupe[st.t.Region] = st.stat
		res.Deduped += st.stat.Hits
		if st.skip {
			res.Note = "run " + o.RunID + " was already promoted in some regions: nothing written there (pass a new --run-id to rebuild again)"
			if st.gone {
				res.Gone = append(res.Gone, st.t.Region)
			}
			continue
		}
		if st.checkErr != nil {
			errs = append(errs, st.checkErr)
			continue
		}
		res.IndexHash[st.t.Region] = st.indexHash
		if first == "" {
			first = st.indexHash
		} else if st.indexHash != first {
			res.Agree = false
		}
	}
	for _, st := range ts {
		if st.skip {
			continue
		}
		if err := st.t.Fence.MarkWarm(ctx, st.stat); err != nil {
			return nil, fmt.Errorf("rebuild: region %s: %w", st.t.Region, err)
		}
		c := fence.Counts{Hits: int64(st.stat.Hits), Misses: int64(st.stat.Misses), Duplicates: int64(st.dups)}
		if err := st.t.Fence.Count(ctx, st.t.Region, o.Window, c); err != nil {
			return nil, fmt.Errorf("rebuild: region %s: %w", st.t.Region, err)
		}
	}
	if len(errs) > 0 {
		res.Agree = false
		res.ElapsedMS = time.Since(start).Milliseconds()
		return res, fmt.Errorf("rebuild: %w: nothing promoted, the live indexes are untouched", errors.Join(errs...))
	}
	if o.Promote {
		if !res.Agree {
			res.ElapsedMS = time.Since(start).Milliseconds()
			return res, fmt.Errorf("rebuild: the rebuilt regions' INDEX_HASHes disagree (%v): nothing promoted, the live indexes are untouched", res.IndexHash)
		}
		for _, st := range ts {
			if st.skip {
				continue
			}
			if err := context.Cause(ctx); err != nil {
				return nil, fmt.Errorf("rebuild: region %s: %w", st.t.Region, err)
			}
			if err := st.stager.Promote(ctx, o.RunID); err != nil {
				return nil, fmt.Errorf("rebuild: region %s: promote: %w", st.t.Region, err)
			}
			if err := st.t.Fence.Done(ctx, runKey(o.RunID, st.t.Region), o.TTL); err != nil {
				return nil, fmt.Errorf("rebuild: region %s: %w", st.t.Region, err)
			}
			res.Promoted = true
		}
	}
	res.ElapsedMS = time.Since(start).Milliseconds()
	if len(res.Gone) > 0 {
		res.Note = fmt.Sprintf("run %s was promoted before in %s, whose store holds no index now: nothing written there (pass a new --run-id to rebuild it)", o.RunID, strings.Join(res.Gone, ", "))
		var errs []error
		for _, r := range res.Gone {
			errs = append(errs, fmt.Errorf("rebuild: region %s: run %s was promoted there before, but its store holds no index now (dropped or wiped since); the fence remembers the run, so nothing was written: pass a new --run-id to rebuild it", r, o.RunID))
		}
		return res, errors.Join(errs...)
	}
	return res, nil
}

// open opens the region's stage under the stage's generation: fence
// records are kept per generation (the partition), and a stage that does
// not exist (never made, or dropped) starts a new one, voiding the records
// of the rows it held.
func (st *tstate) open(ctx context.Context, o Options, fresh bool) error {
	gen, err := st.t.Fence.Generation(ctx, stageNote(st.t.Region, o.RunID), fresh, o.TTL)
	if err != nil {
		return err
	}
	st.gen = gen
	st.partition = st.t.Region + "/" + o.RunID + "/" + gen
	stage, err := st.stager.Stage(ctx, o.RunID, o.Spec)
	if err != nil {
		return fmt.Errorf("stage: %w", err)
	}
	st.stage = stage
	info := stageInfo{Gen: gen, Created: time.Now().UTC(), Owner: o.Owner}
	if v, ok, err := st.t.Fence.Note(ctx, stageNote(st.t.Region, o.RunID)); err == nil && ok {
		var old stageInfo
		if json.Unmarshal([]byte(v), &old) == nil && old.Gen == gen {
			info.Created = old.Created
		}
	}
	return st.note(ctx, o, info)
}

func (st *tstate) note(ctx context.Context, o Options, info stageInfo) error {
	b, _ := json.Marshal(info)
	return st.t.Fence.SetNote(ctx, stageNote(st.t.Region, o.RunID), string(b), o.TTL)
}

// check hashes the stage and compares it with the expected content. It
// returns extra = true when the only trouble is rows the source does not
// have (they are removed by staging again), a *MismatchError otherwise.
func (st *tstate) check(ctx context.Context, o Options) (extra bool, err error) {
	if s, ok := st.t.Store.(adapters.Sealer); ok {
		if err := s.Seal(ctx, o.RunID); err != nil {
			return false, fmt.Errorf("region %s: %w", st.t.Region, err)
		}
	}
	spill, err := verifier.NewSpill(o.SpillDir, o.Buckets)
	if err != nil {
		return false, err
	}
	defer spill.Close()
	sc, err := verifier.HashStore(ctx, st.stage, verifier.Options{Declared: st.t.Declared, Buckets: o.Buckets, Spill: spill})
	if err != nil {
		return false, fmt.Errorf("region %s: hashing the rebuilt index: %w", st.t.Region, err)
	}
	exp, err := st.expected.Scan(sc)
	if err != nil {
		return false, err
	}
	if sc.ContentRoot() == exp.ContentRoot() && sc.Points == exp.Points {
		st.indexHash = sc.IndexHash().Hex()
		info := stageInfo{Gen: st.gen, Created: time.Now().UTC(), Owner: o.Owner, Checked: true, Root: exp.ContentRoot().Hex(), Points: exp.Points}
		if v, ok, err := st.t.Fence.Note(ctx, stageNote(st.t.Region, o.RunID)); err == nil && ok {
			var old stageInfo
			if json.Unmarshal([]byte(v), &old) == nil && old.Gen == st.gen {
				info.Created = old.Created
			}
		}
		return false, st.note(ctx, o, info)
	}
	d, err := verifier.Diff("expected", st.t.Region, exp, sc, st.expSpill, spill)
	if err != nil {
		return false, err
	}
	if len(d.OnlyInTo) > 0 && len(d.OnlyInFrom) == 0 && len(d.Changed) == 0 {
		return true, nil
	}
	return false, &MismatchError{Region: st.t.Region, Points: sc.Points, Want: exp.Points, Missing: d.OnlyInFrom, Extra: d.OnlyInTo,
		Changed: d.Changed, Got: sc.ContentRoot().Hex(), Expected: exp.ContentRoot().Hex()}
}

// restage drops the region's stage and writes the whole source into a new
// one (a new generation: the old fence records are void).
func (st *tstate) restage(ctx context.Context, o Options, ts []*tstate, e embed.Embedder) error {
	if err := st.stager.DropStage(ctx, o.RunID); err != nil {
		return fmt.Errorf("region %s: %w", st.t.Region, err)
	}
	st.stage.Close()
	if err := st.open(ctx, o, true); err != nil {
		return fmt.Errorf("region %s: %w", st.t.Region, err)
	}
	only := map[*tstate]bool{st: true}
	w := newWriter(ctx, ts, o, e, false, only)
	err := o.Source.Each(ctx, w.add)
	if err == nil {
		err = w.flush()
	}
	if err == nil {
		err = awaitOthers(ctx, ts, o, e, only)
	}
	return err
}

func runKey(runID, region string) string { return fence.Key("\x00run", runID, "", region) }

func (st *tstate) key(d Document) string {
	return fence.Key(d.SourceID, d.Revision, st.settingsD, st.partition)
}

func chunkPoint(d Document, i int, text string, vec []float32) parity.Point {
	payload, _ := json.Marshal(map[string]any{"source_id": d.SourceID, "revision": d.Revision, "chunk": i})
	return parity.Point{
		ID:      parity.ID{Kind: parity.IDUUID, S: ChunkID(d.SourceID, i)},
		Vectors: []parity.NamedVector{{Values: vec}},
		Payload: payload,
		Text:    text, HasText: true,
	}
}

// awaitOthers re-reads the source and, for every document another writer
// still holds, waits for it to finish; a claim whose holder died (lease
// expired) is taken over and written here.
func awaitOthers(ctx context.Context, ts []*tstate, o Options, e embed.Embedder, only map[*tstate]bool) error {
	for {
		var held int
		w := newWriter(ctx, ts, o, e, false, only)
		w.probe = func() { held++ }
		err := o.Source.Each(ctx, w.add)
		if err == nil {
			err = w.flush()
		}
		if err != nil {
			return err
		}
		if w.wrote == 0 && held == 0 {
			return nil
		}
		if held > 0 {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

// WriteText prints the summary for people.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "rebuild %s: %d documents, %d chunks, %d embedded, %d deduped, %dms\n", r.RunID, r.Documents, r.Chunks, r.Embedded, r.Deduped, r.ElapsedMS)
	names := make([]string, 0, len(r.Written))
	for n := range r.Written {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %s: written %d, dedupe hits %d, INDEX_HASH %s\n", n, r.Written[n], r.Dedupe[n].Hits, r.IndexHash[n])
	}
	switch {
	case r.Note != "":
		fmt.Fprintln(w, r.Note)
	case !r.Agree:
		fmt.Fprintln(w, "the rebuilt regions DISAGREE")
	case r.Promoted:
		fmt.Fprintln(w, "all rebuilt regions agree; promoted")
	default:
		fmt.Fprintln(w, "all rebuilt regions agree; staged, not promoted (pass --promote)")
	}
}

// CheckTargets refuses, before any lease, claim or embedding, targets whose
// store would drop the chunks' payload or text (adapters.ContentKeeper):
// their stage check would fail only after every chunk was embedded and
// written. Every such region is named.
func CheckTargets(targets []Target) error {
	var errs []error
	for _, t := range targets {
		if k, ok := t.Store.(adapters.ContentKeeper); ok {
			if err := k.KeepsContent(); err != nil {
				errs = append(errs, fmt.Errorf("rebuild: region %s: %w", t.Region, err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w (nothing written, the live index is untouched)", errors.Join(errs...))
	}
	return nil
}
