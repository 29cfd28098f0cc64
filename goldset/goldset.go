// Package goldset reads the gold questions that `ragparity probe` asks every
// region: the project's own format (YAML or JSONL, schema in
// schemas/goldset.schema.json) or a BEIR folder, read directly.
//
// A question has an id, the question text, optional paraphrases, the gold
// ids (document ids, matched against a hit's payload "source_id", or chunk
// ids, matched against the point id) and an optional anchor text.
//
// YAML:
//
//	questions:
//	  - id: q1
//	    question: Does ALDH1 expression predict poor prognosis in breast cancer?
//	    paraphrases: [Is ALDH1 a marker of worse breast cancer outcome?]
//	    gold_ids: ["45638119"]
//	    anchor: ALDH1 is a marker of normal and malignant human mammary stem cells.
//
// JSONL: one such question object per line.
//
// Parsing is strict: an unknown field, an empty question, a question
// without gold ids or a duplicate id is an error naming the file, the line
// and the field (*Error).
package goldset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/ragparity/ragparity/internal/inputerr"
)

// Question is one gold question.
type Question struct {
	ID          string   `json:"id"`
	Question    string   `json:"question"`
	Paraphrases []string `json:"paraphrases,omitempty"`
	// GoldIDs are document ids (a hit's payload "source_id") or chunk ids
	// (a hit's point id), in canonical string form.
	GoldIDs []string `json:"gold_ids"`
	Anchor  string   `json:"anchor,omitempty"`
	// Line is the line the question starts on in its file (0 when unknown).
	Line int `json:"-"`
}

// Variants returns the question followed by its paraphrases.
func (q *Question) Variants() []string {
	return append([]string{q.Question}, q.Paraphrases...)
}

// Set is a loaded gold set.
type Set struct {
	// Source is the file or folder it was read from.
	Source string
	// Format is "yaml", "jsonl" or "beir".
	Format    string
	Questions []Question
}

// Error is a validation error naming the file, the line and the field. It
// is an alias of inputerr.Error, shared with the other input loaders.
type Error = inputerr.Error

// Fields of a question, in schema order.
var fields = []string{"id", "question", "paraphrases", "gold_ids", "anchor"}

// Load reads a gold set: a BEIR folder (queries.jsonl plus qrels/test.tsv
// or qrels.tsv), a .yaml/.yml file or a .jsonl/.ndjson file.
func Load(path string) (*Set, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	if st.IsDir() {
		return LoadBEIR(path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return ParseYAML(path, b)
	case ".jsonl", ".ndjson":
		return ParseJSONL(path, b)
	}
	return nil, &Error{File: path, Err: errors.New("unknown gold set format: want a .yaml, .yml or .jsonl file, or a BEIR folder (queries.jsonl, qrels/test.tsv or qrels.tsv)")}
}

// idString converts a decoded id (a string or an integer) to its string form.
func idString(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", errors.New("missing")
	case string:
		if strings.TrimSpace(x) == "" {
			return "", errors.New("empty")
		}
		return x, nil
	case json.Number:
		if _, err := x.Int64(); err != nil {
			if _, err := fmt.Sscan(string(x), new(uint64)); err != nil {
				return "", fmt.Errorf("%s is not an integer or a string", x)
			}
		}
		return string(x), nil
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x), nil
	case float32, float64:
		return "", fmt.Errorf("%v is not an integer or a string", x)
	}
	return "", fmt.Errorf("want a string or an integer, not %T", v)
}

// rawQuestion is a question as decoded, before validation.
type rawQuestion struct {
	ID          any      `json:"id" yaml:"id"`
	Question    *string  `json:"question" yaml:"question"`
	Paraphrases []string `json:"paraphrases" yaml:"paraphrases"`
	GoldIDs     []any    `json:"gold_ids" yaml:"gold_ids"`
	Anchor      string   `json:"anchor" yaml:"anchor"`
}

// fieldError is a validation error on one field of a question.
type fieldError struct {
	field string
	err   error
}

