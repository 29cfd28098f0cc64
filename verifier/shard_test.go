package verifier

import "testing"

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		s      string
		ok     bool
		lo, hi int
	}{{"0/4", true, 0, 1024}, {"3/4", true, 3072, 4096}, {"1/3", true, 1365, 2730}, {"4/4", false, 0, 0}, {"-1/2", false, 0, 0}, {"1/0", false, 0, 0}, {"01/2", false, 0, 0}, {"x", false, 0, 0}} {
		s, err := ParseShard(c.s)
		if (err == nil) != c.ok {
			t.Errorf("ParseShard(%q) error = %v, want ok=%v", c.s, err, c.ok)
			continue
		}
		if c.ok {
			if lo, hi := s.Range(4096); lo != c.lo || hi != c.hi {
				t.Errorf("%s range = [%d,%d), want [%d,%d)", c.s, lo, hi, c.lo, c.hi)
			}
		}
	}
}
