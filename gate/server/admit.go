package server

import (
	"slices"
	"strings"
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
	// Fallback is X-Ragparity-Fallback: "route" says the router routes on
	// X-Route-Region, so a pinned request to a region that is not admitted
	// may get 200 with another region; "" answers such a request 421.
	Fallback string
}

// FallbackRoute is the X-Ragparity-Fallback value of a router that routes
// on X-Route-Region.
const FallbackRoute = "route"

// MinHashPrefix is the shortest X-Index-Hash prefix (hex digits) matched
// against the verdict's index hashes.
const MinHashPrefix = 12

// AdmitResult is the answer: Code is the HTTP status (200, 400, 409, 421,
// 503).
type AdmitResult struct {
	Code int
	// Region is X-Route-Region: the region to route to (200), or the
	// admitted alternative to a pinned region that is not admitted (421).
	Region string
	Reason string // X-Ragparity-Reason when Code is not 200
}

// Admitter answers admission from one verdict, without I/O. It is
// immutable; build a new one for each verdict.
type Admitter struct {
	v          *gate.Verdict
	admitted   map[string]*gate.RegionVerdict
	preference map[string][]string
	fallback   []string
	hashes     []string          // the verdict's distinct index hashes
	misdirect  map[string]string // 421 reasons by pinned region, built once
}

// NewAdmitter precomputes the admission table of a verdict. preference maps
// a client region to the regions to try in order; regions without an entry
// use the verdict's region order.
func NewAdmitter(v *gate.Verdict, preference map[string][]string) *Admitter {
	a := &Admitter{v: v, admitted: map[string]*gate.RegionVerdict{}, preference: preference, misdirect: map[string]string{}}
	if v == nil {
		return a
	}
	for i := range v.Regions {
		r := &v.Regions[i]
		a.fallback = append(a.fallback, r.Name)
		if r.Admit && v.Decision != gate.Inconclusive {
			a.admitted[r.Name] = r
		}
		a.misdirect[r.Name] = misdirectReason(r.Name)
		if r.IndexHash != "" && !slices.Contains(a.hashes, r.IndexHash) {
			a.hashes = append(a.hashes, r.IndexHash)
		}
	}
	return a
}

func misdirectReason(pin string) string {
	return "region " + pin + " not admitted for this request; X-Route-Region names an admitted alternative (send X-Ragparity-Fallback: route to be routed there)"
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// indexHash resolves X-Index-Hash: a hash of the verdict as it is, a
// prefix of at least MinHashPrefix hex digits to the one hash it starts
// (ok false when it starts several), anything else as it is (it then
// matches no region).
func (a *Admitter) indexHash(q string) (full string, ok bool) {
	if q == "" || slices.Contains(a.hashes, q) || len(q) < MinHashPrefix || !isHex(q) {
		return q, true
	}
	full = q
	n := 0
	for _, h := range a.hashes {
		if len(h) > len(q) && strings.EqualFold(h[:len(q)], q) {
			full = h
			n++
		}
	}
	return full, n <= 1
}

// Verdict returns the verdict the admitter answers from.
func (a *Admitter) Verdict() *gate.Verdict { return a.v }

func (a *Admitter) matches(r *gate.RegionVerdict, q *AdmitRequest, indexHash string) bool {
	return (indexHash == "" || indexHash == r.IndexHash) &&
		(q.SchemaRev == "" || q.SchemaRev == r.SchemaRev) &&
		(q.ModelTag == "" || q.ModelTag == r.ModelTag)
}

// Admit answers one request. A pinned request goes to its region when
// that is admitted and matches; otherwise to the first admitted, matching
// region of the client region's preference (else the verdict's order),
// with 200 when the request says it follows X-Route-Region
// (X-Ragparity-Fallback: route) and 421 naming that region otherwise.
func (a *Admitter) Admit(q *AdmitRequest, now time.Time) AdmitResult {
	if q.Fallback != "" && !strings.EqualFold(q.Fallback, FallbackRoute) {
		return AdmitResult{Code: 400, Reason: "X-Ragparity-Fallback must be \"route\" (or absent)"}
	}
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
	follow := q.Fallback != ""
	ih, ok := a.indexHash(q.IndexHash)
	if !ok {
		return AdmitResult{Code: 400, Reason: "X-Index-Hash prefix starts several index hashes of the verdict: send more digits"}
	}
	if q.Pin != "" {
		if r, ok := a.admitted[q.Pin]; ok && a.matches(r, q, ih) {
			return AdmitResult{Code: 200, Region: q.Pin}
		}
	}
	order := a.preference[q.ClientRegion]
	if order == nil {
		order = a.fallback
	}
	for _, name := range order {
		if r, ok := a.admitted[name]; ok && a.matches(r, q, ih) {
			if q.Pin != "" && !follow {
				reason, ok := a.misdirect[q.Pin]
				if !ok {
					reason = misdirectReason(q.Pin)
				}
				return AdmitResult{Code: 421, Region: name, Reason: reason}
			}
			return AdmitResult{Code: 200, Region: name}
		}
	}
	if q.Pin != "" {
		return AdmitResult{Code: 503, Reason: "region " + q.Pin + " not admitted and no admitted fallback matches"}
	}
	return AdmitResult{Code: 503, Reason: "no admitted region matches"}
}
