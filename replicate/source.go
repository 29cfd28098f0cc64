// Package replicate rebuilds regions from source texts behind an
// idempotency fence: sources are chunked with the configured analyzer,
// each chunk is embedded once, and every target region is written through a
// staged collection that is promoted atomically.
package replicate

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/ragparity/ragparity/adapters"
	"github.com/ragparity/ragparity/parity"
)

// Document is one source text.
type Document struct {
	// SourceID identifies the document across revisions (a relative path,
	// a corpus _id).
	SourceID string
	// Revision changes whenever the text changes (a content hash by
	// default, or the corpus's own revision field).
	Revision string
	// Text is the document's text, or "" when Open streams it (a large
	// file is never held in memory whole).
	Text string
	// Open, when set, opens the text (Text is then ""); it may be called
	// more than once.
	Open func() (io.ReadCloser, error)
	// Where names the file and line the document came from, for messages.
	Where string
}

// Reader opens the document's text.
func (d Document) Reader() (io.ReadCloser, error) {
	if d.Open != nil {
		return d.Open()
	}
	return io.NopCloser(strings.NewReader(d.Text)), nil
}

// Source yields documents in a stable order.
type Source interface {
	// Each calls fn for every document. Bad input is an error naming the
	// file (and line).
	Each(ctx context.Context, fn func(Document) error) error
	// Digest identifies the source's content (all source ids and
	// revisions); equal digests mean the same documents.
	String() string
}

// OpenSource opens a folder of text files, a BEIR corpus.jsonl (a file
// path, or a folder holding corpus.jsonl), or a blob store URL
// (s3://bucket/prefix?..., file:///path) whose objects are text files.
func OpenSource(spec string) (Source, error) {
	if i := strings.Index(spec, "://"); i > 0 {
		scheme := strings.ToLower(spec[:i])
		if slices.Contains(adapters.BlobSchemes(), scheme) {
			return &blobSource{url: spec}, nil
		}
		return nil, fmt.Errorf("source %s: unknown scheme %q (want a folder, a corpus.jsonl, or a blob store URL: %s)",
			adapters.Redact(spec), scheme, strings.Join(adapters.BlobSchemes(), ", "))
	}
	st, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if !st.IsDir() {
		if strings.HasSuffix(spec, ".jsonl") {
			return &jsonlSource{path: spec}, nil
		}
		return nil, fmt.Errorf("source %s: want a folder of text files or a BEIR corpus.jsonl", spec)
	}
	if _, err := os.Stat(filepath.Join(spec, "corpus.jsonl")); err == nil {
		return &jsonlSource{path: filepath.Join(spec, "corpus.jsonl")}, nil
	}
	return &dirSource{root: spec}, nil
}

func contentRevision(text string) string {
	h := sha256.Sum256([]byte(text))
	return hex.EncodeToString(h[:16])
}

// jsonlSource reads a BEIR corpus: {"_id", "title", "text"} per line, with
// an optional "revision".
type jsonlSource struct{ path string }

func (s *jsonlSource) String() string { return s.path }

type corpusLine struct {
	ID       *json.RawMessage `json:"_id"`
	Title    string           `json:"title"`
	Text     string           `json:"text"`
	Revision string           `json:"revision"`
	Metadata json.RawMessage  `json:"metadata"`
}

func (s *jsonlSource) Each(ctx context.Context, fn func(Document) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	seen := map[string]int{}
	for line := 1; ; line++ {
		if line%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		b, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) == 0 {
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s:%d: %w", s.path, line, err)
			}
			continue
		}
		where := fmt.Sprintf("%s:%d", s.path, line)
		var cl corpusLine
		dec := json.NewDecoder(bytes.NewReader(b))
		if derr := dec.Decode(&cl); derr != nil {
			return fmt.Errorf("%s: not a JSON object: %v", where, derr)
		}
		if cl.ID == nil {
			return fmt.Errorf("%s: missing \"_id\"", where)
		}
		var id string
		if json.Unmarshal(*cl.ID, &id) != nil {
			var n json.Number
			if json.Unmarshal(*cl.ID, &n) != nil {
				return fmt.Errorf("%s: \"_id\" must be a string or a number", where)
			}
			id = n.String()
		}
		if id == "" {
			return fmt.Errorf("%s: empty \"_id\"", where)
		}
		if prev, dup := seen[id]; dup {
			return fmt.Errorf("%s: \"_id\" %q already used on line %d", where, id, prev)
		}
		seen[id] = line
		text := strings.TrimSpace(cl.Text)
		if t := strings.TrimSpace(cl.Title); t != "" {
			text = t + "\n" + text
		}
		if strings.TrimSpace(text) == "" {
			return fmt.Errorf("%s: document %q is empty (no title or text)", where, id)
		}
		rev := cl.Revision
		if rev == "" {
			rev = contentRevision(text)
		}
		if err := fn(Document{SourceID: id, Revision: rev, Text: text, Where: where}); err != nil {
			return err
		}
		if err == io.EOF {
			return nil
		}
	}
}

