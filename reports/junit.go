package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/ragparity/ragparity/gate"
)

// JUnitSuite is the name of the test suite in the JUnit report.
const JUnitSuite = "ragparity-gate"

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
	Skipped   *junitProblem `xml:"skipped"`
	SystemOut *junitText    `xml:"system-out"`
}

type junitProblem struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Body    string `xml:",cdata"`
}

type junitText struct {
	Body string `xml:",cdata"`
}

func seconds(ms int64) string { return fmt.Sprintf("%.3f", float64(ms)/1000) }

// JUnit writes the verdict as JUnit XML: one test suite, JUnitSuite, with
// one test case per check. A failed check is a <failure> carrying its
// evidence, an inconclusive one an <error>, a skipped one <skipped/>.
func JUnit(w io.Writer, m *Model) error {
	if err := m.validate(); err != nil {
		return err
	}
	v := m.Verdict
	s := junitSuite{Name: JUnitSuite, Tests: len(v.Checks)}
	if !v.CreatedAt.IsZero() {
		s.Timestamp = v.CreatedAt.UTC().Format("2006-01-02T15:04:05")
	}
	for _, p := range [][2]string{
		{"release", v.Release}, {"verdict_id", v.ID}, {"decision", string(v.Decision)}, {"reference", v.Reference},
		{"inputs_digest", v.InputsDigest}, {"key_id", v.KeyID},
	} {
		if p[1] != "" {
			s.Properties = append(s.Properties, junitProperty{p[0], p[1]})
		}
	}
	for _, r := range v.Regions {
		adm := string(r.Status) + ": admit"
		if !r.Admit {
			adm = string(r.Status) + ": block: " + strings.Join(r.Reasons, "; ")
		}
		s.Properties = append(s.Properties, junitProperty{"region." + r.Name, adm})
	}
	var total int64
	for _, c := range v.Checks {
		total += c.ElapsedMS
		tc := junitCase{Name: c.Name, Classname: JUnitSuite, Time: seconds(c.ElapsedMS), SystemOut: junitOut(c)}
		switch c.Status {
		case gate.Pass:
		case gate.Fail:
			s.Failures++
			tc.Failure = &junitProblem{Message: figureAgainst(c), Type: "fail", Body: junitBody(c)}
		case gate.Skipped:
			s.Skipped++
			tc.Skipped = &junitProblem{Message: firstNonEmpty(c.Figure, "skipped")}
		default:
			s.Errors++
			msg := c.Error
			if msg == "" {
				msg = fmt.Sprintf("check is %s", firstNonEmpty(string(c.Status), "without a status"))
			}
			tc.Error = &junitProblem{Message: msg, Type: firstNonEmpty(string(c.Status), "unknown"), Body: junitBody(c)}
		}
		s.Cases = append(s.Cases, tc)
	}
	s.Time = seconds(total)
	doc := junitSuites{Name: "ragparity", Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// figureAgainst is "figure (threshold: ...)".
func figureAgainst(c gate.Check) string {
	s := firstNonEmpty(c.Figure, string(c.Status))
	if c.Threshold != "" {
		s += " (threshold: " + c.Threshold + ")"
	}
	return s
}

func junitBody(c gate.Check) string {
	var b strings.Builder
	if c.Error != "" {
		b.WriteString("error: " + c.Error + "\n")
	}
	if len(c.FailedRegions) > 0 {
		b.WriteString("failed regions: " + strings.Join(c.FailedRegions, ", ") + "\n")
	}
	for _, e := range c.Evidence {
		b.WriteString(e + "\n")
	}
	return xmlSafe(b.String())
}

func junitOut(c gate.Check) *junitText {
	var b strings.Builder
	fmt.Fprintf(&b, "status: %s\n", c.Status)
	if c.Figure != "" {
		fmt.Fprintf(&b, "figure: %s\n", c.Figure)
	}
	if c.Threshold != "" {
		fmt.Fprintf(&b, "threshold: %s\n", c.Threshold)
	}
	return &junitText{xmlSafe(b.String())}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// xmlSafe replaces what XML 1.0 cannot carry (control characters, invalid
// UTF-8) with U+FFFD; CDATA sections are not escaped by encoding/xml.
func xmlSafe(s string) string {
	ok := func(r rune) bool {
		return r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !ok(r) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
