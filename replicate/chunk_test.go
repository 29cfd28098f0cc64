package replicate

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// refChunk is the in-memory chunker the streaming one replaced: the
// reference the streaming chunks must equal.
func refChunk(a Analyzer, text string) []string {
	switch strings.ToUpper(a.Normalize) {
	case "NFC":
		text = norm.NFC.String(text)
	case "NFKC":
		text = norm.NFKC.String(text)
	}
	if a.Lowercase {
		text = strings.ToLower(text)
	}
	words := strings.Fields(text)
	if len(words) == 0 {
		return nil
	}
	step := a.ChunkSize - a.Overlap
	var out []string
	for start := 0; ; start += step {
		end := min(start+a.ChunkSize, len(words))
		out = append(out, strings.Join(words[start:end], " "))
		if end == len(words) {
			return out
		}
	}
}

func checkChunks(t *testing.T, a Analyzer, text string) {
	t.Helper()
	want := refChunk(a, text)
	if got := a.Chunk(text); !slices.Equal(got, want) {
		t.Fatalf("%s on %q:\n got %q\nwant %q", a.Version(), text, got, want)
	}
}

func TestChunkReaderEqualsInMemoryChunking(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	vocab := []string{"a", "Ǆ", "ﬁle", "Ångström", "x\u00a0y", "word", "ΣΊΣΥΦΟΣ", "e\u0301", "\u3000", "\t", "\n", "日本語", "ｶﾀｶﾅ"}
	for _, a := range []Analyzer{{ChunkSize: 1}, {ChunkSize: 4, Overlap: 1, Normalize: "NFKC", Lowercase: true},
		{ChunkSize: 5, Overlap: 4, Normalize: "NFC"}, {ChunkSize: 200, Overlap: 40, Normalize: "NFKC"}, {ChunkSize: 3, Overlap: 0, Normalize: "none"}} {
		for n := 0; n < 60; n++ {
			var b strings.Builder
			for i := 0; i < r.IntN(40*n+1); i++ {
				b.WriteString(vocab[r.IntN(len(vocab))])
				if r.IntN(3) > 0 {
					b.WriteByte(' ')
				}
			}
			checkChunks(t, a, b.String())
		}
	}
}

func FuzzChunkReader(f *testing.F) {
	f.Add("one two three four five six seven", 3, 1, true)
	f.Add("ﬁ ﬂ  Ǆ\u00a0x", 2, 0, false)
	f.Add("", 1, 0, false)
	f.Fuzz(func(t *testing.T, text string, size, overlap int, lower bool) {
		if size < 1 || size > 50 || overlap < 0 || overlap >= size || !utf8Valid(text) {
			return
		}
		checkChunks(t, Analyzer{ChunkSize: size, Overlap: overlap, Normalize: "NFKC", Lowercase: lower}, text)
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

var _ = norm.NFC
