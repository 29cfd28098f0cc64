// Package urlsafe parses URLs that may carry secrets (passwords, tokens)
// and reports failures without them: a URL that does not parse is shown as
// scheme://***@… and the parser's reason loses every quoted fragment (Go's
// url.Parse quotes the URL, or a part of the password such as the "port"
// of postgres://u:pa/ss@host, in its errors).
package urlsafe

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Unparseable is how a URL that does not parse is shown: its scheme only.
func Unparseable(raw string) string {
	if i := strings.Index(raw, "://"); i > 0 && validScheme(raw[:i]) {
		return raw[:i] + "://***@…"
	}
	return "***"
}

func validScheme(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

var quoted = regexp.MustCompile(`"[^"]*"`)

// Error is a URL that does not parse. Its message names neither the URL
// nor any part of it.
type Error struct {
	Shown  string // Unparseable(raw)
	Reason string // the parser's reason, quoted fragments removed
}

func (e *Error) Error() string {
	return fmt.Sprintf("not a valid URL (%s): %s; percent-encode any ':', '/', '@', '?' or '#' in a password", e.Shown, e.Reason)
}

// Parse is url.Parse whose error is an *Error.
func Parse(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &Error{Shown: Unparseable(raw), Reason: reason(err)}
	}
	return u, nil
}

func reason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return quoted.ReplaceAllString(err.Error(), "…")
}
