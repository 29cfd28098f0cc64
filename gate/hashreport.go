package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/ragparity/ragparity/config"
	"github.com/ragparity/ragparity/verifier"
)

// RegionHashJSON is one region in `hash --json` output.
type RegionHashJSON struct {
	Name                string         `json:"name"`
	IndexHash           string         `json:"index_hash,omitempty"`
	SettingsDigest      string         `json:"settings_digest,omitempty"`
	EngineDigest        string         `json:"engine_digest,omitempty"`
	ContentRoot         string         `json:"content_root,omitempty"`
	ContentRootTolerant string         `json:"content_root_tolerant,omitempty"`
	Points              int64          `json:"points"`
	Settings            map[string]any `json:"settings,omitempty"`
	SettingsEngine      map[string]any `json:"settings_engine,omitempty"`
	SettingsInfo        map[string]any `json:"settings_info,omitempty"`
	ElapsedMS           int64          `json:"elapsed_ms"`
	// Duplicates are ids the store holds more than once, with their count.
	Duplicates map[string]int `json:"duplicates,omitempty"`
	// Via is how the region was read: "direct" or "agent <url>".
	Via   string `json:"via,omitempty"`
	Error string `json:"error,omitempty"`
}

// HashJSON is the `hash --json` (and `merge --json`) document.
type HashJSON struct {
	Release   string           `json:"release"`
	Equal     bool             `json:"equal"`
	Buckets   int              `json:"buckets"`
	Tolerance float64          `json:"tolerance"`
	Regions   []RegionHashJSON `json:"regions"`
	Error     string           `json:"error,omitempty"`
}

// RegionHashOf is a region's scan as `hash --json` prints it.
func RegionHashOf(name string, s *verifier.Scan) RegionHashJSON {
	return RegionHashJSON{
		Name: name, IndexHash: s.IndexHash().Hex(), SettingsDigest: s.SettingsDigest.Hex(), EngineDigest: s.EngineDigest.Hex(),
		ContentRoot: s.ContentRoot().Hex(), ContentRootTolerant: verifier.TolerantRootHex(s),
		Points: s.Points, Settings: s.Settings.Hashed, SettingsEngine: s.Settings.Engine, SettingsInfo: s.Settings.Info, ElapsedMS: s.Elapsed.Milliseconds(),
		Duplicates: s.Duplicates, Via: s.Via,
	}
}

// HashBuckets is the config's bucket count, or the format's default.
func HashBuckets(cfg *config.Config) int {
	if cfg.Hash.Buckets == 0 {
		return verifier.DefaultBuckets
	}
	return cfg.Hash.Buckets
}

// HashTolerance is the config's tolerant-digest grid, or the default.
func HashTolerance(cfg *config.Config) float64 {
	if cfg.Hash.Tolerance == 0 {
		return verifier.DefaultTolerance
	}
	return cfg.Hash.Tolerance
}

// HashReport is the `hash` document of whole (unsharded) scans: every
// region's hashes and whether they all agree. A region that could not be
// scanned makes it an error (could not tell).
func HashReport(cfg *config.Config, res []RegionScan) HashJSON {
	out := HashJSON{Release: cfg.Release, Buckets: HashBuckets(cfg), Tolerance: HashTolerance(cfg)}
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, r.Err)
			out.Regions = append(out.Regions, RegionHashJSON{Name: r.Region.Name, Error: r.Err.Error()})
			continue
		}
		out.Regions = append(out.Regions, RegionHashOf(r.Region.Name, r.Scan))
	}
	out.Equal = len(errs) == 0 && allEqual(out.Regions)
	if len(errs) > 0 {
		out.Error = errors.Join(errs...).Error()
	}
	return out
}

// allEqual: every INDEX_HASH equal and no region holding an id twice (no
// faithful copy does).
func allEqual(rs []RegionHashJSON) bool {
	for _, r := range rs {
		if len(r.Duplicates) > 0 {
			return false
		}
	}
	for _, r := range rs[1:] {
		if r.IndexHash != rs[0].IndexHash {
			return false
		}
	}
	return true
}

