package reports

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ragparity/ragparity/gate"
)

// MarkdownLimit is GitHub's limit on a comment body, in characters. The
// Markdown report always stays below it.
const MarkdownLimit = 65536

const (
	// mdEvidencePerCheck bounds the evidence lines shown per check.
	mdEvidencePerCheck = 25
	// mdLineMax bounds one evidence line, in characters.
	mdLineMax = 300
	// mdReserve is kept free below MarkdownLimit for the closing lines.
	mdReserve = 512
)

var statusIcon = map[gate.Status]string{
	gate.Pass:         "✅",
	gate.Fail:         "❌",
	gate.Inconclusive: "⚠️",
	gate.Skipped:      "⏭️",
	gate.Degraded:     "🟠",
}

func icon(s gate.Status) string {
	if i, ok := statusIcon[s]; ok {
		return i
	}
	return "❔"
}

// Markdown writes a compact pull-request comment: a decision line, the
// checks with figure against threshold, the regions admitted or blocked
// and why, a line per detail, and the evidence in a <details> block.
// Evidence is cut, with a note, to keep the comment below MarkdownLimit.
func Markdown(w io.Writer, m *Model) error {
	if err := m.validate(); err != nil {
		return err
	}
	_, err := io.WriteString(w, markdown(m, MarkdownLimit))
	return err
}

