package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/ragparity/ragparity/gate"
)

// Details is the detail a report carries besides the verdict, under the
// "details" key of report.json.
type Details struct {
	Probes     *ProbeDetail       `json:"probes,omitempty"`
	BucketMaps []BucketMap        `json:"bucket_maps,omitempty"`
	BlobDiffs  []BlobDiff         `json:"blob_diffs,omitempty"`
	Measures   map[string]Measure `json:"measures,omitempty"`
}

// document is report.json: the verdict's own fields, unchanged (so its
// signature still verifies), plus "details".
type document struct {
	*gate.Verdict
	Details *Details `json:"details,omitempty"`
}

func (m *Model) details() *Details {
	if m.Probes == nil && len(m.BucketMaps) == 0 && len(m.BlobDiffs) == 0 && len(m.Measures) == 0 {
		return nil
	}
	return &Details{Probes: m.Probes, BucketMaps: m.BucketMaps, BlobDiffs: m.BlobDiffs, Measures: m.Measures}
}

// JSON writes the verdict as JSON (schemas/verdict.schema.json): every
// field of the verdict as gate signs it, plus the model's detail under
// "details". A bare verdict (ragparity verify --json) is valid too.
func JSON(w io.Writer, m *Model) error {
	if err := m.validate(); err != nil {
		return err
	}
	if err := checkFinite(m.Probes); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(document{Verdict: m.Verdict, Details: m.details()})
}

// checkFinite rejects NaN and infinite figures, which JSON cannot carry.
func checkFinite(p *ProbeDetail) error {
	if p == nil {
		return nil
	}
	bad := func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }
	if bad(p.DriftThreshold) || bad(p.DeltaSMax) {
		return errors.New("reports: probe thresholds must be finite")
	}
	for _, q := range p.Questions {
		if bad(q.Drift) {
			return fmt.Errorf("reports: probe question %s: drift is %v", q.ID, q.Drift)
		}
		for r, x := range q.DeltaS {
			if bad(x) {
				return fmt.Errorf("reports: probe question %s: ΔS in %s is %v", q.ID, r, x)
			}
		}
	}
	return nil
}

// ErrNotVerdict is returned by Decode for input that is not a verdict.
var ErrNotVerdict = errors.New("not a ragparity verdict")

// Decode reads a verdict (ragparity verify --json) or a report.json and
// returns its model. It checks what the renderers rely on: an id, a known
// decision, at least one check, and known statuses.
func Decode(r io.Reader) (*Model, error) {
	doc := document{Verdict: &gate.Verdict{}}
	dec := json.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty", ErrNotVerdict)
		}
		return nil, fmt.Errorf("%w: %v", ErrNotVerdict, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one JSON value", ErrNotVerdict)
	}
	v := doc.Verdict
	switch {
	case v.ID == "":
		return nil, fmt.Errorf("%w: no \"id\"", ErrNotVerdict)
	case v.Decision != gate.Pass && v.Decision != gate.Degraded && v.Decision != gate.Fail && v.Decision != gate.Inconclusive:
		return nil, fmt.Errorf("%w: \"decision\" is %q, not pass, degraded, fail or inconclusive", ErrNotVerdict, v.Decision)
	case len(v.Checks) == 0:
		return nil, fmt.Errorf("%w: no \"checks\"", ErrNotVerdict)
	}
	for i, c := range v.Checks {
		if c.Name == "" {
			return nil, fmt.Errorf("%w: checks[%d] has no name", ErrNotVerdict, i)
		}
		switch c.Status {
		case gate.Pass, gate.Fail, gate.Inconclusive, gate.Skipped:
		default:
			return nil, fmt.Errorf("%w: check %s has status %q, not pass, fail, inconclusive or skipped", ErrNotVerdict, c.Name, c.Status)
		}
	}
	for i, r := range v.Regions {
		if r.Name == "" {
			return nil, fmt.Errorf("%w: regions[%d] has no name", ErrNotVerdict, i)
		}
	}
	m := &Model{Verdict: v}
	if d := doc.Details; d != nil {
		m.Probes, m.BucketMaps, m.BlobDiffs, m.Measures = d.Probes, d.BucketMaps, d.BlobDiffs, d.Measures
	}
	return m, nil
}

// MaxVerdictBytes bounds a verdict file ReadFile reads.
const MaxVerdictBytes = 64 << 20

// ReadFile decodes the verdict or report.json at path ("-" reads stdin),
// refusing one larger than MaxVerdictBytes. Errors name the file.
func ReadFile(path string, stdin io.Reader) (*Model, error) {
	r, name := stdin, "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r, name = f, path
	}
	lr := &io.LimitedReader{R: r, N: MaxVerdictBytes + 1}
	m, err := Decode(lr)
	if lr.N <= 0 {
		return nil, fmt.Errorf("%s: larger than %d MiB, not a verdict", name, MaxVerdictBytes>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}
