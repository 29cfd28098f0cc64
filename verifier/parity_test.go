package verifier_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/ragparity/ragparity/internal/pgtest"

	"github.com/ragparity/ragparity/adapters"
	_ "github.com/ragparity/ragparity/adapters/all"
	"github.com/ragparity/ragparity/adapters/qdrant/qdranttest"
	"github.com/ragparity/ragparity/parity"
	"github.com/ragparity/ragparity/storetest/vectortest"
	"github.com/ragparity/ragparity/verifier"
)

// engines opens a fresh store on each engine; the qdrant one on the
// in-process server (or RAGPARITY_QDRANT_URL).
type engine struct {
	name string
	open func(t *testing.T) adapters.VectorStore
}

func engines(t *testing.T) []engine {
	srv := qdranttest.Start(t)
	qbase := "qdrant://" + srv.Addr()
	if u := os.Getenv("RAGPARITY_QDRANT_URL"); u != "" {
		qbase = u
	}
	mk := func(raw string) adapters.VectorStore {
		s, err := adapters.OpenVector(context.Background(), raw)
		if err != nil {
			t.Fatalf("OpenVector(%s): %v", adapters.Redact(raw), err)
		}
		t.Cleanup(func() { s.Drop(context.Background()); s.Close() })
		return s
	}
	return []engine{
		{"pgvector", func(t *testing.T) adapters.VectorStore {
			return mk(pgtest.TableURL(fmt.Sprintf("rp_parity_%08x", rand.Uint32()), "payload", "metadata", "text", "content"))
		}},
		{"qdrant", func(t *testing.T) adapters.VectorStore {
			return mk(fmt.Sprintf("%s/rp_parity_%08x?text=content", qbase, rand.Uint32()))
		}},
		{"embedded", func(t *testing.T) adapters.VectorStore {
			return mk(fmt.Sprintf("embedded://%s?collection=parity", t.TempDir()))
		}},
	}
}

func scan(t *testing.T, r adapters.VectorReader, spill *verifier.Spill) *verifier.Scan {
	t.Helper()
	s, err := verifier.HashStore(context.Background(), r, verifier.Options{Spill: spill})
	if err != nil {
		t.Fatalf("HashStore: %v", err)
	}
	return s
}

func clonePoints(pts []parity.Point) []parity.Point {
	out := make([]parity.Point, len(pts))
	for i, p := range pts {
		out[i] = p
		out[i].Vectors = []parity.NamedVector{{Values: slices.Clone(p.Vectors[0].Values)}}
	}
	return out
}

