package server

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ragparity/ragparity/gate"
)

// Metric labels: release_id is the verdict's release and revision its id,
// so a dashboard can tell which verification a figure comes from. The
// verdict families are computed at scrape time from the verdict being
// served, so they only ever show that one revision.
var (
	lblVerdict = []string{"release_id", "revision"}

	descVerdictInfo = prometheus.NewDesc("ragparity_gate_verdict_info",
		"The verdict being served (1).", append(lblVerdict, "decision", "key_id", "source"), nil)
	descVerdictStatus = prometheus.NewDesc("ragparity_gate_verdict_status",
		"1 for the verdict's decision (pass, fail, inconclusive), 0 for the others.", append(lblVerdict, "status"), nil)
	descVerdictAge = prometheus.NewDesc("ragparity_gate_verdict_age_seconds",
		"Seconds since the verdict was made.", lblVerdict, nil)
	descVerdictExpires = prometheus.NewDesc("ragparity_gate_verdict_expiry_timestamp_seconds",
		"When the verdict stops admitting traffic (Unix seconds).", lblVerdict, nil)
	descCheckStatus = prometheus.NewDesc("ragparity_gate_check_status",
		"1 for a check's status (pass, fail, inconclusive, skipped), 0 for the others.", append(lblVerdict, "check", "status"), nil)
	descCheckDuration = prometheus.NewDesc("ragparity_gate_check_duration_seconds",
		"How long a check ran.", append(lblVerdict, "check"), nil)
	descRegionCheck = prometheus.NewDesc("ragparity_gate_region_check_status",
		"1 for a check's status for one region (each check is decided per region), 0 for the others.",
		append(lblVerdict, "region", "check", "status"), nil)
	descRegionAdmitted = prometheus.NewDesc("ragparity_gate_region_admitted",
		"1 when /v1/admit routes to the region now (admitted by an unexpired, conclusive verdict).", append(lblVerdict, "region"), nil)
	descRegionStatus = prometheus.NewDesc("ragparity_gate_region_status",
		"1 for the region's status in the verdict (pass, fail, inconclusive), 0 for the others.", append(lblVerdict, "region", "status"), nil)
	descHashAge = prometheus.NewDesc("ragparity_gate_hash_age_seconds",
		"Seconds since the region's index hash was computed.", append(lblVerdict, "region"), nil)
	descDeltaS = prometheus.NewDesc("ragparity_gate_delta_s",
		"A region's largest ΔS over the gold set.", append(lblVerdict, "region"), nil)
	descDeltaSDrift = prometheus.NewDesc("ragparity_gate_delta_s_drift",
		"Largest cross-region ΔS drift over the gold set.", lblVerdict, nil)
	descLambda = prometheus.NewDesc("ragparity_gate_lambda_runs",
		"Probe runs per λ state (convergent, recursive, divergent, chaotic).", append(lblVerdict, "region", "state"), nil)
	descDedupe = prometheus.NewDesc("ragparity_gate_dedupe_probes",
		"Replayed fence keys found (hit) or not found (miss) in the region's dedupe KV.", append(lblVerdict, "region", "result"), nil)
	descMeasure = prometheus.NewDesc("ragparity_gate_check_measure",
		"Other figures a check measured.", append(lblVerdict, "check", "name", "region"), nil)
)

var allStatuses = []gate.Status{gate.Pass, gate.Fail, gate.Inconclusive, gate.Skipped}

// verdictCollector exports the served verdict at scrape time.
type verdictCollector struct{ s *Server }

func (c verdictCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descVerdictInfo, descVerdictStatus, descVerdictAge, descVerdictExpires,
		descCheckStatus, descCheckDuration, descRegionCheck, descRegionAdmitted, descRegionStatus, descHashAge,
		descDeltaS, descDeltaSDrift, descLambda, descDedupe, descMeasure} {
		ch <- d
	}
}

