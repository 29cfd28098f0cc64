package parity

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gowebpki/jcs"
)

func TestCanonicalPayload(t *testing.T) {
	cases := []struct{ in, want string }{
		{``, `{}`},
		{`null`, `{}`},
		{` {} `, `{}`},
		{`{"b":1,"a":2}`, `{"a":2,"b":1}`},
		{"{ \"a\" : [1.0, 2.50, 1e2, -0] }", `{"a":[1,2.5,100,0]}`},
		{`{"s":"\u00e9\n"}`, "{\"s\":\"é\\n\"}"},
		// RFC 8785 sorts keys by UTF-16 code units.
		// U+FB01 sorts after U+1F600 in UTF-16 (0xFB01 > 0xD83D), before it
		// by code point.
		{`{"\ufb01":1,"\ud83d\ude00":2,"z":3}`, "{\"z\":3,\"😀\":2,\"ﬁ\":1}"},
	}
	for _, c := range cases {
		got, err := CanonicalPayload([]byte(c.in))
		if err != nil {
			t.Fatalf("CanonicalPayload(%q): %v", c.in, err)
		}
		if string(got) != c.want {
			t.Errorf("CanonicalPayload(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	for _, bad := range []string{`{"a":}`, `{"a":1`, `{"a":1}{"b":2}`} {
		if _, err := CanonicalPayload([]byte(bad)); err == nil {
			t.Errorf("CanonicalPayload(%q) succeeded, want an error", bad)
		}
	}
}

func point(id string, vals []float32, payload, text string) *Point {
	return &Point{ID: ID{S: id}, Vectors: []NamedVector{{Values: vals}}, Payload: []byte(payload), Text: text, HasText: true}
}

func TestDigestsSeparateFields(t *testing.T) {
	var h Hasher
	base, err := h.Digests(point("1", []float32{0.5, -0.25}, `{"a":1}`, "t"), 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := h.Digests(point("1", []float32{0.5 + 1e-6, -0.25}, `{"a":1}`, "t"), 1e-6)
	p, _ := h.Digests(point("1", []float32{0.5, -0.25}, `{"a":2}`, "t"), 1e-6)
	x, _ := h.Digests(point("1", []float32{0.5, -0.25}, `{"a":1}`, "u"), 1e-6)
	if v.Vectors == base.Vectors || v.Payload != base.Payload || v.Text != base.Text {
		t.Errorf("a 1e-6 vector change must change only the vector digest")
	}
	if p.Payload == base.Payload || p.Vectors != base.Vectors {
		t.Errorf("a payload change must change only the payload digest")
	}
	if x.Text == base.Text || x.Payload != base.Payload {
		t.Errorf("a text change must change only the text digest")
	}
	// Tolerant digest: a change far below the grid keeps it.
	tiny, _ := h.Digests(point("1", []float32{0.5000000596, -0.25}, `{"a":1}`, "t"), 1e-6)
	if tiny.Vectors == base.Vectors || tiny.VectorsTolerant != base.VectorsTolerant {
		t.Errorf("a one-ulp change must change the exact digest but not the tolerant one")
	}
	// No text differs from empty text.
	nt := point("1", []float32{0.5, -0.25}, `{"a":1}`, "")
	nt.HasText = false
	e, _ := h.Digests(nt, 1e-6)
	et, _ := h.Digests(point("1", []float32{0.5, -0.25}, `{"a":1}`, ""), 1e-6)
	if e.Text == et.Text {
		t.Errorf("absent text and empty text must differ")
	}
	// Unsorted named vectors are refused.
	un := &Point{ID: ID{S: "1"}, Vectors: []NamedVector{{Name: "b"}, {Name: "a"}}}
	if _, err := h.Digests(un, 1e-6); err == nil {
		t.Errorf("unsorted named vectors accepted")
	}
}

// TestPointDigestEncoding pins the published encoding (README "Hash
// format") with an independent computation.
func TestPointDigestEncoding(t *testing.T) {
	var h Hasher
	d, err := h.Digests(point("42", []float32{1, -2}, `{"b":true,"a":"x"}`, "hi"), 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	vec := []byte("ragparity/vectors/v1\x00\x00\x00\x01" + "\x00\x00\x00\x00" + "\x00\x00\x00\x02" + "\x00\x00\x80\x3f" + "\x00\x00\x00\xc0")
	if got, want := d.Vectors, Digest(sha256.Sum256(vec)); got != want {
		t.Errorf("vector digest %x, want %x", got, want)
	}
	// Tolerant: 1.2 and -2.1 on a 0.5 grid are 1 and -2.
	dt, err := h.Digests(point("42", []float32{1.2, -2.1}, `{}`, "hi"), 0.5)
	if err != nil {
		t.Fatal(err)
	}
	vecTol := []byte("ragparity/vectors-tolerant/v1\x00\x00\x00\x01" + "\x00\x00\x00\x00" + "\x00\x00\x00\x02" + "\x00\x00\x80\x3f" + "\x00\x00\x00\xc0")
	if got, want := dt.VectorsTolerant, Digest(sha256.Sum256(vecTol)); got != want {
		t.Errorf("tolerant vector digest %x, want %x", got, want)
	}
	// Named vectors: sorted by name, each with its length-prefixed name.
	pn := point("7", nil, `{}`, "")
	pn.Vectors = []NamedVector{{Name: "a", Values: []float32{1}}, {Name: "bb", Values: []float32{-2, 1}}}
	dn, err := h.Digests(pn, 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	vecN := []byte("ragparity/vectors/v1\x00\x00\x00\x02" + "\x00\x00\x00\x01a" + "\x00\x00\x00\x01" + "\x00\x00\x80\x3f" +
		"\x00\x00\x00\x02bb" + "\x00\x00\x00\x02" + "\x00\x00\x00\xc0" + "\x00\x00\x80\x3f")
	if got, want := dn.Vectors, Digest(sha256.Sum256(vecN)); got != want {
		t.Errorf("named vectors digest %x, want %x", got, want)
	}
	if got, want := d.Payload, Digest(sha256.Sum256([]byte(`ragparity/payload/v1{"a":"x","b":true}`))); got != want {
		t.Errorf("payload digest mismatch")
	}
	if got, want := d.Text, Digest(sha256.Sum256([]byte("ragparity/text/v1\x01hi"))); got != want {
		t.Errorf("text digest mismatch")
	}
	var pb bytes.Buffer
	pb.WriteString("ragparity/point/v1\x00\x00\x00\x0242")
	pb.Write(d.Vectors[:])
	pb.Write(d.Payload[:])
	pb.Write(d.Text[:])
	if got, want := PointDigest("42", &d, false), Digest(sha256.Sum256(pb.Bytes())); got != want {
		t.Errorf("point digest mismatch")
	}
	b := sha256.Sum256([]byte("ragparity/bucket/v1" + "42"))
	if got, want := BucketOf("42", 4096), int(b[0])<<4|int(b[1])>>4; got != want {
		t.Errorf("BucketOf = %d, want %d", got, want)
	}
}

func TestLeafOrderIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ds := make([]Digest, 500)
	for i := range ds {
		for j := range ds[i] {
			ds[i][j] = byte(r.Uint32())
		}
	}
	var a, b, c Leaf
	for _, d := range ds {
		a.Add(d)
	}
	for i := len(ds) - 1; i >= 0; i-- {
		b.Add(ds[i])
	}
	var half Leaf
	for _, d := range ds[:250] {
		c.Add(d)
	}
	for _, d := range ds[250:] {
		half.Add(d)
	}
	c.Merge(half)
	if a != b || a != c || a.Count != 500 {
		t.Errorf("leaf depends on order or merge: %v %v %v", a.Count, b.Count, c.Count)
	}
	// Carry across limbs: 0xff..ff + 1 = 0 (mod 2^256).
	var l Leaf
	var ones, one Digest
	for i := range ones {
		ones[i] = 0xff
	}
	one[31] = 1
	l.Add(ones)
	l.Add(one)
	if l.Sum != (Digest{}) || l.Count != 2 {
		t.Errorf("sum mod 2^256 wrong: %x", l.Sum)
	}
}

func TestRoot(t *testing.T) {
	leaves := make([]Leaf, 16)
	leaves[3].Add(Digest{1})
	r1 := Root(leaves)
	leaves[3].Add(Digest{2})
	if Root(leaves) == r1 {
		t.Errorf("root unchanged after a leaf change")
	}
}

func TestSettingsDigest(t *testing.T) {
	a, _ := SettingsDigest(map[string]any{"vector.dim": 3, "vector.metric": "cosine"})
	b, _ := SettingsDigest(map[string]any{"vector.metric": "cosine", "vector.dim": 3.0})
	c, _ := SettingsDigest(map[string]any{"vector.metric": "l2", "vector.dim": 3})
	if a != b || a == c {
		t.Errorf("settings digest: key order or number form matters, or metric does not")
	}
	if _, err := MergeSettings(Settings{Hashed: map[string]any{"vector.metric": "l2"}}, map[string]any{"vector.metric": "cosine"}); err == nil {
		t.Errorf("a declared setting contradicting the store was accepted")
	}
}

// FuzzCanonicalPayload: canonical form is valid JSON, idempotent, and
// independent of re-encoding (key order, spacing).
func FuzzCanonicalPayload(f *testing.F) {
	f.Add([]byte(`{"b":1,"a":[1,2,{"y":true,"x":null}]}`))
	f.Add([]byte(`{"n":1e21,"m":1e-7,"k":-0.0,"s":"\ud83d\ude00"}`))
	f.Add([]byte(`[1, "two", {"3": 3}]`))
	f.Add([]byte(`"just a string"`))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := CanonicalPayload(in)
		if err != nil {
			return
		}
		if !json.Valid(c) {
			t.Fatalf("canonical form is not valid JSON: %q", c)
		}
		c2, err := CanonicalPayload(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not idempotent: %q -> %q (%v)", c, c2, err)
		}
		var v any
		if json.Unmarshal(in, &v) == nil {
			re, _ := json.MarshalIndent(v, "", "   ")
			c3, err := CanonicalPayload(re)
			if err == nil && !bytes.Equal(c, c3) {
				t.Fatalf("re-encoding changed the canonical form: %q vs %q", c, c3)
			}
		}
	})
}

// FuzzFastCanonical: whenever the fast path answers, the RFC 8785 library
// gives exactly the same bytes.
func FuzzFastCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1,2.5,-0,1e3,{"y":true,"x":null}]}`, `{"n": 123456789012345, "f": 0.1, "e": 1E-7, "s": "é ü"}`,
		`{"a":1,"a":2}`, `[-0.0, 0e0, 1.0e+2, 100000000000000000000000]`, `{"k":"x\ny"}`, `"str"`, `{"z":{}, "y":[], "x":""}`} {
		f.Add([]byte(s))
	}
	// One parser for every input, as a Hasher reuses it: what an earlier
	// payload left in its buffers must never reach a later answer.
	var shared fastParser
	shared.canonical(nil, []byte(`{"q":{"r":{"s":[1,{"t":"u","v":[{"w":2}]}]}},"a":"zzzzzzzzzzzzzzzz"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		fast, ok := fastCanonical(nil, in)
		reused, rok := shared.canonical(nil, in)
		if rok != ok || !bytes.Equal(reused, fast) {
			t.Fatalf("reused parser %q (%v), fresh %q (%v) for %q", reused, rok, fast, ok, in)
		}
		if !ok {
			return
		}
		lib, err := jcs.Transform(in)
		if err != nil {
			t.Fatalf("fast path accepted %q, library rejects it: %v", in, err)
		}
		if !bytes.Equal(fast, lib) {
			t.Fatalf("fast path %q, library %q for %q", fast, lib, in)
		}
	})
}

