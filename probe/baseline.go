package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// BaselineFormat names the JSON form of a Baseline.
const BaselineFormat = "ragparity/probe-baseline/v1"

// Baseline is the probe part of a release baseline (metrics.md "Failover
// gate"): what a faithful region of the release answered, per question and
// seed, with the parameters that make those answers comparable. RunWith
// compares a region with it (Options.Baseline) instead of with other
// regions, so a lone region can be decided.
//
// Its JSON form (Marshal) is stable: fields in a fixed order, questions in
// the gold set's order, runs by seed, no maps.
type Baseline struct {
	Format string `json:"format"`
	// Region is the region it was recorded from.
	Region string `json:"region"`
	// ModelTag is the embedder's model tag: ΔS is only comparable under it.
	ModelTag string `json:"model_tag"`
	// K is the number of hits per probe; Seeds the seeds run; Search the
	// parity search mode (exact or ann).
	K      int      `json:"k"`
	Seeds  []uint64 `json:"seeds"`
	Search string   `json:"search"`
	// Gold identifies the gold set.
	Gold      GoldInfo           `json:"goldset"`
	Questions []BaselineQuestion `json:"questions"`
}

// BaselineQuestion is one gold question's recorded runs, one per seed.
type BaselineQuestion struct {
	ID   string        `json:"id"`
	Runs []BaselineRun `json:"runs"`
}

// BaselineRun is one recorded probe run.
type BaselineRun struct {
	Seed uint64 `json:"seed"`
	// Variant is the question variant the seed picked (0: the question).
	Variant int      `json:"variant"`
	TopK    []string `json:"top_k"`
	DeltaS  float64  `json:"delta_s"`
	Lambda  Lambda   `json:"lambda"`
	// Covered: a gold id was in the top k (for the release floors).
	Covered bool `json:"covered"`
}

// RecordBaseline records region's runs of rep as a Baseline. The region
// must have been probed (present in rep.Regions).
func RecordBaseline(rep *Report, region string) (*Baseline, error) {
	ri := slices.Index(rep.Regions, region)
	if ri < 0 {
		return nil, fmt.Errorf("probe: baseline: region %s has no probe results in this report (probed: %v)", region, rep.Regions)
	}
	search := rep.Config.Search
	if search == "" {
		search = SearchExact
	}
	b := &Baseline{Format: BaselineFormat, Region: region, ModelTag: rep.ModelTag, K: rep.Config.K,
		Seeds: slices.Clone(rep.Seeds), Search: search, Gold: rep.Gold, Questions: make([]BaselineQuestion, 0, len(rep.Questions))}
	for _, q := range rep.Questions {
		bq := BaselineQuestion{ID: q.ID}
		for _, run := range q.Regions[ri].Runs {
			bq.Runs = append(bq.Runs, BaselineRun{Seed: run.Seed, Variant: run.Variant, TopK: slices.Clone(run.TopK),
				DeltaS: run.DeltaS, Lambda: run.Lambda, Covered: run.Covered})
		}
		b.Questions = append(b.Questions, bq)
	}
	return b, nil
}

// Marshal returns the baseline's stable JSON form (indented, one final
// newline): the same baseline always gives the same bytes.
func (b *Baseline) Marshal() ([]byte, error) {
	js, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("probe: baseline: %w", err)
	}
	return append(js, '\n'), nil
}

// ParseBaseline reads a baseline's JSON form strictly (an unknown field is
// an error) and checks it is complete.
func ParseBaseline(data []byte) (*Baseline, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Baseline
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("probe: baseline: %w", err)
	}
	if err := b.validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

func (b *Baseline) validate() error {
	bad := func(field string, err error) error { return fmt.Errorf("probe: baseline: %s: %w", field, err) }
	switch {
	case b.Format != BaselineFormat:
		return bad("format", fmt.Errorf("%q, want %q", b.Format, BaselineFormat))
	case b.ModelTag == "":
		return bad("model_tag", errors.New("missing"))
	case b.K < 1:
		return bad("k", fmt.Errorf("%d is not a hit count", b.K))
	case len(b.Seeds) == 0:
		return bad("seeds", errors.New("none"))
	case b.Search != SearchExact && b.Search != SearchANN:
		return bad("search", fmt.Errorf("%q is neither %q nor %q", b.Search, SearchExact, SearchANN))
	case len(b.Questions) == 0:
		return bad("questions", errors.New("none"))
	}
	seen := map[string]bool{}
	for i, q := range b.Questions {
		if q.ID == "" || seen[q.ID] {
			return bad(fmt.Sprintf("questions[%d].id", i), fmt.Errorf("%q is empty or repeated", q.ID))
		}
		seen[q.ID] = true
		if len(q.Runs) != len(b.Seeds) {
			return bad(fmt.Sprintf("questions[%d].runs", i), fmt.Errorf("%d runs for %d seeds", len(q.Runs), len(b.Seeds)))
		}
		for j, r := range q.Runs {
			if r.Seed != b.Seeds[j] {
				return bad(fmt.Sprintf("questions[%d].runs[%d].seed", i, j), fmt.Errorf("%d, want %d", r.Seed, b.Seeds[j]))
			}
			switch r.Lambda {
			case Convergent, Recursive, Divergent, Chaotic:
			default:
				return bad(fmt.Sprintf("questions[%d].runs[%d].lambda", i, j), fmt.Errorf("unknown state %q", r.Lambda))
			}
			if !(r.DeltaS >= 0 && r.DeltaS <= 1) {
				return bad(fmt.Sprintf("questions[%d].runs[%d].delta_s", i, j), fmt.Errorf("%v is not in [0, 1]", r.DeltaS))
			}
		}
	}
	return nil
}

// run returns the recorded run of question id on seed, if any.
func (b *Baseline) run(id string, seed uint64) (BaselineRun, bool) {
	for _, q := range b.Questions {
		if q.ID == id {
			for _, r := range q.Runs {
				if r.Seed == seed {
					return r, true
				}
			}
		}
	}
	return BaselineRun{}, false
}
