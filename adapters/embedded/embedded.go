// Package embedded is the zero-setup vector store: a chromem-go persistent
// database in a local folder (github.com/philippgille/chromem-go).
//
// URL: embedded:///abs/path?collection=chunks (or embedded:relative/path).
//
// What chromem-go does to vectors: it supports cosine similarity only and
// L2-normalises every vector on insert unless its norm is already within
// 1e-6 of 1. The store reports this as settings normalize=l2-on-insert and
// metric=cosine. chromem-go keeps a whole collection in memory (its design);
// Scan walks it in 64 partitions so that a scan holds 1/64 of the result
// slices at a time.
//
// Staged rebuilds (Stage, Promote; see stage.go) write a new chromem-go
// collection and switch to it through the sidecar file
// ragparity-<collection>.json, whose "physical" field names the collection
// holding the data; names containing "__rp_" are reserved for them.
package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/philippgille/chromem-go"
	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

func init() { adapters.RegisterVector("embedded", Open) }

var _ adapters.VectorStore = (*Store)(nil)
var _ adapters.BucketScanner = (*Store)(nil)
var _ adapters.Stager = (*Store)(nil)

// Metadata keys ragparity stores in chromem documents and collections.
const (
	keyPart    = "_rp_part"
	keyPayload = "_rp_payload"
	keyKind    = "_rp_kind"
	layoutV1   = "v1"
	parts      = 64
)

// Store is one collection of an embedded database.
type Store struct {
	path, collection string
	text             bool
	db               *chromem.DB
}

var (
	dbMu sync.Mutex
	dbs  = map[string]*chromem.DB{}
)

// openDB returns the process-wide handle of a database folder (chromem-go
// loads a folder into memory; two handles would diverge).
func openDB(path string) (*chromem.DB, error) {
	dbMu.Lock()
	defer dbMu.Unlock()
	if db, ok := dbs[path]; ok {
		return db, nil
	}
	db, err := chromem.NewPersistentDB(path, false)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", path, err)
	}
	dbs[path] = db
	return db, nil
}

// Forget drops the process-wide handle of a folder, so the next Open reads
// it from disk again (tests that change files underneath use it).
func Forget(path string) {
	dbMu.Lock()
	defer dbMu.Unlock()
	delete(dbs, filepath.Clean(path))
}

// Open opens embedded:///path?collection=name.
func Open(_ context.Context, u *url.URL) (adapters.VectorStore, error) {
	p := u.Path
	if u.Opaque != "" {
		p = u.Opaque
	}
	if u.Host != "" {
		return nil, fmt.Errorf("embedded: URL %q: use embedded:///absolute/path or embedded:relative/path (no host)", u.String())
	}
	if p == "" {
		return nil, fmt.Errorf("embedded: URL %q: missing folder path", u.String())
	}
	q := u.Query()
	for k := range q {
		if k != "collection" && k != "text" {
			return nil, fmt.Errorf("embedded: URL %q: unknown parameter %q (known: collection, text)", u.String(), k)
		}
	}
	s := &Store{path: filepath.Clean(p), collection: q.Get("collection"), text: true}
	if s.collection == "" {
		s.collection = "chunks"
	}
	if t := q.Get("text"); t != "" {
		b, err := strconv.ParseBool(t)
		if err != nil {
			return nil, fmt.Errorf("embedded: URL parameter text=%q: want true or false", t)
		}
		s.text = b
	}
	db, err := openDB(s.path)
	if err != nil {
		return nil, err
	}
	s.db = db
	return s, nil
}

// sidecar is what ragparity records about a collection beside chromem-go's
// folder (chromem-go does not expose collection metadata), in
// ragparity-<collection>.json.
type sidecar struct {
	Layout string `json:"layout"`
	Dim    int    `json:"dim"`
	Metric string `json:"metric"`
	// Physical names the chromem-go collection that holds the data. Absent
	// (folders written before staged rebuilds, and collections made by
	// Create) it is the collection's own name; after a Promote it is the
	// promoted stage's collection: chromem-go cannot rename a collection,
	// so the sidecar is the alias.
	Physical string `json:"physical,omitempty"`
}

func (sc sidecar) physical(name string) string {
	if sc.Physical != "" {
		return sc.Physical
	}
	return name
}

func (s *Store) sidecarPathOf(coll string) string {
	return filepath.Join(s.path, "ragparity-"+url.PathEscape(coll)+".json")
}

func (s *Store) sidecarPath() string { return s.sidecarPathOf(s.collection) }

