package reports

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/ragparity/ragparity/gate"
)

//go:embed report.html.tmpl
var htmlTemplate string

var pageTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper":  func(s gate.Status) string { return strings.ToUpper(string(s)) },
	"time":   mdTime,
	"short":  shortHash,
	"join":   strings.Join,
	"svg":    func(s string) template.HTML { return template.HTML(s) }, // produced by render, never from input
	"nonneg": func(n int) bool { return n > 0 },
	"secs":   func(ms int64) string { return seconds(ms) + " s" },
}).Parse(htmlTemplate))

const (
	// htmlEvidencePerCheck bounds the evidence lines shown per check.
	htmlEvidencePerCheck = 200
	// htmlBlobRows bounds the rows of one blob diff table.
	htmlBlobRows = 500
	// htmlBucketList bounds the differing bucket numbers listed per map.
	htmlBucketList = 64
)

type htmlCheck struct {
	gate.Check
	Shown []string
	More  int
}

type htmlBlobRow struct{ Key, Kind, Detail string }

type htmlBlobDiff struct {
	BlobDiff
	Rows []htmlBlobRow
	More int
}

type htmlBucket struct {
	Chart    chart
	Map      BucketMap
	Listed   string
	Unlisted int
}

type htmlPage struct {
	V           *gate.Verdict
	Checks      []htmlCheck
	ChecksChart chart
	Probes      []chart
	ProbeNote   string
	Buckets     []htmlBucket
	Blobs       []htmlBlobDiff
	Details     []string
}

// HTML writes one self-contained page: inline CSS and inline SVG charts
// (drawn with gonum/plot), no script and no external reference; its
// Content-Security-Policy forbids loading anything.
func HTML(w io.Writer, m *Model) error {
	if err := m.validate(); err != nil {
		return err
	}
	if err := checkFinite(m.Probes); err != nil {
		return err
	}
	checksChart, probes, buckets, err := m.charts()
	if err != nil {
		return err
	}
	pg := htmlPage{V: m.Verdict, ChecksChart: checksChart, Probes: probes}
	pg.Details = detailLines(m, func(s string) string { return s })
	for _, c := range m.Verdict.Checks {
		hc := htmlCheck{Check: c, Shown: c.Evidence}
		if len(hc.Shown) > htmlEvidencePerCheck {
			hc.Shown, hc.More = hc.Shown[:htmlEvidencePerCheck], len(c.Evidence)-htmlEvidencePerCheck
		}
		pg.Checks = append(pg.Checks, hc)
	}
	if m.Probes == nil || len(m.Probes.Questions) == 0 {
		pg.ProbeNote = m.probeNote()
	}
	for i, bm := range m.BucketMaps {
		hb := htmlBucket{Chart: buckets[i], Map: bm}
		list := bm.Differing
		if len(list) > htmlBucketList {
			list, hb.Unlisted = list[:htmlBucketList], len(bm.Differing)-htmlBucketList
		}
		s := make([]string, len(list))
		for j, b := range list {
			s[j] = fmt.Sprint(b)
		}
		hb.Listed = strings.Join(s, ", ")
		pg.Buckets = append(pg.Buckets, hb)
	}
	for _, d := range m.BlobDiffs {
		hd := htmlBlobDiff{BlobDiff: d}
		for _, k := range d.OnlyInFrom {
			hd.Rows = append(hd.Rows, htmlBlobRow{k, "missing", "only in " + d.From})
		}
		for _, k := range d.OnlyInTo {
			hd.Rows = append(hd.Rows, htmlBlobRow{k, "extra", "only in " + d.To})
		}
		for _, c := range d.Changed {
			hd.Rows = append(hd.Rows, htmlBlobRow{c.Key, "changed", c.Reason})
		}
		if len(hd.Rows) > htmlBlobRows {
			hd.Rows, hd.More = hd.Rows[:htmlBlobRows], len(hd.Rows)-htmlBlobRows
		}
		pg.Blobs = append(pg.Blobs, hd)
	}
	return pageTmpl.Execute(w, pg)
}