// Differences says, for each region whose INDEX_HASH differs from the
// first region's, whether settings, content or both differ.
func (h *HashJSON) Differences() []string {
	var out []string
	base := h.Regions[0]
	for _, r := range h.Regions[1:] {
		if r.IndexHash == base.IndexHash {
			continue
		}
		var what []string
		if r.SettingsDigest != base.SettingsDigest {
			what = append(what, "settings")
		}
		switch {
		case r.ContentRoot == base.ContentRoot:
		case r.ContentRootTolerant != "" && r.ContentRootTolerant == base.ContentRootTolerant:
			what = append(what, "content (numerically equivalent within the tolerance)")
		default:
			what = append(what, "content")
		}
		out = append(out, fmt.Sprintf("%s vs %s: %s differ", base.Name, r.Name, joinAnd(what)))
	}
	return out
}

// EngineFindings names the regions whose engine settings differ from the
// first region's: a separate finding, which leaves INDEX_HASH alone.
func (h *HashJSON) EngineFindings() []string {
	var out []string
	for _, r := range h.Regions[1:] {
		if r.EngineDigest != h.Regions[0].EngineDigest {
			out = append(out, fmt.Sprintf("engine: %s and %s differ in engine settings (engine_digest), not in INDEX_HASH; see 'ragparity diff'", h.Regions[0].Name, r.Name))
		}
	}
	return out
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return "nothing"
	case 1:
		return s[0]
	}
	return fmt.Sprintf("%s and %s", s[0], s[1])
}

// ShardReport is the `hash --shard i/N --json` document of the scans; the
// error joins those of the regions that could not be scanned (each is
// also in its region's entry).
func ShardReport(cfg *config.Config, shard verifier.Shard, res []RegionScan) (verifier.ShardJSON, error) {
	out := verifier.ShardJSON{Format: verifier.ShardFormat, Release: cfg.Release, Shard: shard.String(), Tolerance: HashTolerance(cfg)}
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, r.Err)
			out.Regions = append(out.Regions, verifier.ShardRegion{Name: r.Region.Name, Shard: shard.String(), Error: r.Err.Error()})
			continue
		}
		out.Buckets = r.Scan.Buckets
		out.Regions = append(out.Regions, verifier.ShardOf(r.Region.Name, r.Scan))
	}
	return out, errors.Join(errs...)
}

