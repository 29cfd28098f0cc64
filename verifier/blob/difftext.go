package blob

import (
	"fmt"
	"io"
)

// WriteText writes the diff as `ragparity diff --blobs` prints it.
func (d *BlobDiff) WriteText(w io.Writer) {
	state := map[string]string{VerdictEqual: "EQUAL", VerdictDifferent: "DIFFERENT",
		VerdictInconclusive: "COULD NOT TELL"}[d.Verdict]
	fmt.Fprintf(w, "%s -> %s: %s (blobs, mode %s; %d of %d buckets differ; %d entries examined)\n",
		d.From, d.To, state, d.Mode, d.BucketsDiffering, ManifestBuckets, d.EntriesExamined)
	list := func(title string, keys []string) {
		if len(keys) == 0 {
			return
		}
		fmt.Fprintf(w, "%s (%d):\n", title, len(keys))
		for _, k := range keys {
			fmt.Fprintf(w, "  %q\n", k)
		}
	}
	list("only in "+d.From, d.OnlyInFrom)
	list("only in "+d.To, d.OnlyInTo)
	changes := func(title string, cs []BlobChange) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(w, "%s (%d):\n", title, len(cs))
		for _, c := range cs {
			fmt.Fprintf(w, "  %q  %s", c.Key, c.Reason)
			if c.Detail != "" {
				fmt.Fprintf(w, "  (%s)", c.Detail)
			}
			fmt.Fprintln(w)
		}
	}
	changes("changed", d.Changed)
	changes("inconclusive", d.Inconclusive)
	if d.Note != "" {
		fmt.Fprintf(w, "note: %s\n", d.Note)
	}
}
