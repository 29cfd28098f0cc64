package probe

import (
	"math"
	"sort"
)

// Score computes nDCG@k, recall@k and reciprocal rank@k of one ranking
// (document ids, best first) against graded judgements (score > 0 is
// relevant).
func Score(ranking []string, rel map[string]int, k int) (ndcg, recall, rr float64) {
	var dcg float64
	hits := 0
	for i, id := range ranking {
		if i >= k {
			break
		}
		g := rel[id]
		if g <= 0 {
			continue
		}
		dcg += float64(g) / math.Log2(float64(i+2))
		hits++
		if rr == 0 {
			rr = 1 / float64(i+1)
		}
	}
	var gains []int
	for _, g := range rel {
		if g > 0 {
			gains = append(gains, g)
		}
	}
	if len(gains) == 0 {
		return 0, 0, 0
	}
	sort.Sort(sort.Reverse(sort.IntSlice(gains)))
	var idcg float64
	for i, g := range gains {
		if i >= k {
			break
		}
		idcg += float64(g) / math.Log2(float64(i+2))
	}
	return dcg / idcg, float64(hits) / float64(len(gains)), rr
}
