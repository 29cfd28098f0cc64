package verifier

import (
	"strings"
	"testing"

	"github.com/ragparity/ragparity/parity"
)

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

// Shards taken at different snapshots of the store (or of different
// stores) would merge into a root no whole run ever had: refused unless
// allowSkew, which then reports it.
func TestMergeShardsRefusesSkew(t *testing.T) {
	part := func(i int, store, snap string) ShardRegion {
		sh := Shard{I: i, N: 2}
		lo, hi := sh.Range(64)
		return ShardRegion{Name: "a", Shard: sh.String(), Range: [2]int{lo, hi}, SettingsDigest: parity.Digest{1}.Hex(), EngineDigest: parity.Digest{2}.Hex(),
			Settings: map[string]any{"dim": 3}, Leaves: []LeafJSON{}, LeavesTolerant: []LeafJSON{}, StoreID: store, Snapshot: snap}
	}
	if _, skew, err := MergeShards(64, []ShardRegion{part(0, "pg:1/db/t", "lsn 0/10"), part(1, "pg:1/db/t", "lsn 0/10")}, false); err != nil || len(skew) != 0 {
		t.Fatalf("same snapshot: skew %v, err %v", skew, err)
	}
	for name, parts := range map[string][]ShardRegion{
		"OtherSnapshot": {part(0, "pg:1/db/t", "lsn 0/10"), part(1, "pg:1/db/t", "lsn 0/20")},
		"OtherStore":    {part(0, "pg:1/db/t", "lsn 0/10"), part(1, "pg:2/db/t", "lsn 0/10")},
		"OneUnmarked":   {part(0, "pg:1/db/t", "lsn 0/10"), part(1, "", "")},
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := MergeShards(64, parts, false); err == nil || !strings.Contains(err.Error(), "--allow-skew") {
				t.Fatalf("merged shards of different snapshots: %v", err)
			}
			_, skew, err := MergeShards(64, parts, true)
			if err != nil || len(skew) == 0 {
				t.Fatalf("allow skew: skew %v, err %v; want it merged and reported", skew, err)
			}
		})
	}
}
