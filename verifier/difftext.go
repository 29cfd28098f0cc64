package verifier

import (
	"fmt"
	"io"
	"sort"
)

// WriteText writes the diff as `ragparity diff` prints it; tol is the
// tolerance the tolerant digests used.
func (d *DiffResult) WriteText(w io.Writer, tol float64) {
	state := "DIFFERENT"
	if d.Equal {
		state = "EQUAL"
	}
	fmt.Fprintf(w, "%s -> %s: %s (%d of %d buckets differ; %d point records examined)\n", d.From, d.To, state, d.BucketsDiffering, d.BucketsCompared, d.PointsExamined)
	for _, v := range [][2]string{{d.From, d.ViaFrom}, {d.To, d.ViaTo}} {
		if v[1] != "" && v[1] != "direct" {
			fmt.Fprintf(w, "%s read via %s\n", v[0], v[1])
		}
	}
	list := func(title string, ids []string) {
		if len(ids) == 0 {
			return
		}
		fmt.Fprintf(w, "%s (%d):\n", title, len(ids))
		for _, id := range ids {
			fmt.Fprintf(w, "  %s\n", id)
		}
	}
	list("only in "+d.From, d.OnlyInFrom)
	list("only in "+d.To, d.OnlyInTo)
	dupes := func(region string, m map[string]int) {
		if len(m) == 0 {
			return
		}
		ids := make([]string, 0, len(m))
		for id := range m {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		fmt.Fprintf(w, "duplicate in %s (%d ids held more than once):\n", region, len(ids))
		for i, id := range ids {
			if i == 20 {
				fmt.Fprintf(w, "  ... and %d more\n", len(ids)-20)
				break
			}
			fmt.Fprintf(w, "  %s  x%d\n", id, m[id])
		}
	}
	dupes(d.From, d.DuplicatesFrom)
	dupes(d.To, d.DuplicatesTo)
	if len(d.Changed) > 0 {
		fmt.Fprintf(w, "changed (%d):\n", len(d.Changed))
		for _, c := range d.Changed {
			fmt.Fprintf(w, "  %s  %v", c.ID, c.Fields)
			if c.VectorWithinTolerance != nil && *c.VectorWithinTolerance {
				fmt.Fprintf(w, "  (vector numerically equivalent within %g)", tol)
			}
			fmt.Fprintln(w)
		}
	}
	if len(d.SettingsDiff) > 0 {
		fmt.Fprintf(w, "settings that differ (%d):\n", len(d.SettingsDiff))
		for _, s := range d.SettingsDiff {
			note := ""
			if !s.Hashed {
				note = "  (reported, not hashed)"
			}
			fmt.Fprintf(w, "  %s: %v -> %v%s\n", s.Key, show(s.From), show(s.To), note)
		}
	}
	if len(d.EngineDiff) > 0 {
		fmt.Fprintf(w, "engine settings that differ (%d; engine_digest, not INDEX_HASH):\n", len(d.EngineDiff))
		for _, s := range d.EngineDiff {
			fmt.Fprintf(w, "  %s: %v -> %v\n", s.Key, show(s.From), show(s.To))
		}
	}
}

func show(v any) string {
	if v == nil {
		return "(absent)"
	}
	return fmt.Sprint(v)
}