func markdown(m *Model, limit int) string {
	v := m.Verdict
	var b strings.Builder
	fmt.Fprintf(&b, "## %s ragparity gate: %s — release %s\n\n", icon(v.Decision), strings.ToUpper(string(v.Decision)), mdCode(v.Release))
	fmt.Fprintf(&b, "Verdict %s · created %s · expires %s", mdCode(v.ID), mdTime(v.CreatedAt), mdTime(v.ExpiresAt))
	if v.KeyID != "" {
		fmt.Fprintf(&b, " · signed by key %s", mdCode(v.KeyID))
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "Reference: %s\n\n", mdCell(v.Reference))

	b.WriteString("| Region | Status | Admission | INDEX_HASH | Blob manifest | Reasons |\n|---|---|---|---|---|---|\n")
	for _, r := range v.Regions {
		adm := "✅ admit"
		if !r.Admit {
			adm = "⛔ block"
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s | %s | %s |\n", mdCell(r.Name), icon(r.Status), r.Status, adm, mdCode(shortHash(r.IndexHash)), mdCode(shortHash(r.ManifestHash)), mdCell(strings.Join(r.Reasons, "; ")))
	}
	b.WriteString("\n")

	b.WriteString("| Check | Status | Figure | Threshold |\n|---|---|---|---|\n")
	for _, c := range v.Checks {
		fig := c.Figure
		if c.Error != "" {
			if fig != "" {
				fig += "; "
			}
			fig += "error: " + c.Error
		}
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s |\n", mdCell(c.Name), icon(c.Status), c.Status, mdCell(fig), mdCell(c.Threshold))
	}
	b.WriteString("\n")

	for _, line := range detailLines(m, mdCell) {
		b.WriteString("- " + line + "\n")
	}
	b.WriteString("\n")

	base := b.String()
	tail := "_Full report: report.html (charts) and report.json; the signed verdict is the JSON._\n"
	budget := limit - mdReserve - utf8.RuneCountInString(base) - utf8.RuneCountInString(tail)
	if budget < 0 {
		// Tables alone are too long (thousands of regions or checks): cut
		// them at a line and say so.
		return cutRunes(base, limit-mdReserve) + "\n\n_Report cut to fit a pull-request comment; see report.html._\n"
	}
	return base + mdEvidence(v, budget) + tail
}

// detailLines summarises the optional detail, one line per item, with
// names escaped by esc.
func detailLines(m *Model, esc func(string) string) []string {
	var out []string
	if p := m.Probes; p != nil && len(p.Questions) > 0 {
		mx, over := maxDrift(p)
		line := fmt.Sprintf("Probes: max ΔS drift %s (threshold %s) on %d questions", fmtNum(mx), fmtNum(p.DriftThreshold), len(p.Questions))
		if len(over) > 0 {
			line += "; over threshold: " + esc(listCut(over, 10))
		}
		if n, total := lambdaNotConvergent(p); total > 0 {
			line += fmt.Sprintf("; λ convergent in %d of %d runs", total-n, total)
		}
		out = append(out, line)
	} else {
		if m.DetailNotKept {
			out = append(out, "Probes: per-question detail measured but not kept with this verdict file (report --config FILE reads it from the verdict store)")
		} else {
			out = append(out, "Probes: per-question detail not measured in this verdict")
		}
	}
	for _, bm := range m.BucketMaps {
		out = append(out, fmt.Sprintf("Merkle buckets %s → %s: %d of %d differ", esc(bm.From), esc(bm.To), len(bm.Differing), bm.Buckets))
	}
	for _, d := range m.BlobDiffs {
		out = append(out, fmt.Sprintf("Blobs %s → %s: %d only in %s, %d only in %s, %d changed", esc(d.From), esc(d.To), len(d.OnlyInFrom), esc(d.From), len(d.OnlyInTo), esc(d.To), len(d.Changed)))
	}
	return out
}

// lambdaNotConvergent counts the λ runs that are not convergent.
func lambdaNotConvergent(p *ProbeDetail) (n, total int) {
	for _, q := range p.Questions {
		for _, st := range q.Lambda {
			for _, s := range st {
				total++
				if lambdaState(s) != LambdaConvergent {
					n++
				}
			}
		}
	}
	return n, total
}

// mdEvidence renders the evidence of every check that has some, within
// budget characters.
func mdEvidence(v *gate.Verdict, budget int) string {
	total, checks := 0, 0
	for _, c := range v.Checks {
		if len(c.Evidence) > 0 {
			total += len(c.Evidence)
			checks++
		}
	}
	if total == 0 {
		return ""
	}
	head := fmt.Sprintf("<details><summary>Evidence: %d lines from %d checks</summary>\n\n", total, checks)
	const foot = "</details>\n\n"
	note := func(n int) string {
		return fmt.Sprintf("_%d more evidence lines not shown (comment size limit); see report.json._\n\n", n)
	}
	// Room for the head, the foot and the longest possible note.
	room := budget - utf8.RuneCountInString(head) - len(foot) - utf8.RuneCountInString(note(total))
	if room < 0 {
		return ""
	}
	var b strings.Builder
	shown := 0
	for _, c := range v.Checks {
		if len(c.Evidence) == 0 {
			continue
		}
		lines := c.Evidence
		extra := 0
		if len(lines) > mdEvidencePerCheck {
			lines, extra = lines[:mdEvidencePerCheck], len(lines)-mdEvidencePerCheck
		}
		fence := codeFence(lines)
		sec := fmt.Sprintf("**%s** (%s)\n%stext\n", mdCell(c.Name), c.Status, fence)
		closing := fence + "\n"
		if extra > 0 {
			closing += fmt.Sprintf("_… and %d more for %s._\n", extra, mdCell(c.Name))
		}
		closing += "\n"
		used := utf8.RuneCountInString(sec) + utf8.RuneCountInString(closing)
		if used > room {
			break
		}
		var body strings.Builder
		n := 0
		for _, l := range lines {
			l = cutRunes(strings.ReplaceAll(l, "\n", " "), mdLineMax) + "\n"
			if used+utf8.RuneCountInString(l) > room {
				break
			}
			used += utf8.RuneCountInString(l)
			body.WriteString(l)
			n++
		}
		if n == 0 {
			break
		}
		b.WriteString(sec + body.String() + closing)
		room -= used
		shown += n + extra
		if n < len(lines) {
			break
		}
	}
	out := head + b.String()
	if shown < total {
		out += note(total - shown)
	}
	return out + foot
}

// codeFence returns a backtick fence longer than any run of backticks in
// lines.
func codeFence(lines []string) string {
	longest := 0
	for _, l := range lines {
		run := 0
		for _, r := range l {
			if r == '`' {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

// mdCell escapes text for a table cell: Markdown punctuation and pipes
// are backslash-escaped, newlines become spaces.
func mdCell(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '<', '>', '|', '~', '#', '&':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// mdCode puts s in a code span ("—" when empty).
func mdCode(s string) string {
	if s == "" {
		return "—"
	}
	if strings.Contains(s, "`") {
		return mdCell(s)
	}
	return "`" + s + "`"
}

func mdTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// cutRunes shortens s to at most n characters, ending in "…" when cut.
func cutRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// listCut joins at most n items, saying how many more there are.
func listCut(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}
