package reports

import (
	"fmt"
	"io"
	"strings"

	"github.com/ragparity/ragparity/gate"
	"github.com/ragparity/ragparity/parity"
)

// WriteText writes a verdict as the text `ragparity verify` prints.
func WriteText(w io.Writer, v *gate.Verdict) {
	fmt.Fprintf(w, "verdict %s for release %s: %s (expires %s)\n", v.ID, v.Release, strings.ToUpper(string(v.Decision)), v.ExpiresAt.Format("2006-01-02 15:04:05Z07:00"))
	fmt.Fprintf(w, "reference: %s\n\n", v.Reference)
	writeRegions(w, v)
	fmt.Fprintln(w)
	for _, c := range v.Checks {
		fmt.Fprintf(w, "  %-10s %-12s %s", c.Name, strings.ToUpper(string(c.Status)), c.Figure)
		if c.Threshold != "" {
			fmt.Fprintf(w, "  [threshold: %s]", c.Threshold)
		}
		fmt.Fprintln(w)
		if c.Error != "" {
			fmt.Fprintf(w, "             error: %s\n", c.Error)
		}
		for _, e := range c.Evidence {
			fmt.Fprintf(w, "             - %s\n", e)
		}
	}
	fmt.Fprintf(w, "\nsigned by key %s\n", v.KeyID)
}

// writeRegions prints each region's status and admission, with why a
// blocked region is blocked.
func writeRegions(w io.Writer, v *gate.Verdict) {
	for _, r := range v.Regions {
		state := "ADMIT"
		if !r.Admit {
			state = "BLOCK"
		}
		fmt.Fprintf(w, "  %-12s %-5s %-12s", r.Name, state, strings.ToUpper(string(r.Status)))
		if r.IndexHash != "" {
			fmt.Fprintf(w, "  index_hash=%s", parity.ShortHex(r.IndexHash))
		}
		fmt.Fprintln(w)
		for _, why := range r.Reasons {
			fmt.Fprintf(w, "               - %s\n", why)
		}
	}
}
