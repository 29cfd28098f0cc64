package replicate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func docs(t *testing.T, s Source) ([]Document, error) {
	var out []Document
	err := s.Each(context.Background(), func(d Document) error { out = append(out, d); return nil })
	return out, err
}

func TestJSONLSource(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "corpus.jsonl", `{"_id":"d1","title":"Title","text":"Body one."}
{"_id": 7, "title": "", "text": "Body seven.", "revision": "r9"}

{"_id":"d3","text":"x"}
`)
	s, err := OpenSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := docs(t, s)
	if err != nil {
		t.Fatalf("Each: %v", err)
	}
	if len(ds) != 3 || ds[0].SourceID != "d1" || ds[0].Text != "Title\nBody one." || ds[1].SourceID != "7" || ds[1].Revision != "r9" {
		t.Fatalf("docs = %+v", ds)
	}
	if ds[0].Revision == "" || ds[0].Revision == ds[2].Revision {
		t.Errorf("content revisions not derived: %q %q", ds[0].Revision, ds[2].Revision)
	}
	if !strings.HasSuffix(ds[2].Where, "corpus.jsonl:4") {
		t.Errorf("Where = %q, want ...corpus.jsonl:4", ds[2].Where)
	}
	_ = p
}

func TestJSONLSourceErrorsNameFileAndLine(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"NotJSON":   {"{\"_id\":\"a\",\"text\":\"ok\"}\nnot json\n", "corpus.jsonl:2: not a JSON object"},
		"NoID":      {"{\"text\":\"ok\"}\n", "corpus.jsonl:1: missing \"_id\""},
		"Empty":     {"{\"_id\":\"a\",\"title\":\" \",\"text\":\"\"}\n", "corpus.jsonl:1: document \"a\" is empty"},
		"Duplicate": {"{\"_id\":\"a\",\"text\":\"x\"}\n{\"_id\":\"a\",\"text\":\"y\"}\n", "corpus.jsonl:2: \"_id\" \"a\" already used on line 1"},
		"BadIDType": {"{\"_id\":[1],\"text\":\"x\"}\n", "corpus.jsonl:1: \"_id\" must be a string"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "corpus.jsonl", c.body)
			s, _ := OpenSource(filepath.Join(dir, "corpus.jsonl"))
			_, err := docs(t, s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestDirSource(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "b/two.txt", "second doc")
	write(t, dir, "a.md", "first doc")
	write(t, dir, ".hidden/x.txt", "ignored")
	s, err := OpenSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := docs(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].SourceID != "a.md" || ds[1].SourceID != "b/two.txt" {
		t.Fatalf("docs = %+v", ds)
	}
	write(t, dir, "bin.dat", "\x00\x01\x02")
	if _, err := docs(t, s); err == nil || !strings.Contains(err.Error(), "bin.dat: not UTF-8 text") {
		t.Errorf("binary file: error = %v", err)
	}
	os.Remove(filepath.Join(dir, "bin.dat"))
	write(t, dir, "empty.txt", "  \n")
	if _, err := docs(t, s); err == nil || !strings.Contains(err.Error(), "empty.txt: empty document") {
		t.Errorf("empty file: error = %v", err)
	}
	if _, err := OpenSource(filepath.Join(dir, "nope")); err == nil {
		t.Errorf("missing source accepted")
	}
}

func TestAnalyzer(t *testing.T) {
	a := Analyzer{ChunkSize: 4, Overlap: 1, Normalize: "NFKC", Lowercase: true}
	got := a.Chunk("The ﬁrst  QUICK brown fox jumps over the lazy dog")
	want := []string{"the first quick brown", "brown fox jumps over", "over the lazy dog"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Chunk = %q, want %q", got, want)
	}
	b := a
	b.Overlap = 2
	if a.Version() == b.Version() {
		t.Errorf("different analyzers share a version: %s", a.Version())
	}
	for _, bad := range []Analyzer{{ChunkSize: 0}, {ChunkSize: 4, Overlap: 4}, {ChunkSize: 4, Normalize: "NFD"}} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%+v) accepted", bad)
		}
	}
	if got := a.Chunk("   "); got != nil {
		t.Errorf("Chunk of blank text = %q", got)
	}
}

func TestChunkIDDeterministic(t *testing.T) {
	if ChunkID("doc", 0) != ChunkID("doc", 0) || ChunkID("doc", 0) == ChunkID("doc", 1) || ChunkID("doc1", 0) == ChunkID("doc", 10) {
		t.Errorf("chunk ids not deterministic or not distinct")
	}
	if got := ChunkID("doc", 0); len(got) != 36 || got[14] != '5' {
		t.Errorf("ChunkID = %s, want a UUIDv5", got)
	}
}
