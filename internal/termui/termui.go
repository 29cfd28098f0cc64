// Package termui draws the status lines the commands print on a terminal
// while they scan (nothing when stderr is not a terminal or output is
// JSON), and sizes in human units.
package termui

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// Line is one status line, rewritten in place, with a part per named
// item (a region) in the order they first reported.
type Line struct {
	mu     sync.Mutex
	w      io.Writer
	on     bool
	prefix string
	sep    string
	parts  map[string]string
	order  []string
}

// NewLine draws prefix and the items' parts joined by sep on w when it
// is a terminal and quiet is false; otherwise the Line is off and its
// callbacks are nil.
func NewLine(w io.Writer, prefix, sep string, quiet bool) *Line {
	l := &Line{w: w, prefix: prefix, sep: sep, parts: map[string]string{}}
	if f, ok := w.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) {
		l.on = true
	}
	return l
}

// On says whether the line is drawn.
func (l *Line) On() bool { return l.on }

// set records item's part and redraws the line.
func (l *Line) set(item, part string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.parts[item]; !ok {
		l.order = append(l.order, item)
	}
	l.parts[item] = part
	var ps []string
	for _, it := range l.order {
		ps = append(ps, l.parts[it])
	}
	fmt.Fprintf(l.w, "\r\033[K%s%s", l.prefix, strings.Join(ps, l.sep))
}

// Points returns item's callback for a count of points read (nil when the
// line is off).
func (l *Line) Points(item string) func(n int64) {
	if !l.on {
		return nil
	}
	l.set(item, fmt.Sprintf("%s %d", item, 0))
	return func(n int64) { l.set(item, fmt.Sprintf("%s %d", item, n)) }
}

// Objects returns item's callback for objects and bytes read (nil when the
// line is off).
func (l *Line) Objects(item string) func(objects, bytes int64) {
	if !l.on {
		return nil
	}
	l.set(item, fmt.Sprintf("%s 0 objects, %s read", item, Bytes(0)))
	return func(objects, bytes int64) {
		l.set(item, fmt.Sprintf("%s %d objects, %s read", item, objects, Bytes(bytes)))
	}
}

// Done clears the line.
func (l *Line) Done() {
	if l.on {
		fmt.Fprint(l.w, "\r\033[K")
	}
}

// Bytes is n in binary units: "512 B", "1.5 KiB", "3.0 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for x := n / unit; x >= unit; x /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