// dirSource reads every regular, non-hidden file under a folder as UTF-8
// text; source_id is the slash-separated relative path.
type dirSource struct{ root string }

func (s *dirSource) String() string { return s.root }

func (s *dirSource) Each(ctx context.Context, fn func(Document) error) error {
	var files []string
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != s.root {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("source %s: %w", s.root, err)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return fmt.Errorf("source %s: no files", s.root)
	}
	for _, p := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		rev, err := scanTextFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.root, p)
		open := func() (io.ReadCloser, error) { return os.Open(p) }
		if err := fn(Document{SourceID: filepath.ToSlash(rel), Revision: rev, Open: open, Where: p}); err != nil {
			return err
		}
	}
	return nil
}

// textDocument checks that a source file is a non-empty UTF-8 text.
func textDocument(where string, b []byte) (string, error) {
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return "", fmt.Errorf("source %s: not UTF-8 text", where)
	}
	if strings.TrimSpace(string(b)) == "" {
		return "", fmt.Errorf("source %s: empty document", where)
	}
	return string(b), nil
}

// scanTextFile checks, streaming, that a source file is a non-empty UTF-8
// text (textDocument's rules) and returns its content revision.
func scanTextFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var carry []byte // an incomplete rune at the end of the last read
	words := false
	for {
		n, rerr := f.Read(buf[len(carry):])
		chunk := buf[:len(carry)+n]
		h.Write(chunk[len(carry):])
		// Validate up to the last complete rune; carry the rest.
		end := len(chunk)
		if rerr == nil {
			for i := len(chunk) - 1; i >= 0 && i >= len(chunk)-utf8.UTFMax; i-- {
				if utf8.RuneStart(chunk[i]) {
					if !utf8.FullRune(chunk[i:]) {
						end = i
					}
					break
				}
			}
		}
		part := chunk[:end]
		if !utf8.Valid(part) || bytes.IndexByte(part, 0) >= 0 {
			return "", fmt.Errorf("source %s: not UTF-8 text", p)
		}
		if !words && len(bytes.TrimSpace(part)) > 0 {
			words = true
		}
		carry = append(carry[:0], chunk[end:]...)
		copy(buf, carry)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", fmt.Errorf("source %s: %w", p, rerr)
		}
	}
	if !words {
		return "", fmt.Errorf("source %s: empty document", p)
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// ManifestDigest is the digest of a source's manifest: every document's
// source id and revision, in the source's order. Equal digests mean the
// same documents.
func ManifestDigest(ctx context.Context, src Source) (string, int, error) {
	h := sha256.New()
	n := 0
	err := src.Each(ctx, func(d Document) error {
		h.Write(parity.AppendLP(parity.AppendLP(nil, d.SourceID), d.Revision))
		n++
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// hiddenPath reports whether a slash-separated relative path has a
// component starting with "." (skipped, as in a folder source).
func hiddenPath(rel string) bool {
	for _, part := range strings.Split(rel, "/") {
		if strings.HasPrefix(part, ".") {
			return true
		}
	}
	return false
}

// blobSource reads every object under a blob store URL as a UTF-8 text
// document, in key order; source_id is the key relative to the prefix, so
// a bucket and a folder holding the same files give the same documents
// (and the same INDEX_HASH). Credentials come from the URL's query or the
// environment, as for regions' blobs (README, "Blob manifest parity").
type blobSource struct{ url string }

func (s *blobSource) String() string { return adapters.Redact(s.url) }

func (s *blobSource) Each(ctx context.Context, fn func(Document) error) error {
	st, err := adapters.OpenBlob(ctx, s.url)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer st.Close()
	var keys []string
	err = st.List(ctx, func(o parity.ObjectInfo) error {
		if !hiddenPath(o.Key) {
			keys = append(keys, o.Key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("source %s: %w", st.Location(), err)
	}
	if len(keys) == 0 {
		return fmt.Errorf("source %s: no objects", st.Location())
	}
	sort.Strings(keys)
	for _, k := range keys {
		where := st.Location() + " key " + k
		rc, err := st.Open(ctx, k)
		if err != nil {
			return fmt.Errorf("source %s: %w", where, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("source %s: %w", where, err)
		}
		text, err := textDocument(where, b)
		if err != nil {
			return err
		}
		if err := fn(Document{SourceID: k, Revision: contentRevision(text), Text: text, Where: where}); err != nil {
			return err
		}
	}
	return nil
}

// ErrSource marks bad source input.
var ErrSource = errors.New("bad source")
