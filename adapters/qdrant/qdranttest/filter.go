package qdranttest

import (
	"github.com/qdrant/go-client/qdrant"
)

// compileFilter turns a Filter into a predicate. Supported conditions:
// has_id, has_vector and nested filters; must, should (at least one) and
// must_not. Payload conditions answer Unimplemented.
func compileFilter(f *qdrant.Filter) (func(*point) bool, error) {
	if f == nil {
		return func(*point) bool { return true }, nil
	}
	if f.MinShould != nil {
		return nil, errUnimplemented("min_should")
	}
	compileAll := func(cs []*qdrant.Condition) ([]func(*point) bool, error) {
		out := make([]func(*point) bool, 0, len(cs))
		for _, c := range cs {
			m, err := compileCondition(c)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	}
	must, err := compileAll(f.GetMust())
	if err != nil {
		return nil, err
	}
	should, err := compileAll(f.GetShould())
	if err != nil {
		return nil, err
	}
	mustNot, err := compileAll(f.GetMustNot())
	if err != nil {
		return nil, err
	}
	return func(p *point) bool {
		for _, m := range must {
			if !m(p) {
				return false
			}
		}
		for _, m := range mustNot {
			if m(p) {
				return false
			}
		}
		if len(should) == 0 {
			return true
		}
		for _, m := range should {
			if m(p) {
				return true
			}
		}
		return false
	}, nil
}

func compileCondition(c *qdrant.Condition) (func(*point) bool, error) {
	switch o := c.GetConditionOneOf().(type) {
	case *qdrant.Condition_HasId:
		set := map[pid]bool{}
		for _, id := range o.HasId.GetHasId() {
			p, err := parsePID(id)
			if err != nil {
				return nil, err
			}
			set[p] = true
		}
		return func(p *point) bool { return set[p.id] }, nil
	case *qdrant.Condition_HasVector:
		name := o.HasVector.GetHasVector()
		return func(p *point) bool { return p.hasVector(name) }, nil
	case *qdrant.Condition_Filter:
		return compileFilter(o.Filter)
	case *qdrant.Condition_Field:
		return nil, errUnimplemented("payload field conditions")
	case *qdrant.Condition_IsEmpty, *qdrant.Condition_IsNull:
		return nil, errUnimplemented("is_empty / is_null conditions")
	case *qdrant.Condition_Nested:
		return nil, errUnimplemented("nested conditions")
	default:
		return nil, errBadInput("Malformed condition")
	}
}

// payloadSel is a parsed WithPayloadSelector.
type payloadSel struct {
	enabled bool
	include map[string]bool // top-level keys; nil means all
	exclude map[string]bool
}

// newPayloadSel parses sel; def is what an absent selector means (Scroll
// and Get return the payload by default, Search and Query do not).
func newPayloadSel(sel *qdrant.WithPayloadSelector, def bool) (payloadSel, error) {
	switch o := sel.GetSelectorOptions().(type) {
	case nil:
		return payloadSel{enabled: def}, nil
	case *qdrant.WithPayloadSelector_Enable:
		return payloadSel{enabled: o.Enable}, nil
	case *qdrant.WithPayloadSelector_Include:
		m := map[string]bool{}
		for _, f := range o.Include.GetFields() {
			m[f] = true
		}
		return payloadSel{enabled: true, include: m}, nil
	case *qdrant.WithPayloadSelector_Exclude:
		m := map[string]bool{}
		for _, f := range o.Exclude.GetFields() {
			m[f] = true
		}
		return payloadSel{enabled: true, exclude: m}, nil
	default:
		return payloadSel{}, errBadInput("Malformed payload selector")
	}
}

// apply returns the selected part of payload. Values are shared, never
// copied: stored values are immutable (an upsert replaces the whole map).
func (ps payloadSel) apply(payload map[string]*qdrant.Value) map[string]*qdrant.Value {
	if !ps.enabled || len(payload) == 0 {
		return nil
	}
	out := make(map[string]*qdrant.Value, len(payload))
	for k, v := range payload {
		if ps.include != nil && !ps.include[k] {
			continue
		}
		if ps.exclude[k] {
			continue
		}
		out[k] = v
	}
	return out
}

// vectorSel is a parsed WithVectorsSelector.
type vectorSel struct {
	all   bool
	names map[string]bool
}

func newVectorSel(sel *qdrant.WithVectorsSelector) vectorSel {
	switch o := sel.GetSelectorOptions().(type) {
	case *qdrant.WithVectorsSelector_Enable:
		return vectorSel{all: o.Enable}
	case *qdrant.WithVectorsSelector_Include:
		m := map[string]bool{}
		for _, n := range o.Include.GetNames() {
			m[n] = true
		}
		return vectorSel{names: m}
	default:
		return vectorSel{}
	}
}

func (v vectorSel) any() bool              { return v.all || len(v.names) > 0 }
func (v vectorSel) wants(name string) bool { return v.all || v.names[name] }
