package replicate

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/ragparity/ragparity/embed"
	"github.com/ragparity/ragparity/fence"
	"github.com/ragparity/ragparity/parity"
)

// maxItems bounds the chunks held between flushes, whatever the size of
// one document: memory does not grow with a source file's size.
const maxItems = 256

// docState is one document being written.
type docState struct {
	d    Document
	need []bool // per region: claimed here, to be written
	done []bool // per region: the fence says it is written (a hit)
	// chunks per analyzer version, known once streamed.
	chunks   map[string]int
	left     int // items not flushed yet
	complete bool
}

type item struct {
	doc  *docState
	v    string
	i    int
	text string
}

// writer streams documents into the stages: it claims each document in
// each region, chunks it (streaming), embeds each distinct chunk text of a
// batch once, adds every region's points to its expected content (expect)
// and writes the points of the documents claimed here.
type writer struct {
	ctx     context.Context
	ts      []*tstate
	o       Options
	e       embed.Embedder
	expect  bool
	only    map[*tstate]bool
	probe   func() // called for a document another writer holds
	items   []item
	docs    []*docState
	chunks  int // chunks of the first region's analyzer
	wrote   int
	batches int
}

func newWriter(ctx context.Context, ts []*tstate, o Options, e embed.Embedder, expect bool, only map[*tstate]bool) *writer {
	return &writer{ctx: ctx, ts: ts, o: o, e: e, expect: expect, only: only}
}

func (w *writer) active(st *tstate) bool {
	return !st.skip && (w.only == nil || w.only[st])
}

func (w *writer) add(d Document) error {
	ds := &docState{d: d, need: make([]bool, len(w.ts)), done: make([]bool, len(w.ts)), chunks: map[string]int{}}
	anyNeed := false
	for i, st := range w.ts {
		if !w.active(st) {
			continue
		}
		state, err := st.t.Fence.Claim(w.ctx, st.key(d), w.o.Owner, w.o.Lease)
		if err != nil {
			return fmt.Errorf("region %s: %w", st.t.Region, err)
		}
		switch state {
		case fence.Acquired:
			ds.need[i], anyNeed = true, true
		case fence.AlreadyDone:
			ds.done[i] = true
		case fence.HeldByOther:
			if w.probe != nil {
				w.probe()
			}
		}
	}
	if !w.expect && !anyNeed {
		return nil
	}
	w.docs = append(w.docs, ds)
	versions := map[string]Analyzer{}
	for _, st := range w.ts {
		versions[st.t.Analyzer.Version()] = st.t.Analyzer
	}
	names := make([]string, 0, len(versions))
	for v := range versions {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		if !w.expect && !w.needsVersion(ds, v) {
			continue
		}
		rc, err := d.Reader()
		if err != nil {
			return fmt.Errorf("%s: %w", d.Where, err)
		}
		n, err := versions[v].ChunkReader(rc, func(i int, c string) error {
			w.items = append(w.items, item{doc: ds, v: v, i: i, text: c})
			ds.left++
			if len(w.items) >= maxItems {
				return w.flush()
			}
			return nil
		})
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: document %q: %w", d.Where, d.SourceID, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: document %q has no words", d.Where, d.SourceID)
		}
		ds.chunks[v] = n
	}
	if w.expect {
		w.chunks += ds.chunks[w.ts[0].t.Analyzer.Version()]
	}
	ds.complete = true
	if len(w.docs) >= w.o.BatchDocs {
		return w.flush()
	}
	return nil
}

func (w *writer) needsVersion(ds *docState, v string) bool {
	for i, st := range w.ts {
		if ds.need[i] && st.t.Analyzer.Version() == v {
			return true
		}
	}
	return false
}

// useful reports whether an item's vector is needed: some region with its
// analyzer expects it or writes it.
func (w *writer) useful(it item) bool {
	for i, st := range w.ts {
		if st.t.Analyzer.Version() != it.v || !w.active(st) {
			continue
		}
		if w.expect || it.doc.need[i] {
			return true
		}
	}
	return false
}

// flush embeds and writes the items held, then marks done the documents
// whose every chunk is written.
func (w *writer) flush() error {
	if len(w.items) > 0 {
		if err := w.writeItems(); err != nil {
			return err
		}
	}
	// Finish complete documents; renew the claims of the one still
	// streaming (a large document can outlast a lease).
	keep := w.docs[:0]
	for _, ds := range w.docs {
		if !ds.complete || ds.left > 0 {
			for i, st := range w.ts {
				if ds.need[i] {
					if _, err := st.t.Fence.Claim(w.ctx, st.key(ds.d), w.o.Owner, w.o.Lease); err != nil {
						return fmt.Errorf("region %s: %w", st.t.Region, err)
					}
				}
			}
			keep = append(keep, ds)
			continue
		}
		for i, st := range w.ts {
			if !w.active(st) && !st.skip {
				continue
			}
			n := ds.chunks[st.t.Analyzer.Version()]
			switch {
			case st.skip:
				if w.expect {
					st.stat.Hits += n
				}
			case ds.need[i]:
				dup, err := st.t.Fence.Complete(w.ctx, st.key(ds.d), w.o.TTL)
				if err != nil {
					return fmt.Errorf("region %s: %w", st.t.Region, err)
				}
				if dup {
					st.dups++
				}
				st.stat.Misses += n
				st.written += n
				w.wrote += n
			case ds.done[i] && w.expect:
				st.stat.Hits += n
			}
		}
	}
	for i := len(keep); i < len(w.docs); i++ {
		w.docs[i] = nil
	}
	w.docs = keep
	w.batches++
	if w.o.OnBatch != nil {
		w.o.OnBatch(w.batches)
	}
	return nil
}

func (w *writer) writeItems() error {
	texts := map[string]bool{}
	for _, it := range w.items {
		if w.useful(it) {
			texts[it.text] = true
		}
	}
	list := make([]string, 0, len(texts))
	for t := range texts {
		list = append(list, t)
	}
	sort.Strings(list)
	byText := make(map[string][]float32, len(list))
	if len(list) > 0 {
		vecs, err := w.e.Embed(w.ctx, list)
		if err != nil {
			return fmt.Errorf("embed: %w", err)
		}
		for i, t := range list {
			byText[t] = vecs[i]
		}
	}
	errs := make([]error, len(w.ts))
	var wg sync.WaitGroup
	for i, st := range w.ts {
		if !w.active(st) {
			continue
		}
		wg.Add(1)
		go func(i int, st *tstate) {
			defer wg.Done()
			v := st.t.Analyzer.Version()
			var pts []parity.Point
			for _, it := range w.items {
				if it.v != v {
					continue
				}
				if !w.expect && !it.doc.need[i] {
					continue
				}
				p := chunkPoint(it.doc.d, it.i, it.text, byText[it.text])
				if w.expect {
					if err := st.expected.Add(&p); err != nil {
						errs[i] = fmt.Errorf("region %s: %w", st.t.Region, err)
						return
					}
				}
				if it.doc.need[i] {
					pts = append(pts, p)
				}
			}
			if len(pts) == 0 {
				return
			}
			if err := st.stage.Upsert(w.ctx, pts); err != nil {
				errs[i] = fmt.Errorf("region %s: %w", st.t.Region, err)
			}
		}(i, st)
	}
	wg.Wait()
	for _, it := range w.items {
		it.doc.left--
	}
	clear(w.items)
	w.items = w.items[:0]
	return errors.Join(errs...)
}
