package termui

import (
	"bytes"
	"testing"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 10 << 20: "10.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// A Line on something that is not a terminal draws nothing and hands out
// nil callbacks, so scans skip the progress work.
func TestLineOffWhenNotATerminal(t *testing.T) {
	var b bytes.Buffer
	l := NewLine(&b, "scanning points: ", ", ", false)
	if l.On() || l.Points("eu") != nil || l.Objects("eu") != nil {
		t.Fatal("a Line on a buffer is on")
	}
	l.Done()
	if b.Len() != 0 {
		t.Fatalf("drew %q", b.String())
	}
}

func TestLineDrawsPartsInOrder(t *testing.T) {
	var b bytes.Buffer
	l := &Line{w: &b, on: true, prefix: "p: ", sep: "; ", parts: map[string]string{}}
	eu, us := l.Points("eu"), l.Points("us")
	us(5)
	eu(7)
	if got, want := b.String()[bytes.LastIndex(b.Bytes(), []byte("\r")):], "\r\033[Kp: eu 7; us 5"; got != want {
		t.Fatalf("last draw %q, want %q", got, want)
	}
}
