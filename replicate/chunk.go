package replicate

import (
	"errors"
	"fmt"
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

// idNamespace is the UUIDv5 namespace of chunk ids (part of the published
// format: every region and every tool derives the same ids).
var idNamespace = uuid.MustParse("6f1d3a52-4b0e-5c7a-9e21-7a0b6c2d9f10")

// ChunkID is the deterministic point id of chunk i of a source document:
// UUIDv5(namespace, source_id + "\x00" + i).
func ChunkID(sourceID string, i int) string {
	return uuid.NewSHA1(idNamespace, []byte(fmt.Sprintf("%s\x00%d", sourceID, i))).String()
}
