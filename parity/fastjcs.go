package parity

import (
	"bytes"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// fastCanonical canonicalises the common shape of RAG payloads (objects,
// arrays, plain strings, numbers, literals) without building a tree, and
// reports ok=false for anything it does not handle with certainty (escapes
// in strings, non-ASCII keys, duplicate keys, malformed input): the caller
// then uses the RFC 8785 library. FuzzFastCanonical checks that whenever
// this path answers, it answers exactly what the library does.
func fastCanonical(dst, in []byte) (out []byte, ok bool) {
	var p fastParser
	return p.canonical(dst, in)
}

// canonical is fastCanonical reusing p's scratch buffers (a Hasher keeps
// one parser, so a payload costs no allocation once they have grown).
func (p *fastParser) canonical(dst, in []byte) (out []byte, ok bool) {
	p.in, p.i, p.depth = in, 0, 0
	p.ws()
	out, ok = p.value(dst)
	if !ok {
		return dst, false
	}
	p.ws()
	return out, p.i == len(p.in)
}

type fastParser struct {
	in []byte
	i  int
	// Per object nesting depth: the members being sorted and the bytes of
	// their canonical values (a nested object uses the next depth's, so
	// nothing it writes overlaps its parent's).
	depth int
	ms    [][]member
	vals  [][]byte
}

func (p *fastParser) ws() {
	for p.i < len(p.in) {
		switch p.in[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

type member struct {
	key, val []byte // key without quotes; val canonical
}

func (p *fastParser) value(dst []byte) ([]byte, bool) {
	if p.i >= len(p.in) {
		return dst, false
	}
	switch c := p.in[p.i]; {
	case c == '{':
		return p.object(dst)
	case c == '[':
		p.i++
		dst = append(dst, '[')
		p.ws()
		if p.i < len(p.in) && p.in[p.i] == ']' {
			p.i++
			return append(dst, ']'), true
		}
		for {
			var ok bool
			p.ws()
			if dst, ok = p.value(dst); !ok {
				return dst, false
			}
			p.ws()
			if p.i >= len(p.in) {
				return dst, false
			}
			if p.in[p.i] == ']' {
				p.i++
				return append(dst, ']'), true
			}
			if p.in[p.i] != ',' {
				return dst, false
			}
			p.i++
			dst = append(dst, ',')
		}
	case c == '"':
		s, ok := p.str()
		if !ok {
			return dst, false
		}
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"'), true
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(dst)
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(p.in[p.i:], []byte(lit)) {
				p.i += len(lit)
				return append(dst, lit...), true
			}
		}
		return dst, false
	}
}

// str reads a string with no escapes and no control characters, valid
// UTF-8; it returns the raw content.
func (p *fastParser) str() ([]byte, bool) {
	start := p.i + 1
	for j := start; j < len(p.in); j++ {
		switch c := p.in[j]; {
		case c == '"':
			p.i = j + 1
			s := p.in[start:j]
			return s, utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

func (p *fastParser) number(dst []byte) ([]byte, bool) {
	start := p.i
	integer := true
	for p.i < len(p.in) {
		c := p.in[p.i]
		if c >= '0' && c <= '9' || c == '-' {
			p.i++
			continue
		}
		if c == '.' || c == 'e' || c == 'E' || c == '+' {
			integer = false
			p.i++
			continue
		}
		break
	}
	tok := p.in[start:p.i]
	// Plain integers of up to 15 digits are exact in float64 and print as
	// themselves in ES6 form (after dropping a negative zero's sign).
	if integer {
		d := tok
		if len(d) > 0 && d[0] == '-' {
			d = d[1:]
		}
		if len(d) == 0 || len(d) > 15 || (len(d) > 1 && d[0] == '0') || bytes.IndexByte(d, '-') >= 0 {
			return dst, false
		}
		if string(d) == "0" {
			return append(dst, '0'), true
		}
		return append(dst, tok...), true
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil || !validJSONNumber(tok) {
		return dst, false
	}
	s, err := jcs.NumberToJSON(f)
	if err != nil {
		return dst, false
	}
	return append(dst, s...), true
}

// validJSONNumber checks the JSON number grammar (ParseFloat is laxer).
func validJSONNumber(t []byte) bool {
	i := 0
	if i < len(t) && t[i] == '-' {
		i++
	}
	if i >= len(t) {
		return false
	}
	if t[i] == '0' {
		i++
	} else if t[i] >= '1' && t[i] <= '9' {
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(t) && t[i] == '.' {
		i++
		d := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		i++
		if i < len(t) && (t[i] == '+' || t[i] == '-') {
			i++
		}
		d := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(t)
}

func (p *fastParser) object(dst []byte) ([]byte, bool) {
	p.i++
	d := p.depth
	if d == len(p.ms) {
		p.ms = append(p.ms, nil)
		p.vals = append(p.vals, nil)
	}
	p.depth++
	defer func() { p.depth-- }()
	ms := p.ms[d][:0]
	defer func() { p.ms[d] = ms[:0] }()
	vals := p.vals[d][:0]
	defer func() { p.vals[d] = vals[:0] }()
	p.ws()
	if p.i < len(p.in) && p.in[p.i] == '}' {
		p.i++
		return append(dst, '{', '}'), true
	}
	for {
		p.ws()
		if p.i >= len(p.in) || p.in[p.i] != '"' {
			return dst, false
		}
		k, ok := p.str()
		if !ok {
			return dst, false
		}
		for _, c := range k {
			if c >= 0x80 {
				return dst, false // UTF-16 ordering: leave to the library
			}
		}
		p.ws()
		if p.i >= len(p.in) || p.in[p.i] != ':' {
			return dst, false
		}
		p.i++
		p.ws()
		// Values are appended to this depth's buffer; earlier members'
		// slices stay valid when it grows (the old array is not written).
		start := len(vals)
		vals, ok = p.value(vals)
		if !ok {
			return dst, false
		}
		ms = append(ms, member{k, vals[start:len(vals):len(vals)]})
		p.ws()
		if p.i >= len(p.in) {
			return dst, false
		}
		if p.in[p.i] == '}' {
			p.i++
			break
		}
		if p.in[p.i] != ',' {
			return dst, false
		}
		p.i++
	}
	slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	dst = append(dst, '{')
	for i, m := range ms {
		if i > 0 {
			if bytes.Equal(ms[i-1].key, m.key) {
				return dst, false // duplicate key
			}
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, m.key...)
		dst = append(dst, '"', ':')
		dst = append(dst, m.val...)
	}
	return append(dst, '}'), true
}
