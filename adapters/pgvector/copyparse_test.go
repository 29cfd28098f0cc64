package pgvector

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/ragparity/ragparity/parity"
)

// copyStream builds a binary COPY stream of n rows (id, vector, payload,
// text), every third payload and every fifth text NULL.
func copyStream(n int) ([]byte, []parity.Point) {
	b := append([]byte(nil), copySignature...)
	b = binary.BigEndian.AppendUint32(b, 0) // flags
	b = binary.BigEndian.AppendUint32(b, 4) // header extension
	b = append(b, 1, 2, 3, 4)
	field := func(v []byte, null bool) {
		if null {
			b = binary.BigEndian.AppendUint32(b, math.MaxUint32)
			return
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	var want []parity.Point
	for i := 0; i < n; i++ {
		p := parity.Point{ID: parity.ID{Kind: parity.IDInt, S: fmt.Sprint(i + 1)}}
		vals := make([]float32, 3+i%4)
		vec := binary.BigEndian.AppendUint16(nil, uint16(len(vals)))
		vec = append(vec, 0, 0)
		for j := range vals {
			vals[j] = float32(i) + float32(j)/8
			vec = binary.BigEndian.AppendUint32(vec, math.Float32bits(vals[j]))
		}
		p.Vectors = []parity.NamedVector{{Values: vals}}
		if i%3 != 0 {
			p.Payload = []byte(fmt.Sprintf(`{"n":%d}`, i))
		}
		if i%5 != 0 {
			p.Text, p.HasText = fmt.Sprintf("text %d", i), true
		}
		b = binary.BigEndian.AppendUint16(b, 4)
		field([]byte(p.ID.S), false)
		field(vec, false)
		field(p.Payload, p.Payload == nil)
		field([]byte(p.Text), !p.HasText)
		want = append(want, p)
	}
	b = binary.BigEndian.AppendUint16(b, math.MaxUint16)
	return b, want
}

// The parser gets the stream in whatever pieces pgconn hands over: whole
// rows usually, but a row may be split anywhere.
func TestCopyParserAnySplit(t *testing.T) {
	stream, want := copyStream(50)
	r := rand.New(rand.NewPCG(1, 2))
	for _, chunk := range []int{len(stream), 1, 2, 7, 64, 0} {
		var got []parity.Point
		c := newCopyParser(parity.IDInt, true, true, func(p *parity.Point) error {
			cp := *p
			cp.Vectors = []parity.NamedVector{{Values: append([]float32(nil), p.Vectors[0].Values...)}}
			cp.Payload = append([]byte(nil), p.Payload...)
			if p.Payload == nil {
				cp.Payload = nil
			}
			got = append(got, cp)
			return nil
		})
		for rest := stream; len(rest) > 0; {
			n := chunk
			if n == 0 {
				n = 1 + r.IntN(300) // random pieces
			}
			n = min(n, len(rest))
			if w, err := c.Write(rest[:n]); err != nil || w != n {
				t.Fatalf("chunk %d: Write = %d, %v", chunk, w, err)
			}
			rest = rest[n:]
		}
		if err := c.finish(); err != nil {
			t.Fatalf("chunk %d: finish: %v", chunk, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("chunk %d: parsed %d points, not the %d written (first: %+v vs %+v)", chunk, len(got), len(want), got[0], want[0])
		}
	}
	// A stream cut short, or with a bad signature, is an error.
	c := newCopyParser(parity.IDInt, true, true, func(*parity.Point) error { return nil })
	c.Write(stream[:len(stream)-40])
	if err := c.finish(); err == nil {
		t.Error("a truncated stream finished without error")
	}
	bad := append([]byte("PGCOPY\n\xff\r\n\x01"), stream[11:]...)
	c = newCopyParser(parity.IDInt, true, true, func(*parity.Point) error { return nil })
	if _, err := c.Write(bad); err == nil {
		t.Error("a bad signature was accepted")
	}
}
