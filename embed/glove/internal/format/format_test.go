package format

import (
	"bytes"
	"testing"
)

func sample() *Model {
	m := &Model{Source: "pkg@1.0.0", Dim: 3, Words: []string{"the", "naïve"}}
	m.SourceSHA256[0] = 0xab
	for _, v := range [][]float64{{0.5, -1, 0.25}, {0, 0, 0}} {
		s, q := Quantize(v)
		m.Scales = append(m.Scales, s)
		m.Q = append(m.Q, q...)
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	b := m.Encode()
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), b) {
		t.Fatal("decode(encode(m)) differs")
	}
	if got.Q[1] != -127 || got.Scales[1] != 0 || got.Words[1] != "naïve" {
		t.Fatalf("decoded %+v", got)
	}
	// Dequantized values are within half a step.
	for j, want := range []float64{0.5, -1, 0.25} {
		if d := float64(got.Scales[0])*float64(got.Q[j]) - want; d > float64(got.Scales[0])/2 || d < -float64(got.Scales[0])/2 {
			t.Errorf("component %d off by %g", j, d)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	b := sample().Encode()
	for name, bad := range map[string][]byte{
		"Empty":     nil,
		"Magic":     append([]byte("XXGLOVQ8"), b[8:]...),
		"Truncated": b[:len(b)-1],
		"Trailing":  append(bytes.Clone(b), 0),
	} {
		if _, err := Decode(bad); err == nil {
			t.Errorf("%s: Decode succeeded", name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(sample().Encode())
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("a decodable file does not re-encode to itself")
		}
	})
}