// validate turns a raw question into a Question, or names the bad field.
func (r *rawQuestion) validate() (Question, *fieldError) {
	var q Question
	id, err := idString(r.ID)
	if err != nil {
		return q, &fieldError{"id", err}
	}
	q.ID = id
	if r.Question == nil {
		return q, &fieldError{"question", errors.New("missing")}
	}
	if strings.TrimSpace(*r.Question) == "" {
		return q, &fieldError{"question", errors.New("empty")}
	}
	q.Question = *r.Question
	for i, p := range r.Paraphrases {
		if strings.TrimSpace(p) == "" {
			return q, &fieldError{fmt.Sprintf("paraphrases[%d]", i), errors.New("empty")}
		}
	}
	q.Paraphrases = r.Paraphrases
	if len(r.GoldIDs) == 0 {
		return q, &fieldError{"gold_ids", errors.New("no gold ids (a question needs at least one gold document or chunk id)")}
	}
	seen := map[string]bool{}
	for i, g := range r.GoldIDs {
		s, err := idString(g)
		if err != nil {
			return q, &fieldError{fmt.Sprintf("gold_ids[%d]", i), err}
		}
		if seen[s] {
			return q, &fieldError{fmt.Sprintf("gold_ids[%d]", i), fmt.Errorf("%q is listed twice", s)}
		}
		seen[s] = true
		q.GoldIDs = append(q.GoldIDs, s)
	}
	q.Anchor = r.Anchor
	return q, nil
}

// add appends q, refusing a duplicate id.
func (s *Set) add(q Question, lines map[string]int) error {
	if prev, dup := lines[q.ID]; dup {
		return fmt.Errorf("duplicate id %q (first used on line %d)", q.ID, prev)
	}
	lines[q.ID] = q.Line
	s.Questions = append(s.Questions, q)
	return nil
}

// ParseJSONL parses one question object per line; name is used in errors.
func ParseJSONL(name string, b []byte) (*Set, error) {
	if err := checkUTF8(name, b); err != nil {
		return nil, err
	}
	s := &Set{Source: name, Format: "jsonl"}
	lines := map[string]int{}
	for n, line := range strings.Split(string(b), "\n") {
		ln := n + 1
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		var r rawQuestion
		if err := dec.Decode(&r); err != nil {
			return nil, jsonError(name, ln, err)
		}
		if dec.More() {
			return nil, &Error{File: name, Line: ln, Err: errors.New("more than one JSON value on the line (JSONL: one question object a line)")}
		}
		q, ferr := r.validate()
		if ferr != nil {
			return nil, &Error{File: name, Line: ln, Field: ferr.field, Err: ferr.err}
		}
		q.Line = ln
		if err := s.add(q, lines); err != nil {
			return nil, &Error{File: name, Line: ln, Field: "id", Err: err}
		}
	}
	if len(s.Questions) == 0 {
		return nil, &Error{File: name, Err: errors.New("no questions")}
	}
	return s, nil
}

func jsonError(name string, line int, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := te.Field
		if f == "" {
			return &Error{File: name, Line: line, Err: fmt.Errorf("want a JSON object, not a JSON %s", te.Value)}
		}
		return &Error{File: name, Line: line, Field: f, Err: fmt.Errorf("want %s, not a JSON %s", kindOf(f), te.Value)}
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return &Error{File: name, Line: line, Field: strings.Trim(f, `"`), Err: fmt.Errorf("unknown field (known: %s)", strings.Join(fields, ", "))}
	}
	return &Error{File: name, Line: line, Err: fmt.Errorf("not a JSON object: %v", err)}
}

func kindOf(field string) string {
	switch field {
	case "paraphrases":
		return "a list of strings"
	case "gold_ids":
		return "a list of ids (strings or integers)"
	case "id":
		return "a string or an integer"
	}
	return "a string"
}

// WriteJSONL writes the set as JSONL, one question a line.
func (s *Set) WriteJSONL(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range s.Questions {
		if err := enc.Encode(&s.Questions[i]); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSONLFile writes the set as JSONL to path atomically: a temporary
// file in the same folder renamed over path, so a failed write leaves
// whatever path held before.
func (s *Set) WriteJSONLFile(path string) error {
	var b bytes.Buffer
	if err := s.WriteJSONL(&b); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".goldset-*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b.Bytes())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// Digest identifies the set's content: SHA-256 of its JSONL form, in hex.
// The same questions in the same order give the same digest, whichever
// format they were read from.
func (s *Set) Digest() string {
	h := sha256.New()
	s.WriteJSONL(h)
	return hex.EncodeToString(h.Sum(nil))
}

// checkUTF8 refuses text that is not UTF-8, naming the line and column of
// the first bad byte: Go would read it as U+FFFD, so the question hashed
// and embedded would not be the one written.
func checkUTF8(name string, b []byte) error {
	if utf8.Valid(b) {
		return nil
	}
	line, col := 1, 1
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return &Error{File: name, Line: line, Err: fmt.Errorf("not valid UTF-8 (byte 0x%02x at column %d): save the file as UTF-8", b[i], col)}
		}
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return nil
}
