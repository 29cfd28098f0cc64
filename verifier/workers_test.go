package verifier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ragparity/ragparity/parity"
)

// sliceReader streams pts, reusing one Point as a real store's reader
// reuses its buffers; paced says whether it claims adapters.ServerPaced.
type sliceReader struct {
	pts   []parity.Point
	paced bool
}

func (r *sliceReader) Settings(context.Context) (parity.Settings, error) {
	return parity.Settings{Hashed: map[string]any{"vector.dim": 3}}, nil
}

func (r *sliceReader) Scan(ctx context.Context, fn func(p *parity.Point) error) error {
	var p parity.Point
	for i := range r.pts {
		if err := ctx.Err(); err != nil {
			return err
		}
		copyPoint(&p, &r.pts[i])
		if err := fn(&p); err != nil {
			return err
		}
		// Scribble over the buffer: a hasher that kept p would see it.
		for j := range p.Vectors {
			for k := range p.Vectors[j].Values {
				p.Vectors[j].Values[k] = -1
			}
		}
	}
	return nil
}

func (r *sliceReader) ServerPaced() bool { return r.paced }
func (r *sliceReader) Close() error      { return nil }

func workerPoints(n int) []parity.Point {
	pts := make([]parity.Point, n)
	for i := range pts {
		pts[i] = parity.Point{ID: parity.ID{Kind: parity.IDString, S: fmt.Sprintf("p%d", i)},
			Vectors: []parity.NamedVector{{Values: []float32{float32(i), float32(i) / 3, -float32(i)}}},
			Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))}
	}
	return pts
}

// Hashing in the reading goroutine (Workers 1, or a ServerPaced store)
// and in worker goroutines give the same leaves, whole or sharded, exact
// and tolerant, with a spill.
func TestWorkersAgree(t *testing.T) {
	pts := workerPoints(1000) // not a multiple of the batch size
	for _, shard := range []Shard{{}, {I: 1, N: 3}} {
		var want *Scan
		for _, c := range []struct {
			name    string
			workers int
			paced   bool
		}{{"workers4", 4, false}, {"inline", 1, false}, {"paced", 0, true}, {"default", 0, false}} {
			sp, err := NewSpill(t.TempDir(), DefaultBuckets)
			if err != nil {
				t.Fatal(err)
			}
			s, err := HashStore(t.Context(), &sliceReader{pts: pts, paced: c.paced}, Options{Workers: c.workers, Tolerant: true, Shard: shard, Spill: sp})
			sp.Close()
			if err != nil {
				t.Fatalf("%s shard %v: %v", c.name, shard, err)
			}
			if want == nil {
				want = s
				continue
			}
			if s.Points != want.Points || s.ContentRoot() != want.ContentRoot() || s.ContentRootTolerant() != want.ContentRootTolerant() {
				t.Errorf("%s shard %v: %d points, roots %s/%s; workers4: %d points, %s/%s", c.name, shard,
					s.Points, s.ContentRoot().Hex(), s.ContentRootTolerant().Hex(), want.Points, want.ContentRoot().Hex(), want.ContentRootTolerant().Hex())
			}
		}
		if shard.N == 0 && want.Points != int64(len(pts)) {
			t.Errorf("whole scan: %d points, want %d", want.Points, len(pts))
		}
	}
}

// A point the hasher rejects stops an inline scan with its error, as it
// stops one with workers.
func TestInlineHashError(t *testing.T) {
	pts := workerPoints(300)
	pts[200].Vectors = []parity.NamedVector{{Name: "b", Values: []float32{1}}, {Name: "a", Values: []float32{2}}}
	for _, w := range []int{1, 2} {
		_, err := HashStore(t.Context(), &sliceReader{pts: pts}, Options{Workers: w})
		if err == nil || !strings.Contains(err.Error(), "p200") {
			t.Errorf("workers %d: error = %v, want one naming point p200", w, err)
		}
	}
	if _, err := HashStore(t.Context(), &sliceReader{pts: pts}, Options{Workers: -1}); err == nil {
		t.Errorf("workers -1: no error")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := HashStore(ctx, &sliceReader{pts: pts, paced: true}, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled inline scan: error = %v, want context.Canceled", err)
	}
}