// TestCrossEngineParity: the same logical points in pgvector, Qdrant and
// the embedded store give the same content_root; single mutations change
// it and diff names exactly those ids and fields.
func TestCrossEngineParity(t *testing.T) {
	const n = 3000
	base := vectortest.Points(parity.IDInt, n, 2026)
	engs := engines(t)
	spec := vectortest.Spec(parity.IDInt)
	// Qdrant and chromem-go normalise cosine vectors on insert; the
	// fixtures are unit vectors, and dot keeps Qdrant from re-normalising.
	specFor := func(name string) adapters.CollectionSpec {
		s := spec
		if name == "qdrant" {
			s.Metric = "dot"
		}
		return s
	}
	roots := map[string]parity.Digest{}
	var ref *verifier.Scan
	var refSpill *verifier.Spill
	for _, e := range engs {
		s := e.open(t)
		vectortest.Load(t, s, specFor(e.name), base)
		sp, err := verifier.NewSpill(t.TempDir(), 0)
		if err != nil {
			t.Fatal(err)
		}
		sc := scan(t, s, sp)
		roots[e.name] = sc.ContentRoot()
		if sc.Points != n {
			t.Errorf("%s: %d points, want %d", e.name, sc.Points, n)
		}
		if e.name == "pgvector" {
			ref, refSpill = sc, sp
		}
	}
	t.Logf("content roots: %v", roots)
	if roots["pgvector"] != roots["qdrant"] || roots["pgvector"] != roots["embedded"] {
		t.Fatalf("content_root differs across engines: %v", roots)
	}

	// Each single mutation, loaded into each engine in turn, changes the
	// content root; diff names exactly that id and field.
	type mutation struct {
		name       string
		apply      func([]parity.Point) []parity.Point
		onlyFrom   []string
		onlyTo     []string
		changed    string
		changedFld string
	}
	id := func(i int) string { return base[i].ID.S }
	muts := []mutation{
		{name: "FloatPlus1e-6", apply: func(p []parity.Point) []parity.Point {
			p[17].Vectors[0].Values[3] += 1e-6
			return p
		}, changed: id(17), changedFld: "vector"},
		{name: "PayloadValue", apply: func(p []parity.Point) []parity.Point {
			p[123].Payload = []byte(`{"doc":"d41","n":124,"tags":["a","b"],"score":0.5}`)
			return p
		}, changed: id(123), changedFld: "payload"},
		{name: "TextChanged", apply: func(p []parity.Point) []parity.Point {
			p[999].Text += "!"
			return p
		}, changed: id(999), changedFld: "text"},
		{name: "MissingPoint", apply: func(p []parity.Point) []parity.Point {
			return append(p[:500:500], p[501:]...)
		}, onlyFrom: []string{id(500)}},
		{name: "ExtraPoint", apply: func(p []parity.Point) []parity.Point {
			x := vectortest.Points(parity.IDInt, n+1, 77)[n]
			return append(p, x)
		}, onlyTo: []string{fmt.Sprint(n + 1)}},
	}
	for i, m := range muts {
		e := engs[i%len(engs)]
		t.Run(m.name+"In"+e.name, func(t *testing.T) {
			s := e.open(t)
			vectortest.Load(t, s, specFor(e.name), m.apply(clonePoints(base)))
			sp, err := verifier.NewSpill(t.TempDir(), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			sc := scan(t, s, sp)
			if sc.ContentRoot() == ref.ContentRoot() {
				t.Fatalf("content_root unchanged")
			}
			d, err := verifier.Diff("pgvector", e.name, ref, sc, refSpill, sp)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprint(d.OnlyInFrom), fmt.Sprint(orEmpty(m.onlyFrom)); got != want {
				t.Errorf("only_in_from = %s, want %s", got, want)
			}
			if got, want := fmt.Sprint(d.OnlyInTo), fmt.Sprint(orEmpty(m.onlyTo)); got != want {
				t.Errorf("only_in_to = %s, want %s", got, want)
			}
			var wantChanged string
			if m.changed != "" {
				wantChanged = fmt.Sprintf("%s%v", m.changed, []string{m.changedFld})
			}
			var gotChanged string
			for _, c := range d.Changed {
				gotChanged += fmt.Sprintf("%s%v", c.ID, c.Fields)
			}
			if gotChanged != wantChanged {
				t.Errorf("changed = %q, want %q", gotChanged, wantChanged)
			}
			// Localised: only the differing bucket's points were compared.
			if d.BucketsDiffering != 1 || d.PointsExamined > 6 {
				t.Errorf("buckets_differing = %d, points_examined = %d of %d: diff was not localised", d.BucketsDiffering, d.PointsExamined, 2*n)
			}
			t.Logf("diff examined %d point records of %d", d.PointsExamined, 2*n)
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TestMetricChangesIndexHashNotContent: the same content under a different
// distance metric keeps content_root, changes INDEX_HASH, and the settings
// diff names the metric.
func TestMetricChangesIndexHashNotContent(t *testing.T) {
	pts := vectortest.Points(parity.IDInt, 200, 5)
	var scans []*verifier.Scan
	for _, metric := range []string{"cosine", "l2"} {
		s, err := adapters.OpenVector(context.Background(), pgtest.TableURL(fmt.Sprintf("rp_metric_%08x", rand.Uint32()), "payload", "metadata", "text", "content"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Drop(context.Background()); s.Close() })
		spec := vectortest.Spec(parity.IDInt)
		spec.Metric = metric
		vectortest.Load(t, s, spec, pts)
		scans = append(scans, scan(t, s, nil))
	}
	a, b := scans[0], scans[1]
	if a.ContentRoot() != b.ContentRoot() {
		t.Errorf("content_root differs with only the metric changed")
	}
	if a.IndexHash() == b.IndexHash() {
		t.Errorf("INDEX_HASH equal although the metric differs")
	}
	d := parity.DiffSettings(a.Settings, b.Settings)
	found := false
	for _, s := range d {
		if s.Key == "vector.metric" && s.From == "cosine" && s.To == "l2" && s.Hashed {
			found = true
		}
	}
	if !found {
		t.Errorf("settings diff %+v does not show vector.metric cosine -> l2", d)
	}
}

func TestToleranceReport(t *testing.T) {
	// A one-ulp change: exact digests differ, tolerant ones agree.
	pts := vectortest.Points(parity.IDInt, 50, 8)
	dir := t.TempDir()
	var scans, exact []*verifier.Scan
	var spills []*verifier.Spill
	for i, mutate := range []bool{false, true} {
		s, _ := adapters.OpenVector(context.Background(), fmt.Sprintf("embedded://%s?collection=c%d", dir, i))
		p := clonePoints(pts)
		if mutate {
			v := &p[4].Vectors[0].Values[0]
			*v = math.Nextafter32(*v, 1)
		}
		if mutate && i > 0 {
			p[7].Vectors[0].Values[1] += 0.25 // far beyond the tolerance
		}
		vectortest.Load(t, s, vectortest.Spec(parity.IDInt), p)
		tol, err := verifier.HashStore(context.Background(), s, verifier.Options{Tolerant: true})
		if err != nil {
			t.Fatal(err)
		}
		scans = append(scans, tol)
		sp, err := verifier.NewSpill(t.TempDir(), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sp.Close() })
		spills = append(spills, sp)
		exact = append(exact, scan(t, s, sp))
	}
	if scans[0].ContentRoot() == scans[1].ContentRoot() {
		t.Errorf("exact content root unchanged by a one-ulp change")
	}
	if !scans[0].HasTolerant() || scans[0].ContentRootTolerant() == scans[1].ContentRootTolerant() {
		t.Errorf("tolerant content root missing (%v) or unchanged by a change beyond the tolerance", scans[0].HasTolerant())
	}
	// Without Options.Tolerant: no tolerant leaves, the same exact root.
	for i, s := range exact {
		if s.HasTolerant() || verifier.TolerantRootHex(s) != "" {
			t.Errorf("scan %d without Tolerant has tolerant leaves", i)
		}
		if s.IndexHash() != scans[i].IndexHash() {
			t.Errorf("scan %d: INDEX_HASH %s without Tolerant, %s with", i, s.IndexHash(), scans[i].IndexHash())
		}
	}
	// Diff still says the changed vector is within tolerance: the spill
	// records tolerant vector digests whatever Options.Tolerant says.
	d, err := verifier.Diff("a", "b", exact[0], exact[1], spills[0], spills[1])
	if err != nil {
		t.Fatal(err)
	}
	within := map[string]bool{}
	for _, c := range d.Changed {
		if c.VectorWithinTolerance != nil {
			within[c.ID] = *c.VectorWithinTolerance
		}
	}
	if len(d.Changed) != 2 || !within[pts[4].ID.S] || within[pts[7].ID.S] {
		t.Errorf("diff changed = %+v, want %s within tolerance and %s not", d.Changed, pts[4].ID.S, pts[7].ID.S)
	}
}

// unitPoints are pts with vectors whose cosine normalisation is exact in
// float32 (four components of ±0.5), so engines that normalise on insert
// (Qdrant, chromem-go) store the bits they were given.
func unitPoints(pts []parity.Point) []parity.Point {
	out := clonePoints(pts)
	for i := range out {
		v := out[i].Vectors[0].Values
		clear(v)
		for j := 0; j < 4; j++ {
			x := float32(0.5)
			if (i>>j)&1 == 1 {
				x = -0.5
			}
			v[(i*7+j*5)%len(v)] += x
		}
		// Positions may collide: keep the vector exactly unit length.
		var n float32
		for _, x := range v {
			n += x * x
		}
		if n != 1 {
			clear(v)
			v[i%len(v)] = 1
		}
	}
	return out
}

// TestEnginesShareIndexHash: the same points, under the same metric, in
// pgvector (HNSW), the Qdrant test server and the embedded store give one
// INDEX_HASH; their engine settings differ, so their engine digests do,
// and diff reports that as an engine difference, not a hash difference.
func TestEnginesShareIndexHash(t *testing.T) {
	pts := unitPoints(vectortest.Points(parity.IDInt, 400, 13))
	spec := vectortest.Spec(parity.IDInt)
	spec.Metric = "cosine"
	scans := map[string]*verifier.Scan{}
	spills := map[string]*verifier.Spill{}
	for _, e := range engines(t) {
		s := e.open(t)
		// A promoted stage carries the engine's serving index (pgvector
		// builds HNSW at promotion).
		vectortest.Populate(t, s.(adapters.Stager), "engines", spec, pts)
		sp, err := verifier.NewSpill(t.TempDir(), 0)
		if err != nil {
			t.Fatal(err)
		}
		scans[e.name], spills[e.name] = scan(t, s, sp), sp
		t.Logf("%s: INDEX_HASH %s engine_digest %s engine %v", e.name, scans[e.name].IndexHash().Hex()[:16], scans[e.name].EngineDigest.Hex()[:16], scans[e.name].Settings.Engine)
	}
	pg := scans["pgvector"]
	if got := pg.Settings.Engine["index.type"]; got != "hnsw" {
		t.Fatalf("pgvector index.type %v, want hnsw (the test must compare an ANN engine)", got)
	}
	for _, name := range []string{"qdrant", "embedded"} {
		o := scans[name]
		if o.IndexHash() != pg.IndexHash() {
			t.Errorf("%s INDEX_HASH %s, pgvector %s: want equal (settings %v vs %v)", name, o.IndexHash().Hex(), pg.IndexHash().Hex(), o.Settings.Hashed, pg.Settings.Hashed)
		}
		if o.EngineDigest == pg.EngineDigest {
			t.Errorf("%s engine digest equals pgvector's although their engine settings differ", name)
		}
		d, err := verifier.Diff("pgvector", name, pg, o, spills["pgvector"], spills[name])
		if err != nil {
			t.Fatal(err)
		}
		if !d.Equal || d.EngineEqual || len(d.EngineDiff) == 0 {
			t.Errorf("diff pgvector %s: equal %v, engine_equal %v, engine diff %v: want equal with an engine difference", name, d.Equal, d.EngineEqual, d.EngineDiff)
		}
		for _, s := range d.SettingsDiff {
			if s.Hashed {
				t.Errorf("diff pgvector %s: semantic setting %s differs (%v vs %v)", name, s.Key, s.From, s.To)
			}
		}
		// pgvector's HNSW default ef_construction is 64, Qdrant's 100; the
		// embedded store has no ANN index.
		key, to := "index.ef_construction", any(100)
		if name == "embedded" {
			key, to = "index.type", "exact"
		}
		found := false
		for _, s := range d.EngineDiff {
			if s.Key == key && fmt.Sprint(s.To) == fmt.Sprint(to) && s.Engine && !s.Hashed {
				found = true
			}
		}
		if !found {
			t.Errorf("diff pgvector %s: engine diff %+v does not show %s -> %v", name, d.EngineDiff, key, to)
		}
	}
}