func oneHot(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c verdictCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.state.Load()
	v := st.v
	if v == nil {
		return
	}
	now := c.s.now()
	rel, rev := v.Release, v.ID
	gauge := func(d *prometheus.Desc, val float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, val, append([]string{rel, rev}, lv...)...)
	}
	gauge(descVerdictInfo, 1, string(v.Decision), v.KeyID, st.source)
	for _, s := range []gate.Status{gate.Pass, gate.Degraded, gate.Fail, gate.Inconclusive} {
		gauge(descVerdictStatus, oneHot(v.Decision == s), string(s))
	}
	gauge(descVerdictAge, now.Sub(v.CreatedAt).Seconds())
	gauge(descVerdictExpires, float64(v.ExpiresAt.UnixMilli())/1e3)
	live := !v.Expired(now) && v.Decision != gate.Inconclusive
	hashAt := map[string]float64{}
	for _, ck := range v.Checks {
		for _, s := range allStatuses {
			gauge(descCheckStatus, oneHot(ck.Status == s), ck.Name, string(s))
		}
		gauge(descCheckDuration, float64(ck.ElapsedMS)/1e3, ck.Name)
		for _, cr := range checkRegions(ck, v) {
			for _, s := range allStatuses {
				gauge(descRegionCheck, oneHot(cr.Status == s), cr.Name, ck.Name, string(s))
			}
		}
		for _, m := range ck.Measures {
			switch {
			case m.Name == gate.MeasureDeltaS:
				gauge(descDeltaS, m.Value, m.Region)
			case m.Name == gate.MeasureDeltaSDrift:
				gauge(descDeltaSDrift, m.Value)
			case strings.HasPrefix(m.Name, gate.MeasureLambdaPrefix):
				gauge(descLambda, m.Value, m.Region, strings.TrimPrefix(m.Name, gate.MeasureLambdaPrefix))
			case m.Name == gate.MeasureDedupeHits:
				gauge(descDedupe, m.Value, m.Region, "hit")
			case m.Name == gate.MeasureDedupeMisses:
				gauge(descDedupe, m.Value, m.Region, "miss")
			case m.Name == gate.MeasureHashUnix:
				hashAt[m.Region] = m.Value
			default:
				gauge(descMeasure, m.Value, ck.Name, m.Name, m.Region)
			}
		}
	}
	for _, r := range v.Regions {
		gauge(descRegionAdmitted, oneHot(live && r.Admit), r.Name)
		for _, s := range allStatuses[:3] {
			gauge(descRegionStatus, oneHot(r.Status == s), r.Name, string(s))
		}
		if r.IndexHash == "" {
			continue
		}
		at, ok := hashAt[r.Name]
		if !ok {
			at = float64(v.CreatedAt.UnixMilli()) / 1e3
		}
		gauge(descHashAge, float64(now.UnixMilli())/1e3-at, r.Name)
	}
}

// Admission decisions (label "decision" of ragparity_gate_admit_decisions_total).
const (
	decRoutePin       = "route_pin"      // 200 to the pinned region
	decRouteFallback  = "route_fallback" // 200 to another region than the pin
	decRouteNearest   = "route_nearest"  // 200 without a pin
	decConflict       = "conflict"       // 409: another release
	decMisdirected    = "misdirected"    // 421: pinned region not admitted; region is the alternative named
	decBadRequest     = "bad_request"    // 400: a header ragparity cannot read
	decRefuseNone     = "refuse_no_verdict"
	decRefuseExpired  = "refuse_expired"
	decRefuseInconcl  = "refuse_inconclusive"
	decRefuseNoMatch  = "refuse_no_match"
	regionNone        = "none"
	maxLabelledRegion = 64
)