// MergeShardFiles reads `hash --shard i/N --json` outputs and merges them
// per region into the whole run's hashes (verifier.MergeShards). Files of
// other formats, releases, bucket counts or tolerances are refused;
// shards of different snapshots too unless allowSkew, which returns each
// difference as a warning.
func MergeShardFiles(paths []string, allowSkew bool) (out HashJSON, warnings []string, err error) {
	byRegion := map[string][]verifier.ShardRegion{}
	var order []string
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return out, nil, err
		}
		var sj verifier.ShardJSON
		if err := decodeStrict(b, &sj); err != nil {
			return out, nil, fmt.Errorf("%s: not a shard output: %w", path, err)
		}
		if sj.Format != verifier.ShardFormat {
			return out, nil, fmt.Errorf("%s: format %q, want %q", path, sj.Format, verifier.ShardFormat)
		}
		switch {
		case out.Release == "":
			out.Release = sj.Release
		case sj.Release != out.Release:
			return out, nil, fmt.Errorf("%s: release %q, other shards %q", path, sj.Release, out.Release)
		}
		switch {
		case out.Buckets == 0:
			out.Buckets = sj.Buckets
		case sj.Buckets != out.Buckets && sj.Buckets != 0:
			return out, nil, fmt.Errorf("%s: %d buckets, other shards %d", path, sj.Buckets, out.Buckets)
		}
		switch {
		case out.Tolerance == 0:
			out.Tolerance = sj.Tolerance
		case sj.Tolerance != out.Tolerance:
			return out, nil, fmt.Errorf("%s: tolerance %g, other shards %g", path, sj.Tolerance, out.Tolerance)
		}
		for _, r := range sj.Regions {
			if _, ok := byRegion[r.Name]; !ok {
				order = append(order, r.Name)
			}
			byRegion[r.Name] = append(byRegion[r.Name], r)
		}
	}
	if out.Buckets == 0 {
		return out, nil, errors.New("merge: no shard carries a bucket count (did every shard fail?)")
	}
	for _, name := range order {
		s, skew, err := verifier.MergeShards(out.Buckets, byRegion[name], allowSkew)
		if err != nil {
			return out, nil, err
		}
		for _, k := range skew {
			warnings = append(warnings, "--allow-skew: "+k)
		}
		out.Regions = append(out.Regions, RegionHashOf(name, s))
	}
	out.Equal = allEqual(out.Regions)
	return out, warnings, nil
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// WriteText prints the document for people: each region's hashes and
// settings, then whether they agree and, when not, what differs. Errors
// go to stderr.
func (h *HashJSON) WriteText(stdout, stderr io.Writer) {
	for _, r := range h.Regions {
		if r.Error != "" {
			fmt.Fprintf(stdout, "%s  ERROR: %s\n\n", r.Name, r.Error)
			continue
		}
		fmt.Fprintf(stdout, "%s  points=%d  elapsed=%dms\n", r.Name, r.Points, r.ElapsedMS)
		fmt.Fprintf(stdout, "  via                    %s\n", r.Via)
		fmt.Fprintf(stdout, "  index_hash             %s\n", r.IndexHash)
		fmt.Fprintf(stdout, "  settings_digest        %s\n", r.SettingsDigest)
		fmt.Fprintf(stdout, "  engine_digest          %s  (not part of INDEX_HASH)\n", r.EngineDigest)
		fmt.Fprintf(stdout, "  content_root           %s\n", r.ContentRoot)
		if r.ContentRootTolerant != "" {
			fmt.Fprintf(stdout, "  content_root_tolerant  %s\n", r.ContentRootTolerant)
		}
		fmt.Fprintf(stdout, "  settings              ")
		for _, k := range sortedKeys(r.Settings) {
			fmt.Fprintf(stdout, " %s=%v", k, r.Settings[k])
		}
		fmt.Fprintln(stdout)
		fmt.Fprintf(stdout, "  engine settings       ")
		for _, k := range sortedKeys(r.SettingsEngine) {
			fmt.Fprintf(stdout, " %s=%v", k, r.SettingsEngine[k])
		}
		fmt.Fprintln(stdout)
		if w, ok := r.SettingsInfo["index.warning"]; ok {
			fmt.Fprintf(stdout, "  warning: %v\n", w)
		}
		if len(r.Duplicates) > 0 {
			fmt.Fprintf(stdout, "  DUPLICATES: %d ids held more than once (listed in --json)\n", len(r.Duplicates))
		}
		fmt.Fprintln(stdout)
	}
	switch {
	case h.Error != "":
		fmt.Fprintf(stderr, "Error: %s\n", h.Error)
		fmt.Fprintf(stdout, "release %s: could not tell (see errors above)\n", h.Release)
	case h.Equal:
		fmt.Fprintf(stdout, "release %s: all %d regions agree (INDEX_HASH equal)\n", h.Release, len(h.Regions))
		for _, f := range h.EngineFindings() {
			fmt.Fprintf(stdout, "  %s\n", f)
		}
	default:
		fmt.Fprintf(stdout, "release %s: regions DIFFER; see 'ragparity diff --from A --to B'\n", h.Release)
		for _, d := range h.Differences() {
			fmt.Fprintf(stdout, "  %s\n", d)
		}
	}
}

func sortedKeys(m map[string]any) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}
