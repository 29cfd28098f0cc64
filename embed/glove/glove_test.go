package glove

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/embed"
	"github.com/ragparity/ragparity/embed/hashembed"
	"github.com/ragparity/ragparity/probe/beir"
)

func mustNew(t *testing.T) *Embedder {
	t.Helper()
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(); err != nil {
		t.Fatal(err)
	}
	return e
}

func embedOne(t *testing.T, e embed.Embedder, text string) []float32 {
	t.Helper()
	vs, err := e.Embed(context.Background(), []string{text})
	if err != nil {
		t.Fatal(err)
	}
	return vs[0]
}

func cos(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func norm(v []float32) float64 { return math.Sqrt(cos(v, v)) }

func TestLoad(t *testing.T) {
	e := mustNew(t)
	if got, want := e.Dim(), 100; got != want {
		t.Fatalf("Dim() = %d, want %d", got, want)
	}
	l := e.Lock()
	sum := sha256.Sum256(modelFile)
	if got, want := hex.EncodeToString(sum[:]), l.SHA256; got != want {
		t.Fatalf("embedded model sha256 %s, lock says %s", got, want)
	}
	if got, want := len(modelFile), l.Bytes; got != want {
		t.Fatalf("embedded model is %d bytes, lock says %d", got, want)
	}
	if got, want := e.ModelTag(), "glove-wink-sg-100d@1.1.0/q8/65536w/sif1e-5+oov1/"+l.SHA256[:12]; got != want {
		t.Fatalf("ModelTag() = %q, want %q", got, want)
	}
	if len(modelFile) > 8<<20 {
		t.Errorf("model file is %d bytes; keep it under 8 MiB", len(modelFile))
	}
	e2, _ := New()
	if e2 != e {
		t.Error("New() should share one loaded model")
	}
}

func TestOpen(t *testing.T) {
	t.Run("BareName", func(t *testing.T) {
		e, err := embed.Open("glove")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.ModelTag(), "glove-wink-sg-100d@1.1.0/q8") {
			t.Fatalf("ModelTag() = %q", e.ModelTag())
		}
	})
	t.Run("UnknownParam", func(t *testing.T) {
		_, err := embed.Open("glove://?dim=50")
		var ce *embed.ConfigError
		if !errors.As(err, &ce) || ce.Field != "dim" || !errors.Is(err, embed.ErrUnknownParam) {
			t.Fatalf("err = %v, want a ConfigError for dim wrapping ErrUnknownParam", err)
		}
	})
}

func TestSHA256Mismatch(t *testing.T) {
	bad := bytes.Clone(modelFile)
	bad[len(bad)-1] ^= 1
	e, err := newEmbedder(bad, lockFile)
	if err != nil {
		t.Fatal(err)
	}
	err = e.Load()
	if err == nil || !strings.Contains(err.Error(), "sha256") || !strings.HasPrefix(err.Error(), "glove: ") {
		t.Fatalf("Load() = %v, want a glove: sha256 mismatch error", err)
	}
	if _, err := e.Embed(context.Background(), []string{"x"}); err == nil {
		t.Fatal("Embed on a mismatched model succeeded")
	}
}

func TestWordSimilarity(t *testing.T) {
	e := mustNew(t)
	word := func(w string) []float32 {
		v, ok := e.WordVector(w)
		if !ok {
			t.Fatalf("%q not in vocabulary", w)
		}
		return v
	}
	king, queen, carrot := word("king"), word("queen"), word("carrot")
	if kq, kc := cos(king, queen), cos(king, carrot); kq <= kc+0.3 {
		t.Errorf("cos(king, queen) = %.3f, cos(king, carrot) = %.3f; want the first clearly larger", kq, kc)
	}
	// One-word texts embed to the word's vector.
	if got := cos(embedOne(t, e, "King"), king); got < 0.9999 {
		t.Errorf("cos(Embed(King), king) = %.5f, want 1", got)
	}
	// Sentences: a paraphrase is closer than an unrelated sentence.
	a := embedOne(t, e, "The cat rested on the carpet.")
	b := embedOne(t, e, "The kitten slept on the rug.")
	c := embedOne(t, e, "Interest rates rose in the bond market.")
	if ab, ac := cos(a, b), cos(a, c); ab <= ac {
		t.Errorf("cos(cat, kitten) = %.3f <= cos(cat, rates) = %.3f", ab, ac)
	}
}

