package replicate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"
)

// Analyzer splits a document into chunks. Its Version goes into the
// settings digest, so two regions chunked differently never hash equal.
type Analyzer struct {
	// ChunkSize and Overlap are counted in words (whitespace-separated).
	ChunkSize int `yaml:"chunk_size" json:"chunk_size"`
	Overlap   int `yaml:"overlap" json:"overlap"`
	// Normalize is the Unicode normalisation form: NFC, NFKC or none.
	Normalize string `yaml:"normalize" json:"normalize"`
	Lowercase bool   `yaml:"lowercase" json:"lowercase"`
}

// DefaultAnalyzer is used when the config names none.
var DefaultAnalyzer = Analyzer{ChunkSize: 200, Overlap: 40, Normalize: "NFKC", Lowercase: false}

// Validate checks the parameters.
func (a Analyzer) Validate() error {
	switch {
	case a.ChunkSize < 1:
		return errors.New("chunk_size must be at least 1")
	case a.Overlap < 0 || a.Overlap >= a.ChunkSize:
		return fmt.Errorf("overlap must be in [0, chunk_size) (got %d with chunk_size %d)", a.Overlap, a.ChunkSize)
	}
	switch strings.ToUpper(a.Normalize) {
	case "NFC", "NFKC", "NONE", "":
	default:
		return fmt.Errorf("normalize %q: want NFC, NFKC or none", a.Normalize)
	}
	return nil
}

// Version is the analyzer's identity for settings digests.
func (a Analyzer) Version() string {
	n := strings.ToUpper(a.Normalize)
	if n == "" || n == "NONE" {
		n = "none"
	}
	return fmt.Sprintf("words/v1 size=%d overlap=%d norm=%s lower=%t", a.ChunkSize, a.Overlap, n, a.Lowercase)
}

// Chunk returns the chunks of text.
func (a Analyzer) Chunk(text string) []string {
	var out []string
	a.ChunkReader(strings.NewReader(text), func(_ int, c string) error {
		out = append(out, c)
		return nil
	})
	return out
}

// maxWord bounds one whitespace-free run of text (a word) in a source.
const maxWord = 64 << 20

// ChunkReader streams the chunks of the text r yields to fn, in order,
// holding only one chunk's words at a time: memory does not grow with the
// size of the text. It returns the number of chunks. The chunks are those
// Chunk returns.
func (a Analyzer) ChunkReader(r io.Reader, fn func(i int, chunk string) error) (int, error) {
	switch strings.ToUpper(a.Normalize) {
	case "NFC":
		r = norm.NFC.Reader(r)
	case "NFKC":
		r = norm.NFKC.Reader(r)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxWord)
	sc.Split(bufio.ScanWords)
	step := a.ChunkSize - a.Overlap
	words := make([]string, 0, a.ChunkSize)
	fresh, n := 0, 0
	emit := func() error {
		err := fn(n, strings.Join(words, " "))
		n++
		fresh = 0
		return err
	}
	for sc.Scan() {
		w := sc.Text()
		if a.Lowercase {
			w = strings.ToLower(w)
		}
		words = append(words, w)
		fresh++
		if len(words) == a.ChunkSize {
			if err := emit(); err != nil {
				return n, err
			}
			words = append(words[:0], words[step:]...)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return n, fmt.Errorf("a word longer than %d MiB (no whitespace)", maxWord>>20)
		}
		return n, err
	}
	if fresh > 0 {
		if err := emit(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// idNamespace is the UUIDv5 namespace of chunk ids (part of the published
// format: every region and every tool derives the same ids).
var idNamespace = uuid.MustParse("6f1d3a52-4b0e-5c7a-9e21-7a0b6c2d9f10")

// ChunkID is the deterministic point id of chunk i of a source document:
// UUIDv5(namespace, source_id + "\x00" + i).
func ChunkID(sourceID string, i int) string {
	return uuid.NewSHA1(idNamespace, []byte(fmt.Sprintf("%s\x00%d", sourceID, i))).String()
}