// TestEngineDigestSeparate: the engine digest is domain-separated from the
// settings digest, and an engine setting never reaches INDEX_HASH: a
// declared key the store reports as an engine setting stays one.
func TestEngineDigestSeparate(t *testing.T) {
	m := map[string]any{"index.type": "hnsw"}
	e, _ := EngineDigest(m)
	s, _ := SettingsDigest(m)
	if e == s {
		t.Error("engine and settings digests of the same map are equal: no domain separation")
	}
	empty, _ := EngineDigest(nil)
	if e2, _ := EngineDigest(map[string]any{}); e2 != empty {
		t.Error("nil and empty engine settings digest differently")
	}
	store := NewSettings()
	store.Hashed["vector.dim"] = 3
	store.Engine["index.type"] = "hnsw"
	got, err := MergeSettings(store, map[string]any{"index.type": "hnsw", "model_tag": "glove"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Hashed["index.type"]; ok || got.Engine["index.type"] != "hnsw" || got.Hashed["model_tag"] != "glove" {
		t.Errorf("merged %+v: want index.type in Engine only, model_tag hashed", got)
	}
	if _, err := MergeSettings(store, map[string]any{"index.type": "ivfflat"}); err == nil {
		t.Error("a declared engine setting that contradicts the store was accepted")
	}
	d := DiffSettings(store, got)
	for _, x := range d {
		if x.Key == "index.type" {
			t.Errorf("diff of equal engine settings lists index.type: %+v", x)
		}
	}
	other := NewSettings()
	other.Hashed["vector.dim"] = 3
	other.Engine["index.type"] = "exact"
	d = DiffSettings(store, other)
	if len(d) != 1 || !d[0].Engine || d[0].Hashed || d[0].Key != "index.type" {
		t.Errorf("diff %+v: want one engine difference, index.type", d)
	}
}

// TestSparseAndMultiEncoding: a sparse vector and a multivector never hash
// like a dense vector of the same values; a sparse vector's indices must
// be strictly ascending; a multivector's values must divide evenly.
func TestSparseAndMultiEncoding(t *testing.T) {
	var h Hasher
	digest := func(v NamedVector) (Digest, error) {
		d, err := h.Digests(&Point{ID: ID{S: "1"}, Vectors: []NamedVector{v}}, 1e-6)
		return d.Vectors, err
	}
	dense, _ := digest(NamedVector{Name: "v", Values: []float32{1, 2}})
	sparse, err := digest(NamedVector{Name: "v", Sparse: true, Indices: []uint32{3, 7}, Values: []float32{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	sparse2, _ := digest(NamedVector{Name: "v", Sparse: true, Indices: []uint32{3, 8}, Values: []float32{1, 2}})
	multi, err := digest(NamedVector{Name: "v", Multi: 2, Values: []float32{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	multi1, _ := digest(NamedVector{Name: "v", Multi: 1, Values: []float32{1, 2}})
	if dense == sparse || dense == multi || sparse == multi || sparse == sparse2 || multi == multi1 {
		t.Errorf("digests collide: dense %x sparse %x sparse' %x multi %x multi1 %x", dense[:4], sparse[:4], sparse2[:4], multi[:4], multi1[:4])
	}
	if _, err := digest(NamedVector{Name: "v", Sparse: true, Indices: []uint32{7, 3}, Values: []float32{1, 2}}); err == nil {
		t.Errorf("descending sparse indices accepted")
	}
	if _, err := digest(NamedVector{Name: "v", Sparse: true, Indices: []uint32{3}, Values: []float32{1, 2}}); err == nil {
		t.Errorf("sparse vector with fewer indices than values accepted")
	}
	if _, err := digest(NamedVector{Name: "v", Multi: 3, Values: []float32{1, 2}}); err == nil {
		t.Errorf("multivector of 3 vectors over 2 values accepted")
	}
}

// DigestsExact gives the same field digests as Digests, the tolerant
// vectors digest left zero, for dense, sparse and multivectors alike.
func TestDigestsExactMatchesDigests(t *testing.T) {
	p := Point{ID: ID{S: "7"}, Vectors: []NamedVector{
		{Name: "", Values: []float32{0.25, -1.5, 3}},
		{Name: "colbert", Values: []float32{1, 2, 3, 4}, Multi: 2},
		{Name: "sparse", Values: []float32{0.5, 0.75}, Indices: []uint32{3, 9}, Sparse: true},
	}, Payload: []byte(`{"b":1,"a":2}`), Text: "t", HasText: true}
	var h, h2 Hasher
	full, err := h.Digests(&p, 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	exact, err := h2.DigestsExact(&p)
	if err != nil {
		t.Fatal(err)
	}
	if exact.VectorsTolerant != (Digest{}) {
		t.Errorf("DigestsExact computed a tolerant digest")
	}
	exact.VectorsTolerant = full.VectorsTolerant
	if exact != full {
		t.Errorf("DigestsExact = %+v, Digests = %+v", exact, full)
	}
}

// The exact encoding keeps every bit of a value: a NaN's payload, the sign
// of zero, a subnormal (the little-endian fast path copies memory).
func TestExactVectorKeepsBits(t *testing.T) {
	var h Hasher
	vals := []float32{math.Float32frombits(0x7fc00001), math.Float32frombits(0x80000000), math.Float32frombits(0x00000001)}
	d, err := h.DigestsExact(point("1", vals, `{}`, ""))
	if err != nil {
		t.Fatal(err)
	}
	vec := []byte("ragparity/vectors/v1\x00\x00\x00\x01" + "\x00\x00\x00\x00" + "\x00\x00\x00\x03" + "\x01\x00\xc0\x7f" + "\x00\x00\x00\x80" + "\x01\x00\x00\x00")
	if got, want := d.Vectors, Digest(sha256.Sum256(vec)); got != want {
		t.Errorf("vector digest %x, want %x", got, want)
	}
}