func TestDeterministicAndNormalised(t *testing.T) {
	e := mustNew(t)
	texts := []string{
		"Vitamin D deficiency is associated with tuberculosis.",
		"BRCA1 and p53 mutations",
		"zzqxjv unknownish-token 42",
		"Ünïcödé façade naïve café",
		strings.Repeat("the ", 1000),
	}
	v1, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := e.Embed(context.Background(), texts)
	for i := range texts {
		if got := norm(v1[i]); math.Abs(got-1) > 1e-5 {
			t.Errorf("text %d: norm %.7f, want 1", i, got)
		}
		for j := range v1[i] {
			if v1[i][j] != v2[i][j] || math.IsNaN(float64(v1[i][j])) {
				t.Fatalf("text %d component %d: %v then %v", i, j, v1[i][j], v2[i][j])
			}
		}
	}
	// Order and batching do not matter.
	one := embedOne(t, e, texts[2])
	if cos(one, v1[2]) != cos(v1[2], v1[2]) {
		t.Error("a text embeds differently alone and in a batch")
	}
}

// TestGoldenVector pins the vector of one text. If it fails, the algorithm
// changed: change algo (so ModelTag changes) and update the digest.
func TestGoldenVector(t *testing.T) {
	e := mustNew(t)
	v := embedOne(t, e, "Vitamin D deficiency raises the risk of TB; xq7z unknown.")
	h := sha256.New()
	for _, x := range v {
		binary.Write(h, binary.LittleEndian, x)
	}
	if got, want := hex.EncodeToString(h.Sum(nil)), goldenDigest; got != want {
		t.Fatalf("vector digest %s, want %s (algorithm changed? update algo and this digest)", got, want)
	}
}

const goldenDigest = "12dcc8436583123ae5245100b0e0feff7ccfcb75677332d21e0e7ac5b11e667e"

func TestEmptyText(t *testing.T) {
	e := mustNew(t)
	for _, text := range []string{"", "   ", "!!! ... ---", "\n\t"} {
		v := embedOne(t, e, text)
		for j, x := range v {
			if x != 0.1 {
				t.Fatalf("%q: component %d = %v, want the fixed vector (0.1 everywhere)", text, j, x)
			}
		}
	}
	vs, err := e.Embed(context.Background(), nil)
	if err != nil || len(vs) != 0 {
		t.Fatalf("Embed(nil) = %v, %v; want empty, nil", vs, err)
	}
}

func TestUnknownTokens(t *testing.T) {
	e := mustNew(t)
	if _, ok := e.WordVector("xq7zvv"); ok {
		t.Skip("test token is in the vocabulary")
	}
	a, b := embedOne(t, e, "xq7zvv"), embedOne(t, e, "yq8wuu")
	if got := cos(a, b); math.Abs(got) > 0.4 {
		t.Errorf("two unknown tokens have cosine %.3f; want near 0", got)
	}
	if got := cos(a, embedOne(t, e, "XQ7ZVV")); got < 0.9999 {
		t.Errorf("an unknown token's vector depends on case (cos %.4f)", got)
	}
}

func TestCancelledContext(t *testing.T) {
	e := mustNew(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Embed(ctx, []string{"a"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestSciFactSubset measures glove and the hash baseline on the repository's
// SciFact subset (60 queries, 470 documents). Measured when written:
// glove nDCG@10 0.452, recall@10 0.594; hash nDCG@10 0.342, recall@10 0.475.
func TestSciFactSubset(t *testing.T) {
	ds, err := beir.Load(testdataSciFact)
	if err != nil {
		t.Fatal(err)
	}
	g := mustNew(t)
	h, _ := hashembed.New(hashembed.DefaultDim)
	gr, err := beir.Evaluate(context.Background(), g, ds, 10, 128)
	if err != nil {
		t.Fatal(err)
	}
	hr, err := beir.Evaluate(context.Background(), h, ds, 10, 128)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("glove: %s", gr)
	t.Logf("hash:  %s", hr)
	if got, want := gr.Queries, 60; got != want {
		t.Fatalf("judged queries = %d, want %d", got, want)
	}
	if gr.Recall < 0.55 || gr.NDCG < 0.42 {
		t.Errorf("glove recall@10 %.3f, nDCG@10 %.3f; floors 0.55, 0.42", gr.Recall, gr.NDCG)
	}
	if gr.Recall < hr.Recall+0.05 {
		t.Errorf("glove recall@10 %.3f is not clearly above hash's %.3f", gr.Recall, hr.Recall)
	}
}
