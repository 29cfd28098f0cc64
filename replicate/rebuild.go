package replicate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
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
	// the same run writes nothing twice. Derived from the inputs when "".
	RunID string
	// Owner identifies this writer in pending fence claims; a resumed run
	// reuses the interrupted run's owner to take over its claims.
	Owner string
	// Lease bounds how long a dead writer's pending claim blocks others;
	// TTL is how long a done claim is kept (failover_window + 24 h).
	Lease, TTL time.Duration
	// BatchDocs documents are claimed, embedded and written together.
	BatchDocs int
	Promote   bool
	Buckets   int
	Progress  func(docs int)
	// OnBatch is called after each written batch (tests use it).
	OnBatch func(docs int)
}

// Result is the rebuild summary (the --json document).
type Result struct {
	RunID     string                      `json:"run_id"`
	Documents int                         `json:"documents"`
	Chunks    int                         `json:"chunks"`
	Embedded  int64                       `json:"embedded"`
	Written   map[string]int              `json:"written"`
	Deduped   int                         `json:"deduped"`
	Dedupe    map[string]fence.DedupeStat `json:"dedupe"`
	IndexHash map[string]string           `json:"index_hash"`
	Agree     bool                        `json:"agree"`
	Promoted  bool                        `json:"promoted"`
	Note      string                      `json:"note,omitempty"`
	ElapsedMS int64                       `json:"elapsed_ms"`
}

// NewOwner returns a random writer identity.
func NewOwner() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// DeriveRunID names a run from its inputs, so replaying the same rebuild
// (same source, analyzers, model and spec) lands on the same stage and
// fence keys.
func DeriveRunID(release string, src Source, model string, spec adapters.CollectionSpec, targets []Target) string {
	parts := []any{release, src.String(), model, spec}
	for _, t := range targets {
		parts = append(parts, t.Region, t.Analyzer.Version())
	}
	b, _ := json.Marshal(parts)
	return "r" + hex.EncodeToString(parity.SHA256(b)[:6])
}

type tstate struct {
	t         Target
	stage     adapters.VectorStore
	settingsD string
	partition string
	skip      bool // run already promoted in this region
	stat      fence.DedupeStat
	written   int
	indexHash string
	hashErr   error
}

type pending struct {
	doc    Document
	chunks map[string][]string // analyzer version -> chunks
}

// Rebuild writes every document of the source into a staged collection in
// every target, fenced, and (with Promote) swaps the stages in when every
// region's INDEX_HASH agrees.
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
	if o.Owner == "" {
		o.Owner = NewOwner()
	}
	if len(targets) == 0 {
		return nil, errors.New("rebuild: no target regions")
	}
	counter := embed.NewCounting(o.Embedder)
	res := &Result{RunID: o.RunID, Written: map[string]int{}, Dedupe: map[string]fence.DedupeStat{}, IndexHash: map[string]string{}}
	ts := make([]*tstate, len(targets))
	for i, t := range targets {
		st := &tstate{t: t, partition: t.Region + "/" + o.RunID}
		ts[i] = st
		stager, ok := t.Store.(adapters.Stager)
		if !ok {
			return nil, fmt.Errorf("rebuild: region %s: its store cannot stage writes", t.Region)
		}
		state, err := t.Fence.Claim(ctx, runKey(o.RunID, t.Region), o.Owner, o.Lease)
		if err != nil {
			return nil, fmt.Errorf("rebuild: region %s: %w", t.Region, err)
		}
		if state == fence.AlreadyDone {
			st.skip = true
			continue
		}
		stage, err := stager.Stage(ctx, o.RunID, o.Spec)
		if err != nil {
			return nil, fmt.Errorf("rebuild: region %s: stage: %w", t.Region, err)
		}
		st.stage = stage
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
	}

	// Pass 1: claim, chunk, embed once, write everywhere.
	var batch []pending
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := writeBatch(ctx, ts, batch, counter, o, res)
		if o.OnBatch != nil {
			o.OnBatch(len(batch))
		}
		batch = batch[:0]
		return err
	}
	docs := 0
	err := o.Source.Each(ctx, func(d Document) error {
		p := pending{doc: d, chunks: map[string][]string{}}
		for _, st := range ts {
			v := st.t.Analyzer.Version()
			if _, ok := p.chunks[v]; !ok {
				p.chunks[v] = st.t.Analyzer.Chunk(d.Text)
				if len(p.chunks[v]) == 0 {
					return fmt.Errorf("%s: document %q has no words", d.Where, d.SourceID)
				}
			}
		}
		res.Chunks += len(p.chunks[ts[0].t.Analyzer.Version()])
		docs++
		batch = append(batch, p)
		if len(batch) >= o.BatchDocs {
			if err := flush(); err != nil {
				return err
			}
			if o.Progress != nil {
				o.Progress(docs)
			}
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return nil, fmt.Errorf("rebuild: %w (the live index is untouched)", err)
	}
	res.Documents = docs
	res.Embedded = counter.Texts()

	// Pass 2: wait for claims other writers hold (concurrent replays), so
	// that every stage is complete before it is hashed.
	if err := awaitOthers(ctx, ts, o, res, counter); err != nil {
		return nil, fmt.Errorf("rebuild: %w (the live index is untouched)", err)
	}
	res.Embedded = counter.Texts()

	// Hash every stage, as it will be once promoted, and compare.
	var wg sync.WaitGroup
	for _, st := range ts {
		if st.skip {
			continue
		}
		wg.Add(1)
		go func(st *tstate) {
			defer wg.Done()
			if s, ok := st.t.Store.(adapters.Sealer); ok {
				if err := s.Seal(ctx, o.RunID); err != nil {
					st.hashErr = err
					return
				}
			}
			sc, err := verifier.HashStore(ctx, st.stage, verifier.Options{Declared: st.t.Declared, Buckets: o.Buckets})
			if err != nil {
				st.hashErr = err
				return
			}
			st.indexHash = sc.IndexHash().Hex()
		}(st)
	}
	wg.Wait()
	res.Agree = true
	first := ""
	for _, st := range ts {
		res.Written[st.t.Region] = st.written
		res.Dedupe[st.t.Region] = st.stat
		res.Deduped += st.stat.Hits
		if st.skip {
			res.Note = "run " + o.RunID + " was already promoted in some regions: nothing written there (pass a new --run-id to rebuild again)"
			continue
		}
		if st.hashErr != nil {
			return nil, fmt.Errorf("rebuild: region %s: hashing the rebuilt index: %w (the live index is untouched)", st.t.Region, st.hashErr)
		}
		res.IndexHash[st.t.Region] = st.indexHash
		if first == "" {
			first = st.indexHash
		} else if st.indexHash != first {
			res.Agree = false
		}
	}
	for _, st := range ts {
		if !st.skip {
			if err := st.t.Fence.MarkWarm(ctx, st.stat); err != nil {
				return nil, fmt.Errorf("rebuild: region %s: %w", st.t.Region, err)
			}
		}
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
			if err := st.t.Store.(adapters.Stager).Promote(ctx, o.RunID); err != nil {
				return nil, fmt.Errorf("rebuild: region %s: promote: %w", st.t.Region, err)
			}
			if err := st.t.Fence.Done(ctx, runKey(o.RunID, st.t.Region), o.TTL); err != nil {
				return nil, fmt.Errorf("rebuild: region %s: %w", st.t.Region, err)
			}
		}
		res.Promoted = true
	}
	res.ElapsedMS = time.Since(start).Milliseconds()
	return res, nil
}