// metrics are the server's own counters and histograms.
type metrics struct {
	mu       sync.Mutex
	revision string // the revision whose admit series are live

	reg          *prometheus.Registry
	admit        *prometheus.CounterVec
	verifyDur    *prometheus.HistogramVec
	storeErrors  *prometheus.CounterVec
	loaded       *prometheus.CounterVec
	badSignature prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		admit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ragparity_gate_admit_decisions_total",
			Help: "Answers of /v1/admit by release, revision (the verdict answered from), routed (or, for refusals, pinned) region, HTTP code and decision. A superseded revision's series are dropped when the next verdict is served.",
		}, []string{"release_id", "revision", "region", "code", "decision"}),
		verifyDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ragparity_gate_verification_duration_seconds",
			Help:    "How long a verification took, by release and result (pass, fail, inconclusive, error).",
			Buckets: []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600},
		}, []string{"release_id", "result"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ragparity_gate_store_errors_total",
			Help: "Verdict store operations that failed, by operation.",
		}, []string{"op"}),
		loaded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ragparity_gate_verdicts_installed_total",
			Help: "Verdicts this replica started serving, by source (local: it verified; store: another replica did).",
		}, []string{"source"}),
		badSignature: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ragparity_gate_store_bad_signatures_total",
			Help: "Verdicts read from the store that did not verify against the trusted key (ignored).",
		}),
	}
	m.reg.MustRegister(m.admit, m.verifyDur, m.storeErrors, m.loaded, m.badSignature, verdictCollector{s},
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	for _, op := range []string{"put", "latest", "get", "list"} {
		m.storeErrors.WithLabelValues(op)
	}
	for _, src := range []string{"local", "store"} {
		m.loaded.WithLabelValues(src)
	}
	return m
}

// admitCounters are resolved once per verdict so that /v1/admit only
// does a map lookup and an atomic add.
type admitCounters struct {
	pin, fallback, nearest map[string]prometheus.Counter // by routed region
	misdirected            map[string]prometheus.Counter // 421, by the alternative named
	refuse                 map[string]*refuseCounters    // by pinned region or "none"
	conflict, badRequest   prometheus.Counter
}

type refuseCounters struct{ none, expired, inconclusive, noMatch prometheus.Counter }

func (m *metrics) resolve(release, revision string, regions []string) *admitCounters {
	m.mu.Lock()
	if m.revision != "" && m.revision != revision {
		m.admit.DeletePartialMatch(prometheus.Labels{"revision": m.revision})
	}
	m.revision = revision
	m.mu.Unlock()
	with := func(region, code, decision string) prometheus.Counter {
		return m.admit.WithLabelValues(release, revision, region, code, decision)
	}
	c := &admitCounters{
		pin: map[string]prometheus.Counter{}, fallback: map[string]prometheus.Counter{},
		nearest: map[string]prometheus.Counter{}, refuse: map[string]*refuseCounters{},
		misdirected: map[string]prometheus.Counter{},
		conflict:    with(regionNone, "409", decConflict),
		badRequest:  with(regionNone, "400", decBadRequest),
	}
	ref := func(region string) *refuseCounters {
		return &refuseCounters{
			none:         with(region, "503", decRefuseNone),
			expired:      with(region, "503", decRefuseExpired),
			inconclusive: with(region, "503", decRefuseInconcl),
			noMatch:      with(region, "503", decRefuseNoMatch),
		}
	}
	c.refuse[regionNone] = ref(regionNone)
	for i, r := range regions {
		if i >= maxLabelledRegion {
			break
		}
		c.pin[r] = with(r, "200", decRoutePin)
		c.fallback[r] = with(r, "200", decRouteFallback)
		c.nearest[r] = with(r, "200", decRouteNearest)
		c.misdirected[r] = with(r, "421", decMisdirected)
		c.refuse[r] = ref(r)
	}
	return c
}

// observeVerify records one verification.
func (m *metrics) observeVerify(release string, v *gate.Verdict, err error, d time.Duration) {
	result := "error"
	if err == nil && v != nil {
		result = string(v.Decision)
	}
	m.verifyDur.WithLabelValues(release, result).Observe(d.Seconds())
}

// checkRegions is a check's per-region results; a verdict made before
// checks were decided per region has only failed_regions: those failed,
// the others took the check's status unless it failed.
func checkRegions(ck gate.Check, v *gate.Verdict) []gate.CheckRegion {
	if len(ck.Regions) > 0 {
		return ck.Regions
	}
	failed := map[string]bool{}
	for _, r := range ck.FailedRegions {
		failed[r] = true
	}
	out := make([]gate.CheckRegion, 0, len(v.Regions))
	for _, r := range v.Regions {
		rs := ck.Status
		if ck.Status == gate.Fail && len(failed) > 0 && !failed[r.Name] {
			rs = gate.Pass
		}
		out = append(out, gate.CheckRegion{Name: r.Name, Status: rs})
	}
	return out
}
