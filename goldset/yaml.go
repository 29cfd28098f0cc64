package goldset

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

type yamlDoc struct {
	Questions []rawQuestion `yaml:"questions"`
}

// yamlLines finds the lines of YAML paths in one parsed file.
type yamlLines struct {
	f *ast.File
}

func (y yamlLines) line(path string) int {
	if y.f == nil {
		return 0
	}
	p, err := yaml.PathString(path)
	if err != nil {
		return 0
	}
	n, err := p.FilterFile(y.f)
	if err != nil || n == nil || n.GetToken() == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

// ParseYAML parses a YAML gold set (a list under `questions:`); name is
// used in errors.
func ParseYAML(name string, b []byte) (s *Set, err error) {
	// goccy/go-yaml panics on some malformed input (see config).
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, &Error{File: name, Err: fmt.Errorf("malformed YAML (parser failed: %v)", r)}
		}
	}()
	if err := checkUTF8(name, b); err != nil {
		return nil, err
	}
	if strings.TrimSpace(string(b)) == "" {
		return nil, &Error{File: name, Err: errors.New("empty gold set")}
	}
	f, perr := parser.ParseBytes(b, 0)
	if perr != nil {
		return nil, yamlError(name, yamlLines{}, 0, perr)
	}
	yl := yamlLines{f}
	var starts []int // line of each question
	for i := 0; ; i++ {
		l := yl.line(fmt.Sprintf("$.questions[%d]", i))
		if l == 0 {
			break
		}
		starts = append(starts, l)
	}
	var d yamlDoc
	if err := yaml.UnmarshalWithOptions(b, &d, yaml.Strict()); err != nil {
		return nil, yamlError(name, yl, len(starts), err)
	}
	s = &Set{Source: name, Format: "yaml"}
	if len(d.Questions) == 0 {
		return nil, &Error{File: name, Line: yl.line("$.questions"), Field: "questions", Err: errors.New("no questions (want a list of questions under `questions:`)")}
	}
	lines := map[string]int{}
	for i := range d.Questions {
		q, ferr := d.Questions[i].validate()
		base := fmt.Sprintf("questions[%d]", i)
		if ferr != nil {
			l := yl.line("$." + base + "." + strings.SplitN(ferr.field, "[", 2)[0])
			if idx := strings.Index(ferr.field, "["); idx > 0 {
				if l2 := yl.line("$." + base + "." + ferr.field); l2 > 0 {
					l = l2
				}
			}
			if l == 0 && i < len(starts) {
				l = starts[i]
			}
			return nil, &Error{File: name, Line: l, Field: base + "." + ferr.field, Err: ferr.err}
		}
		if i < len(starts) {
			q.Line = starts[i]
		}
		if err := s.add(q, lines); err != nil {
			return nil, &Error{File: name, Line: yl.line("$." + base + ".id"), Field: base + ".id", Err: err}
		}
	}
	return s, nil
}

// yamlError turns a goccy error into an *Error naming the line and, when
// it can be found, the question and field.
func yamlError(name string, yl yamlLines, n int, err error) error {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		return &Error{File: name, Err: err}
	}
	tok := ye.GetToken()
	line := tok.Position.Line
	msg := ye.GetMessage()
	if strings.HasPrefix(msg, "unknown field") {
		field := tok.Value
		q := questionAt(yl, n, line)
		if q < 0 {
			return &Error{File: name, Line: line, Field: field, Err: errors.New("unknown field (the gold set has one key, `questions`)")}
		}
		return &Error{File: name, Line: line, Field: fmt.Sprintf("questions[%d].%s", q, field), Err: fmt.Errorf("unknown field (known: %s)", strings.Join(fields, ", "))}
	}
	if q := questionAt(yl, n, line); q >= 0 {
		for _, f := range fields {
			if yl.line(fmt.Sprintf("$.questions[%d].%s", q, f)) == line {
				return &Error{File: name, Line: line, Field: fmt.Sprintf("questions[%d].%s", q, f), Err: fmt.Errorf("want %s (%s)", kindOf(f), msg)}
			}
		}
		return &Error{File: name, Line: line, Field: fmt.Sprintf("questions[%d]", q), Err: errors.New(msg)}
	}
	if yl.line("$.questions") == line {
		return &Error{File: name, Line: line, Field: "questions", Err: fmt.Errorf("want a list of questions (%s)", msg)}
	}
	return &Error{File: name, Line: line, Err: errors.New(msg)}
}

// questionAt returns the index of the question whose lines hold line, or -1.
func questionAt(yl yamlLines, n, line int) int {
	starts := make([]int, n)
	for i := range starts {
		starts[i] = yl.line(fmt.Sprintf("$.questions[%d]", i))
	}
	i := sort.Search(n, func(i int) bool { return starts[i] > line }) - 1
	if i < 0 || starts[i] == 0 {
		return -1
	}
	return i
}