func runKey(runID, region string) string { return fence.Key("\x00run", runID, "", region) }

func (st *tstate) key(d Document) string {
	return fence.Key(d.SourceID, d.Revision, st.settingsD, st.partition)
}

// writeBatch claims each document in each region, embeds the chunks any
// region needs (each distinct text once), and writes the regions
// concurrently, marking claims done after the write is acknowledged.
func writeBatch(ctx context.Context, ts []*tstate, batch []pending, e embed.Embedder, o Options, res *Result) error {
	need := make([][]bool, len(ts))
	texts := map[string]bool{}
	for i, st := range ts {
		need[i] = make([]bool, len(batch))
		if st.skip {
			for _, p := range batch {
				st.stat.Hits += len(p.chunks[st.t.Analyzer.Version()])
			}
			continue
		}
		for j, p := range batch {
			state, err := st.t.Fence.Claim(ctx, st.key(p.doc), o.Owner, o.Lease)
			if err != nil {
				return fmt.Errorf("region %s: %w", st.t.Region, err)
			}
			n := len(p.chunks[st.t.Analyzer.Version()])
			if state != fence.Acquired {
				if state == fence.AlreadyDone {
					st.stat.Hits += n
				}
				continue
			}
			need[i][j] = true
			for _, c := range p.chunks[st.t.Analyzer.Version()] {
				texts[c] = true
			}
		}
	}
	if len(texts) == 0 {
		return nil
	}
	list := make([]string, 0, len(texts))
	for t := range texts {
		list = append(list, t)
	}
	sort.Strings(list)
	vecs, err := e.Embed(ctx, list)
	if err != nil {
		return fmt.Errorf("embed: %w", err)
	}
	byText := make(map[string][]float32, len(list))
	for i, t := range list {
		byText[t] = vecs[i]
	}
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, st := range ts {
		if st.skip {
			continue
		}
		wg.Add(1)
		go func(i int, st *tstate) {
			defer wg.Done()
			var pts []parity.Point
			var keys []string
			for j, p := range batch {
				if !need[i][j] {
					continue
				}
				keys = append(keys, st.key(p.doc))
				for ci, c := range p.chunks[st.t.Analyzer.Version()] {
					pts = append(pts, chunkPoint(p.doc, ci, c, byText[c]))
				}
			}
			if len(pts) == 0 {
				return
			}
			if err := st.stage.Upsert(ctx, pts); err != nil {
				errs[i] = fmt.Errorf("region %s: %w", st.t.Region, err)
				return
			}
			for _, k := range keys {
				if err := st.t.Fence.Done(ctx, k, o.TTL); err != nil {
					errs[i] = fmt.Errorf("region %s: %w", st.t.Region, err)
					return
				}
			}
			st.written += len(pts)
			st.stat.Misses += len(pts)
		}(i, st)
	}
	wg.Wait()
	return errors.Join(errs...)
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
func awaitOthers(ctx context.Context, ts []*tstate, o Options, res *Result, e embed.Embedder) error {
	for {
		var held int
		var batch []pending
		flushErr := error(nil)
		err := o.Source.Each(ctx, func(d Document) error {
			for _, st := range ts {
				if st.skip {
					continue
				}
				state, err := st.t.Fence.Claim(ctx, st.key(d), o.Owner+"-probe", time.Millisecond)
				if err != nil {
					return err
				}
				switch state {
				case fence.HeldByOther:
					held++
				case fence.Acquired:
					// Nobody holds it and it is not done: a writer died
					// between claim expiry and now. Write it ourselves.
					p := pending{doc: d, chunks: map[string][]string{}}
					for _, s2 := range ts {
						p.chunks[s2.t.Analyzer.Version()] = s2.t.Analyzer.Chunk(d.Text)
					}
					batch = append(batch, p)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			// The probe claims expire at once; re-claim under our owner.
			flushErr = writeBatch(ctx, ts, batch, e, o, res)
			if flushErr != nil {
				return flushErr
			}
			continue
		}
		if held == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
