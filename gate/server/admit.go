package server

import (
	"time"

	"github.com/ragparity/ragparity/gate"
)

// AdmitRequest is what a router asks.
type AdmitRequest struct {
	Release      string // X-Release ("" = any)
	Pin          string // X-Region-Pin
	ClientRegion string // ?client_region= or X-Client-Region
	IndexHash    string // X-Index-Hash ("" = any)
	SchemaRev    string // X-Schema-Rev ("" = any)
	ModelTag     string // X-Model-Tag ("" = any)
}

// AdmitResult is the answer: Code is the HTTP status (200, 409, 503).
type AdmitResult struct {
	Code   int
	Region string // X-Route-Region when Code is 200
	Reason string // X-Ragparity-Reason otherwise
}

// Admitter answers admission from one verdict, without I/O. It is
// immutable; build a new one for each verdict.
type Admitter struct {
	v          *gate.Verdict
	admitted   map[string]*gate.RegionVerdict
	preference map[string][]string
	fallback   []string
}

// NewAdmitter precomputes the admission table of a verdict. preference maps
// a client region to the regions to try in order; regions without an entry
// use the verdict's region order.
func NewAdmitter(v *gate.Verdict, preference map[string][]string) *Admitter {
	a := &Admitter{v: v, admitted: map[string]*gate.RegionVerdict{}, preference: preference}
	if v == nil {
		return a
	}
	for i := range v.Regions {
		r := &v.Regions[i]
		a.fallback = append(a.fallback, r.Name)
		if r.Admit && v.Decision != gate.Inconclusive {
			a.admitted[r.Name] = r
		}
	}
	return a
}

// Verdict returns the verdict the admitter answers from.
func (a *Admitter) Verdict() *gate.Verdict { return a.v }

func (a *Admitter) matches(r *gate.RegionVerdict, q *AdmitRequest) bool {
	return (q.IndexHash == "" || q.IndexHash == r.IndexHash) &&
		(q.SchemaRev == "" || q.SchemaRev == r.SchemaRev) &&
		(q.ModelTag == "" || q.ModelTag == r.ModelTag)
}

// Admit answers one request.
func (a *Admitter) Admit(q *AdmitRequest, now time.Time) AdmitResult {
	if a.v == nil {
		return AdmitResult{Code: 503, Reason: "no verdict yet"}
	}
	if q.Release != "" && q.Release != a.v.Release {
		return AdmitResult{Code: 409, Reason: "verdict is for release " + a.v.Release}
	}
	if a.v.Expired(now) {
		return AdmitResult{Code: 503, Reason: "verdict expired"}
	}
	if a.v.Decision == gate.Inconclusive {
		return AdmitResult{Code: 503, Reason: "verdict inconclusive"}
	}
	if q.Pin != "" {
		if r, ok := a.admitted[q.Pin]; ok && a.matches(r, q) {
			return AdmitResult{Code: 200, Region: q.Pin}
		}
	}
	order := a.preference[q.ClientRegion]
	if order == nil {
		order = a.fallback
	}
	for _, name := range order {
		if r, ok := a.admitted[name]; ok && a.matches(r, q) {
			return AdmitResult{Code: 200, Region: name}
		}
	}
	if q.Pin != "" {
		return AdmitResult{Code: 503, Reason: "region " + q.Pin + " not admitted and no admitted fallback matches"}
	}
	return AdmitResult{Code: 503, Reason: "no admitted region matches"}
}
