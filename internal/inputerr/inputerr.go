// Package inputerr holds the error type shared by the input loaders (gold
// sets, config files) to report bad input by file, line and field.
package inputerr

import (
	"fmt"
	"strings"
)

// Error is an input error naming the file, the line and the field. Line 0
// and an empty Field are left out of the message:
//
//	file[:line][: field]: err
type Error struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
