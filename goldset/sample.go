package goldset

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"sort"
)

// Sample returns n questions chosen by seed: the n whose
// SHA-256(seed as 8 big-endian bytes || id) is smallest, kept in the set's
// order. The choice depends only on the seed and the ids, not on the order
// of the file, so a nightly job gets the same questions every night, and a
// question added to the set displaces at most one chosen before.
// With n >= the number of questions, every question is returned.
func (s *Set) Sample(n int, seed uint64) (*Set, error) {
	if n < 1 {
		return nil, errors.New("sample size must be at least 1")
	}
	out := &Set{Source: s.Source, Format: s.Format}
	if n >= len(s.Questions) {
		out.Questions = append(out.Questions, s.Questions...)
		return out, nil
	}
	type keyed struct {
		i   int
		key [32]byte
	}
	ks := make([]keyed, len(s.Questions))
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], seed)
	for i, q := range s.Questions {
		ks[i] = keyed{i, sha256.Sum256(append(buf[:], q.ID...))}
	}
	sort.Slice(ks, func(a, b int) bool { return string(ks[a].key[:]) < string(ks[b].key[:]) })
	ks = ks[:n]
	sort.Slice(ks, func(a, b int) bool { return ks[a].i < ks[b].i })
	for _, k := range ks {
		out.Questions = append(out.Questions, s.Questions[k.i])
	}
	return out, nil
}