// readSidecar reads the sidecar of coll; a missing one is an error
// wrapping os.ErrNotExist.
func (s *Store) readSidecar(coll string) (sidecar, error) {
	var sc sidecar
	b, err := os.ReadFile(s.sidecarPathOf(coll))
	if err != nil {
		return sc, err
	}
	if err := json.Unmarshal(b, &sc); err != nil || sc.Layout != layoutV1 || sc.Dim <= 0 {
		return sc, fmt.Errorf("embedded: %s: corrupt collection metadata", s.sidecarPathOf(coll))
	}
	return sc, nil
}

// writeSidecar replaces coll's sidecar atomically (a temporary file in the
// same folder, synced, then renamed over it): a reader sees the old one or
// the new one.
func (s *Store) writeSidecar(coll string, sc sidecar) error {
	b, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.path, ".ragparity-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.sidecarPathOf(coll))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(s.path); err == nil {
		d.Sync() // make the rename durable where the platform allows
		d.Close()
	}
	return nil
}

// resolve returns the chromem-go collection holding the data (through the
// sidecar, read at every call) and the vector dimension.
func (s *Store) resolve() (*chromem.Collection, int, error) {
	sc, err := s.readSidecar(s.collection)
	if errors.Is(err, os.ErrNotExist) {
		if s.db.GetCollection(s.collection, nil) == nil {
			return nil, 0, fmt.Errorf("embedded: collection %q in %s: %w", s.collection, s.path, adapters.ErrNotFound)
		}
		return nil, 0, fmt.Errorf("embedded: collection %q in %s was not created by ragparity (%w)", s.collection, s.path, err)
	}
	if err != nil {
		return nil, 0, err
	}
	phys := sc.physical(s.collection)
	c := s.db.GetCollection(phys, nil)
	if c == nil {
		if phys != s.collection {
			return nil, 0, fmt.Errorf("embedded: collection %q in %s (data in %q): %w", s.collection, s.path, phys, adapters.ErrNotFound)
		}
		return nil, 0, fmt.Errorf("embedded: collection %q in %s: %w", s.collection, s.path, adapters.ErrNotFound)
	}
	return c, sc.Dim, nil
}

// Settings reports dimension, metric and the insert normalisation.
func (s *Store) Settings(ctx context.Context) (parity.Settings, error) {
	st := parity.NewSettings()
	if err := ctx.Err(); err != nil {
		return st, err
	}
	c, dim, err := s.resolve()
	if err != nil {
		return st, err
	}
	st.Hashed["vector.dim"] = dim
	st.Hashed["vector.metric"] = "cosine"
	st.Engine["normalize"] = "l2-on-insert"
	st.Engine["index.type"] = "exact"
	st.Engine["quantization"] = "none"
	st.Info["engine"] = "chromem-go"
	st.Info["points_count"] = c.Count()
	return st, nil
}

// Scan reads every point.
func (s *Store) Scan(ctx context.Context, fn func(p *parity.Point) error) error {
	all := make([]int, parts)
	for i := range all {
		all[i] = i
	}
	return s.scanParts(ctx, all, nil, fn)
}

// ScanBuckets reads only the partitions that hold the wanted buckets and
// skips the other buckets' points.
func (s *Store) ScanBuckets(ctx context.Context, f adapters.BucketFilter, fn func(p *parity.Point) error) error {
	want := map[int]bool{}
	ps := map[int]bool{}
	for _, b := range f.Keep {
		want[b] = true
		ps[b*parts/f.Buckets] = true
	}
	if f.Buckets < parts {
		return s.Scan(ctx, func(p *parity.Point) error {
			if want[parity.BucketOf(p.ID.S, f.Buckets)] {
				return fn(p)
			}
			return nil
		})
	}
	list := make([]int, 0, len(ps))
	for p := range ps {
		list = append(list, p)
	}
	sort.Ints(list)
	return s.scanParts(ctx, list, func(id string) bool { return want[parity.BucketOf(id, f.Buckets)] }, fn)
}

func (s *Store) scanParts(ctx context.Context, list []int, keep func(string) bool, fn func(p *parity.Point) error) error {
	c, dim, err := s.resolve()
	if err != nil {
		return err
	}
	n := c.Count()
	if n == 0 {
		return nil
	}
	q := make([]float32, dim)
	q[0] = 1
	var p parity.Point
	p.Vectors = make([]parity.NamedVector, 1)
	for _, part := range list {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("embedded: scan %s: %w", s.collection, err)
		}
		res, err := c.QueryEmbedding(ctx, q, n, map[string]string{keyPart: strconv.Itoa(part)}, nil)
		if err != nil {
			return fmt.Errorf("embedded: scan %s: %w", s.collection, err)
		}
		for i := range res {
			r := &res[i]
			if keep != nil && !keep(r.ID) {
				continue
			}
			if i%256 == 0 {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("embedded: scan %s: %w", s.collection, err)
				}
			}
			p.ID = parity.ID{Kind: kindOf(r.Metadata[keyKind]), S: r.ID}
			p.Vectors[0] = parity.NamedVector{Values: r.Embedding}
			p.Payload = nil
			if pl, ok := r.Metadata[keyPayload]; ok {
				p.Payload = []byte(pl)
			}
			p.Text, p.HasText = r.Content, s.text
			if !s.text {
				p.Text = ""
			}
			if err := fn(&p); err != nil {
				return err
			}
		}
	}
	return nil
}

