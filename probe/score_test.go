package probe

import (
	"math"
	"testing"
)

func TestScore(t *testing.T) {
	rel := map[string]int{"a": 1, "b": 1, "x": 0}
	ndcg, recall, rr := Score([]string{"z", "a", "x", "b"}, rel, 10)
	wantDCG := 1/math.Log2(3) + 1/math.Log2(5)
	wantIDCG := 1 + 1/math.Log2(3)
	if math.Abs(ndcg-wantDCG/wantIDCG) > 1e-12 || recall != 1 || rr != 0.5 {
		t.Fatalf("Score = %v %v %v, want %v 1 0.5", ndcg, recall, rr, wantDCG/wantIDCG)
	}
	if _, recall, rr := Score([]string{"z", "a", "b"}, rel, 2); recall != 0.5 || rr != 0.5 {
		t.Fatalf("cut-off 2: recall %v, rr %v", recall, rr)
	}
	if n, r, m := Score([]string{"a"}, map[string]int{}, 10); n != 0 || r != 0 || m != 0 {
		t.Fatal("no relevant documents should score 0")
	}
}
