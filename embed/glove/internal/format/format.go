// Package format reads and writes the glove model file.
//
// Layout, little-endian:
//
//	magic    8 bytes  "RPGLOVQ8"
//	version  uint32   1
//	source   uint16 length + bytes   npm package name@version
//	srcsha   32 bytes sha256 of the npm tarball
//	dim      uint32
//	count    uint32   number of words
//	words    count x (uint8 length + UTF-8 bytes), in the source's
//	         frequency order (rank 0 = most frequent)
//	scales   count x float32
//	vectors  count x dim x int8; component j of word i is
//	         float32(q[i*dim+j]) * scales[i]
//
// Nothing follows the vectors.
package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

const (
	Magic    = "RPGLOVQ8"
	Version  = 1
	FileName = "glove-sg100d-q8.bin"
	LockName = "glove.lock.json"
)

// Model is the decoded file.
type Model struct {
	Source       string
	SourceSHA256 [32]byte
	Dim          int
	Words        []string
	Scales       []float32
	Q            []int8 // len(Words)*Dim
}

// Lock is glove.lock.json: what the file is and where it came from. The
// glove package refuses a file whose sha256 differs from SHA256.
type Lock struct {
	File         string `json:"file"`
	SHA256       string `json:"sha256"`
	Bytes        int    `json:"bytes"`
	Source       string `json:"source"`
	SourceSHA256 string `json:"source_tarball_sha256"`
	SourceNPMSHA string `json:"source_npm_shasum"`
	Dim          int    `json:"dim"`
	Words        int    `json:"words"`
	Vocabulary   string `json:"vocabulary"`
	Quantization string `json:"quantization"`
	License      string `json:"license"`
	Generator    string `json:"generator"`
}

// Quantize maps v to int8 with one scale: max |v| / 127, rounding half away
// from zero. A zero vector gets scale 0.
func Quantize(v []float64) (float32, []int8) {
	var m float64
	for _, x := range v {
		m = math.Max(m, math.Abs(x))
	}
	q := make([]int8, len(v))
	if m == 0 {
		return 0, q
	}
	s := float32(m / 127)
	for i, x := range v {
		q[i] = int8(math.Max(-127, math.Min(127, math.Round(x/float64(s)))))
	}
	return s, q
}

// Encode writes the file.
func (m *Model) Encode() []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString(Magic)
	b.Write(le.AppendUint32(nil, Version))
	b.Write(le.AppendUint16(nil, uint16(len(m.Source))))
	b.WriteString(m.Source)
	b.Write(m.SourceSHA256[:])
	b.Write(le.AppendUint32(nil, uint32(m.Dim)))
	b.Write(le.AppendUint32(nil, uint32(len(m.Words))))
	for _, w := range m.Words {
		b.WriteByte(byte(len(w)))
		b.WriteString(w)
	}
	for _, s := range m.Scales {
		b.Write(le.AppendUint32(nil, math.Float32bits(s)))
	}
	for _, q := range m.Q {
		b.WriteByte(byte(q))
	}
	return b.Bytes()
}

// Decode parses a file, checking every length.
func Decode(b []byte) (*Model, error) {
	le := binary.LittleEndian
	r := b
	take := func(n int) ([]byte, error) {
		if n < 0 || len(r) < n {
			return nil, errors.New("truncated")
		}
		p := r[:n]
		r = r[n:]
		return p, nil
	}
	p, err := take(len(Magic) + 4 + 2)
	if err != nil {
		return nil, err
	}
	if string(p[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("bad magic %q", p[:len(Magic)])
	}
	if v := le.Uint32(p[len(Magic):]); v != Version {
		return nil, fmt.Errorf("version %d, want %d", v, Version)
	}
	m := &Model{}
	if p, err = take(int(le.Uint16(p[len(Magic)+4:]))); err != nil {
		return nil, err
	}
	m.Source = string(p)
	if p, err = take(32 + 8); err != nil {
		return nil, err
	}
	copy(m.SourceSHA256[:], p)
	m.Dim = int(le.Uint32(p[32:]))
	count := int(le.Uint32(p[36:]))
	if m.Dim <= 0 || m.Dim > 4096 || count <= 0 || count > 1<<24 {
		return nil, fmt.Errorf("implausible dim %d or count %d", m.Dim, count)
	}
	m.Words = make([]string, count)
	for i := range m.Words {
		if p, err = take(1); err != nil {
			return nil, err
		}
		if p, err = take(int(p[0])); err != nil {
			return nil, err
		}
		m.Words[i] = string(p)
	}
	if p, err = take(4 * count); err != nil {
		return nil, err
	}
	m.Scales = make([]float32, count)
	for i := range m.Scales {
		m.Scales[i] = math.Float32frombits(le.Uint32(p[4*i:]))
	}
	if p, err = take(count * m.Dim); err != nil {
		return nil, err
	}
	m.Q = make([]int8, len(p))
	for i, x := range p {
		m.Q[i] = int8(x)
	}
	if len(r) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(r))
	}
	return m, nil
}