func kindOf(s string) parity.IDKind {
	switch s {
	case "i":
		return parity.IDInt
	case "u":
		return parity.IDUUID
	}
	return parity.IDString
}

func kindCode(k parity.IDKind) string {
	switch k {
	case parity.IDInt:
		return "i"
	case parity.IDUUID:
		return "u"
	}
	return "s"
}

// Create creates the collection. Only the unnamed vector and the cosine
// metric are supported by chromem-go.
func (s *Store) Create(_ context.Context, spec adapters.CollectionSpec) error {
	exists := s.db.GetCollection(s.collection, nil) != nil
	if sc, err := s.readSidecar(s.collection); err == nil && s.db.GetCollection(sc.physical(s.collection), nil) != nil {
		exists = true
	}
	if exists {
		return fmt.Errorf("embedded: collection %q: %w", s.collection, adapters.ErrExists)
	}
	if len(spec.Vectors) != 1 || spec.Vectors[""] <= 0 {
		return errors.New("embedded: chromem-go supports exactly one unnamed vector per collection")
	}
	if spec.Metric != "" && spec.Metric != "cosine" {
		return fmt.Errorf("embedded: chromem-go supports the cosine metric only, not %q", spec.Metric)
	}
	if err := s.writeSidecar(s.collection, sidecar{Layout: layoutV1, Dim: spec.Vectors[""], Metric: "cosine"}); err != nil {
		return fmt.Errorf("embedded: create %q: %w", s.collection, err)
	}
	if _, err := s.db.CreateCollection(s.collection, nil, noEmbed); err != nil {
		return fmt.Errorf("embedded: create %q: %w", s.collection, err)
	}
	return nil
}

func noEmbed(context.Context, string) ([]float32, error) {
	return nil, errors.New("embedded: documents must carry their embeddings")
}

// Upsert adds or replaces points.
func (s *Store) Upsert(ctx context.Context, pts []parity.Point) error {
	c, dim, err := s.resolve()
	if err != nil {
		return err
	}
	docs := make([]chromem.Document, len(pts))
	for i := range pts {
		p := &pts[i]
		if len(p.Vectors) != 1 || p.Vectors[0].Name != "" {
			return fmt.Errorf("embedded: point %s: exactly one unnamed vector required", p.ID.S)
		}
		if len(p.Vectors[0].Values) != dim {
			return fmt.Errorf("embedded: point %s: vector has %d dimensions, collection %d", p.ID.S, len(p.Vectors[0].Values), dim)
		}
		md := map[string]string{
			keyPart: strconv.Itoa(parity.BucketOf(p.ID.S, parts)),
			keyKind: kindCode(p.ID.Kind),
		}
		if len(p.Payload) > 0 {
			if !json.Valid(p.Payload) {
				return fmt.Errorf("embedded: point %s: payload is not valid JSON", p.ID.S)
			}
			md[keyPayload] = string(p.Payload)
		}
		docs[i] = chromem.Document{ID: p.ID.S, Metadata: md, Embedding: append([]float32(nil), p.Vectors[0].Values...), Content: p.Text}
	}
	if err := c.AddDocuments(ctx, docs, 4); err != nil {
		return fmt.Errorf("embedded: upsert into %q: %w", s.collection, err)
	}
	return nil
}

// Drop deletes the collection: the chromem-go collection holding its data
// and its sidecar. Stages are not touched (see DropStage).
func (s *Store) Drop(_ context.Context) error {
	phys := s.collection
	if sc, err := s.readSidecar(s.collection); err == nil {
		phys = sc.physical(s.collection)
	}
	if err := s.db.DeleteCollection(phys); err != nil {
		return fmt.Errorf("embedded: drop %q: %w", s.collection, err)
	}
	for _, p := range []string{s.sidecarPathOf(phys), s.sidecarPath()} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("embedded: drop %q: %w", s.collection, err)
		}
	}
	return nil
}

// Close is a no-op: the database handle is shared by the process.
func (s *Store) Close() error { return nil }

// Path returns the folder and Collection the collection name.
func (s *Store) Path() string       { return s.path }
func (s *Store) Collection() string { return s.collection }
