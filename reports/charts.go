package reports

import (
	"bytes"
	"fmt"
	"html"
	"image/color"
	"math"
	"regexp"
	"strconv"
	"strings"

	xfnt "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/ragparity/ragparity/gate"
)

// chart is one rendered chart: an <svg> element, ready to inline.
type chart struct {
	ID      string
	Title   string
	Caption string
	SVG     string
}

var (
	sans     = font.Font{Typeface: "Liberation", Variant: "Sans"}
	sansBold = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfnt.WeightBold}

	// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
	regionColors = []color.Color{
		rgb(0x0072B2), rgb(0xE69F00), rgb(0x009E73), rgb(0xCC79A7),
		rgb(0x56B4E9), rgb(0xD55E00), rgb(0xF0E442), rgb(0x000000),
	}
	colorPass    = rgb(0x1A7F37)
	colorFail    = rgb(0xCF222E)
	colorIncon   = rgb(0x9A6700)
	colorSkipped = rgb(0x8C959F)
	colorLine    = rgb(0x24292F)
	colorCell    = rgb(0xEAEEF2)

	lambdaColors = map[string]color.Color{
		LambdaConvergent: rgb(0x1A7F37),
		LambdaRecursive:  rgb(0x0969DA),
		LambdaDivergent:  rgb(0xE69F00),
		LambdaChaotic:    rgb(0xCF222E),
	}
	lambdaOrder = []string{LambdaConvergent, LambdaRecursive, LambdaDivergent, LambdaChaotic}
)

func rgb(x uint32) color.Color {
	return color.RGBA{R: uint8(x >> 16), G: uint8(x >> 8), B: uint8(x), A: 255}
}

func statusColor(s gate.Status) color.Color {
	switch s {
	case gate.Pass:
		return colorPass
	case gate.Fail:
		return colorFail
	case gate.Skipped:
		return colorSkipped
	}
	return colorIncon
}

// newPlot returns a plot with the report's fonts.
func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sansBold, 12)
	p.Title.Padding = vg.Points(8)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 10)
		a.Tick.Label.Font = font.From(sans, 9)
	}
	p.Legend.TextStyle.Font = font.From(sans, 9)
	return p
}

func newLegend() *plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(sans, 9)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(14)
	l.Padding = vg.Points(3)
	return &l
}

const legendWidth = 130 // points kept at the right for a legend

var svgOpen = regexp.MustCompile(`(?s)^.*?<svg\b[^>]*?viewBox="([^"]*)"[^>]*>`)

// render draws p on a w×h point canvas, with legend (if any) in a strip at
// the right, and returns an <svg> element for inlining in HTML: no XML
// prolog, no namespace URIs (the HTML parser puts <svg> in the SVG
// namespace), sized by its viewBox.
func render(p *plot.Plot, w, h vg.Length, legend *plot.Legend, id, label string) (string, error) {
	c := vgsvg.New(w, h)
	dc := draw.New(c)
	if legend != nil {
		p.Draw(draw.Crop(dc, 0, -vg.Points(legendWidth), 0, 0))
		lc := draw.Crop(dc, w-vg.Points(legendWidth)+vg.Points(10), 0, 0, -vg.Points(26))
		legend.Draw(lc)
	} else {
		p.Draw(dc)
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", err
	}
	sm := svgOpen.FindSubmatchIndex(buf.Bytes())
	if sm == nil {
		return "", fmt.Errorf("reports: chart %s: no <svg> element in gonum/plot output", id)
	}
	vb := string(buf.Bytes()[sm[2]:sm[3]])
	f := strings.Fields(vb)
	if len(f) != 4 {
		return "", fmt.Errorf("reports: chart %s: viewBox %q", id, vb)
	}
	// gonum/plot draws in points; show the chart at its size in CSS
	// pixels (1pt = 4/3 px), shrunk to fit narrow windows by the CSS.
	px := func(pt string) string {
		x, _ := strconv.ParseFloat(pt, 64)
		return strconv.FormatFloat(math.Round(x*4/3), 'f', -1, 64)
	}
	open := fmt.Sprintf(`<svg class="chart" id="%s" viewBox="%s" width="%s" height="%s" role="img" aria-label="%s">`,
		id, vb, px(f[2]), px(f[3]), html.EscapeString(label))
	return open + strings.TrimRight(string(buf.Bytes()[sm[1]:]), "\n"), nil
}

// bars draws bars of per-bar colour at data positions; width is in data
// units, so grouped bars scale with the canvas.
type bars struct {
	Pos, Val   []float64
	Colors     []color.Color
	Width      float64
	Horizontal bool
}

func (b *bars) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	for i := range b.Pos {
		lo, hi := b.Pos[i]-b.Width/2, b.Pos[i]+b.Width/2
		var pts []vg.Point
		if b.Horizontal {
			pts = rect(tx(0), ty(lo), tx(b.Val[i]), ty(hi))
		} else {
			pts = rect(tx(lo), ty(0), tx(hi), ty(b.Val[i]))
		}
		c.FillPolygon(b.Colors[i], c.ClipPolygonXY(pts))
	}
}

func (b *bars) DataRange() (xmin, xmax, ymin, ymax float64) {
	pmin, pmax, vmax := math.Inf(1), math.Inf(-1), 0.0
	for i := range b.Pos {
		pmin = math.Min(pmin, b.Pos[i]-b.Width/2)
		pmax = math.Max(pmax, b.Pos[i]+b.Width/2)
		vmax = math.Max(vmax, b.Val[i])
	}
	if b.Horizontal {
		return 0, vmax, pmin, pmax
	}
	return pmin, pmax, 0, vmax
}

func rect(x0, y0, x1, y1 vg.Length) []vg.Point {
	return []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}}
}

// cells fills unit cells (centred on integer data positions) of a grid.
type cells struct {
	X, Y   []float64
	Colors []color.Color
	Size   float64 // fraction of the unit cell filled
	// Ring, when set, circles each cell so that single cells of a large
	// grid stay visible.
	Ring color.Color
}

func (g *cells) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	h := g.Size / 2
	for i := range g.X {
		c.FillPolygon(g.Colors[i], rect(tx(g.X[i]-h), ty(g.Y[i]-h), tx(g.X[i]+h), ty(g.Y[i]+h)))
	}
	if g.Ring != nil {
		sty := draw.GlyphStyle{Color: g.Ring, Radius: vg.Points(4.5), Shape: draw.RingGlyph{}}
		for i := range g.X {
			c.DrawGlyphNoClip(sty, vg.Point{X: tx(g.X[i]), Y: ty(g.Y[i])})
		}
	}
}

// swatch is a legend thumbnail: a filled square.
type swatch struct{ color.Color }

func (s swatch) Thumbnail(c *draw.Canvas) {
	side := min(c.Max.Y-c.Min.Y, c.Max.X-c.Min.X)
	c.FillPolygon(s.Color, rect(c.Min.X, c.Min.Y, c.Min.X+side, c.Min.Y+side))
}

// hline is a horizontal (or, with Vertical, vertical) rule at At from
// From to To in data units.
func rule(at, from, to float64, vertical bool, clr color.Color, dashed bool) *plotter.Line {
	xys := plotter.XYs{{X: from, Y: at}, {X: to, Y: at}}
	if vertical {
		xys = plotter.XYs{{X: at, Y: from}, {X: at, Y: to}}
	}
	l, _ := plotter.NewLine(xys)
	l.LineStyle = draw.LineStyle{Color: clr, Width: vg.Points(1.2)}
	if dashed {
		l.LineStyle.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	return l
}

// nominalLabels thins tick labels so that at most about n show.
func nominalLabels(names []string, n int) []string {
	step := max(1, (len(names)+n-1)/n)
	out := make([]string, len(names))
	for i, s := range names {
		if i%step == 0 {
			out[i] = s
		}
	}
	return out
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

// charts renders every chart the model has detail for.
func (m *Model) charts() (checks chart, probes []chart, buckets []chart, err error) {
	if checks, err = m.checksChart(); err != nil {
		return
	}
	if p := m.Probes; p != nil && len(p.Questions) > 0 {
		var c chart
		if c, err = m.deltaSChart(); err != nil {
			return
		}
		probes = append(probes, c)
		if c, err = m.driftChart(); err != nil {
			return
		}
		probes = append(probes, c)
		if hasLambda(p) {
			if c, err = m.lambdaChart(); err != nil {
				return
			}
			probes = append(probes, c)
		}
	}
	for i, bm := range m.BucketMaps {
		var c chart
		if c, err = bucketChart(i, bm); err != nil {
			return
		}
		buckets = append(buckets, c)
	}
	return
}

// checksChart draws each check's figure divided by its threshold, so every
// check shares one axis with the threshold at 1.
func (m *Model) checksChart() (chart, error) {
	ch := chart{ID: "chart-checks", Title: "Every check's figure against its threshold"}
	p := newPlot(ch.Title)
	p.X.Label.Text = "figure ÷ threshold (dashed line: threshold)"
	checks := m.Verdict.Checks
	n := len(checks)
	b := &bars{Width: 0.6, Horizontal: true}
	var lx plotter.XYs
	var labels []string
	names := make([]string, n)
	top := 1.25
	for i, c := range checks {
		y := float64(n - 1 - i) // first check on top
		names[n-1-i] = c.Name
		label := string(c.Status)
		ratio := 0.0
		if x, ok := m.measure(c); ok && c.Status != gate.Skipped {
			switch {
			case x.Threshold != 0:
				ratio = x.Value / x.Threshold
			case x.Value == 0:
				ratio = 1
			default:
				ratio = 2
			}
			ratio = clamp(ratio, 0, 2.5)
			rel := "≥"
			if x.Max {
				rel = "≤"
			}
			unit := ""
			if x.Unit != "" {
				unit = " " + x.Unit
			}
			label = fmt.Sprintf("%s%s (needs %s %s)", fmtNum(x.Value), unit, rel, fmtNum(x.Threshold))
			b.Pos, b.Val, b.Colors = append(b.Pos, y), append(b.Val, ratio), append(b.Colors, statusColor(c.Status))
		} else if c.Status == gate.Inconclusive {
			label = "inconclusive: no figure"
		}
		top = math.Max(top, ratio*1.1)
		lx = append(lx, plotter.XY{X: ratio, Y: y})
		labels = append(labels, label)
	}
	if len(b.Pos) > 0 {
		p.Add(b)
	}
	p.Add(rule(1, -0.5, float64(n)-0.5, true, colorLine, true))
	lab, err := plotter.NewLabels(plotter.XYLabels{XYs: lx, Labels: labels})
	if err != nil {
		return ch, err
	}
	for i := range lab.TextStyle {
		lab.TextStyle[i].Font = font.From(sans, 9)
		lab.TextStyle[i].YAlign = draw.YCenter
	}
	lab.Offset = vg.Point{X: vg.Points(4)}
	p.Add(lab)
	p.NominalY(names...)
	p.X.Min, p.X.Max = 0, top
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	ch.Caption = "Bar colour is the check's status; figures that are not numbers (skipped, or a check that could not run) have no bar."
	svg, err := render(p, vg.Points(560), vg.Points(float64(70+26*n)), nil, ch.ID, ch.Title)
	ch.SVG = svg
	return ch, err
}

// deltaSChart draws ΔS per question, one bar per region.
func (m *Model) deltaSChart() (chart, error) {
	pd := m.Probes
	ch := chart{ID: "chart-delta-s", Title: "ΔS per question per region"}
	p := newPlot(ch.Title)
	p.Y.Label.Text = "ΔS = 1 − cos(question, top-1 text)"
	regions := m.probeRegions()
	nq, nr := len(pd.Questions), len(regions)
	legend := newLegend()
	group := 0.8
	w := group / float64(max(nr, 1))
	ymax := 0.05
	for ri, r := range regions {
		b := &bars{Width: w * 0.92}
		clr := regionColors[ri%len(regionColors)]
		for qi, q := range pd.Questions {
			if x, ok := q.DeltaS[r]; ok {
				b.Pos = append(b.Pos, float64(qi)-group/2+w*(float64(ri)+0.5))
				b.Val = append(b.Val, x)
				b.Colors = append(b.Colors, clr)
				ymax = math.Max(ymax, x)
			}
		}
		p.Add(b)
		legend.Add(r, swatch{clr})
	}
	if pd.DeltaSMax > 0 {
		p.Add(rule(pd.DeltaSMax, -0.5, float64(nq)-0.5, false, colorFail, true))
		legend.Add("ΔS ≤ "+fmtNum(pd.DeltaSMax)+" floor", rule(0, 0, 1, false, colorFail, true))
		ymax = math.Max(ymax, pd.DeltaSMax)
	}
	ids := make([]string, nq)
	for i, q := range pd.Questions {
		ids[i] = q.ID
	}
	p.NominalX(nominalLabels(ids, 24)...)
	p.X.Min, p.X.Max = -0.5, float64(nq)-0.5
	p.Y.Min, p.Y.Max = 0, ymax*1.1
	ch.Caption = "Each question's ΔS in every region; a region whose bars stand apart from the others retrieves different text."
	width := clamp(float64(90+legendWidth+nq*nr*9), 560, 1100)
	svg, err := render(p, vg.Points(width), vg.Points(270), legend, ch.ID, ch.Title)
	ch.SVG = svg
	return ch, err
}

// driftChart draws drift(q) per question against the threshold.
func (m *Model) driftChart() (chart, error) {
	pd := m.Probes
	mx, over := maxDrift(pd)
	ch := chart{ID: "chart-drift", Title: fmt.Sprintf("ΔS drift across regions (max %s, threshold %s)", fmtNum(mx), fmtNum(pd.DriftThreshold))}
	p := newPlot(ch.Title)
	p.Y.Label.Text = "drift = max ΔS − min ΔS"
	nq := len(pd.Questions)
	b := &bars{Width: 0.7}
	ids := make([]string, nq)
	for i, q := range pd.Questions {
		ids[i] = q.ID
		clr := colorPass
		if q.Drift > pd.DriftThreshold {
			clr = colorFail
		}
		b.Pos, b.Val, b.Colors = append(b.Pos, float64(i)), append(b.Val, q.Drift), append(b.Colors, clr)
	}
	p.Add(b)
	p.Add(rule(pd.DriftThreshold, -0.5, float64(nq)-0.5, false, colorLine, true))
	legend := newLegend()
	legend.Add("within threshold", swatch{colorPass})
	legend.Add("over threshold", swatch{colorFail})
	legend.Add("threshold "+fmtNum(pd.DriftThreshold), rule(0, 0, 1, false, colorLine, true))
	p.NominalX(nominalLabels(ids, 24)...)
	p.X.Min, p.X.Max = -0.5, float64(nq)-0.5
	p.Y.Min, p.Y.Max = 0, math.Max(math.Max(mx, pd.DriftThreshold)*1.25, 0.005)
	ch.Caption = fmt.Sprintf("%d of %d questions over the threshold", len(over), nq)
	if len(over) > 0 {
		ch.Caption += ": " + listCut(over, 10)
	}
	ch.Caption += "."
	width := clamp(float64(90+legendWidth+nq*16), 560, 1100)
	svg, err := render(p, vg.Points(width), vg.Points(250), legend, ch.ID, ch.Title)
	ch.SVG = svg
	return ch, err
}

// lambdaChart draws the λ state of every question, per region and seed.
func (m *Model) lambdaChart() (chart, error) {
	pd := m.Probes
	ch := chart{ID: "chart-lambda", Title: "λ state per question, per region and seed"}
	p := newPlot(ch.Title)
	regions := m.regionOrder()
	seeds := seedLabels(pd)
	type row struct {
		region string
		seed   int
	}
	var rows []row
	for _, r := range regions {
		for _, q := range pd.Questions {
			if _, ok := q.Lambda[r]; ok {
				for s := range seeds {
					rows = append(rows, row{r, s})
				}
				break
			}
		}
	}
	nq, nrows := len(pd.Questions), len(rows)
	g := &cells{Size: 0.86}
	names := make([]string, nrows)
	other := false
	for ri, rw := range rows {
		y := float64(nrows - 1 - ri)
		names[nrows-1-ri] = rw.region + " · " + seeds[rw.seed]
		for qi, q := range pd.Questions {
			st := q.Lambda[rw.region]
			if rw.seed >= len(st) {
				continue
			}
			clr, ok := lambdaColors[lambdaState(st[rw.seed])]
			if !ok {
				clr, other = colorSkipped, true
			}
			g.X, g.Y, g.Colors = append(g.X, float64(qi)), append(g.Y, y), append(g.Colors, clr)
		}
	}
	p.Add(g)
	ids := make([]string, nq)
	for i, q := range pd.Questions {
		ids[i] = q.ID
	}
	p.NominalX(nominalLabels(ids, 24)...)
	p.NominalY(names...)
	p.X.Min, p.X.Max = -0.5, float64(nq)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(nrows)-0.5
	legend := newLegend()
	for _, s := range lambdaOrder {
		legend.Add(s, swatch{lambdaColors[s]})
	}
	if other {
		legend.Add("other", swatch{colorSkipped})
	}
	notConv, total := lambdaNotConvergent(pd)
	ch.Caption = fmt.Sprintf("%d of %d runs convergent. The gate wants λ convergent and identical on two seeds.", total-notConv, total)
	width := clamp(float64(150+legendWidth+nq*18), 560, 1100)
	svg, err := render(p, vg.Points(width), vg.Points(float64(80+18*nrows)), legend, ch.ID, ch.Title)
	ch.SVG = svg
	return ch, err
}

// maxBucketCells bounds the differing buckets drawn in one map.
const maxBucketCells = 20000

// bucketChart draws a map of a region pair's Merkle buckets, differing
// buckets in red.
func bucketChart(i int, bm BucketMap) (chart, error) {
	ch := chart{ID: fmt.Sprintf("chart-buckets-%d", i+1),
		Title: fmt.Sprintf("Merkle buckets %s → %s: %d of %d differ", bm.From, bm.To, len(bm.Differing), bm.Buckets)}
	p := newPlot(ch.Title)
	n := max(bm.Buckets, 1)
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	rows := (n + cols - 1) / cols
	p.HideAxes()
	p.X.Min, p.X.Max = -0.5, float64(cols)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(rows)-0.5
	p.Add(gridBackground{rows: rows, cols: cols, n: n})
	diff := &cells{Size: 1}
	if n > 1024 {
		diff.Ring = colorFail
	}
	shown := 0
	for _, b := range bm.Differing {
		if b < 0 || b >= n || shown >= maxBucketCells {
			continue
		}
		shown++
		diff.X = append(diff.X, float64(b%cols))
		diff.Y = append(diff.Y, float64(rows-1-b/cols))
		diff.Colors = append(diff.Colors, colorFail)
	}
	p.Add(diff)
	legend := newLegend()
	legend.Add("differs", swatch{colorFail})
	legend.Add("equal", swatch{colorCell})
	ch.Caption = fmt.Sprintf("Bucket b is row b ÷ %d, column b mod %d, from the top left.", cols, cols)
	if shown < len(bm.Differing) {
		ch.Caption += fmt.Sprintf(" %d differing buckets not drawn (out of range or over %d).", len(bm.Differing)-shown, maxBucketCells)
	}
	svg, err := render(p, vg.Points(330+legendWidth), vg.Points(360), legend, ch.ID, ch.Title)
	ch.SVG = svg
	return ch, err
}

// gridBackground fills the cells of a rows×cols grid holding n cells,
// one rectangle per row (far fewer elements than one per cell).
type gridBackground struct{ rows, cols, n int }

func (g gridBackground) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	for r := range g.rows {
		inRow := min(g.cols, g.n-r*g.cols)
		y := float64(g.rows - 1 - r)
		c.FillPolygon(colorCell, rect(tx(-0.5), ty(y-0.5), tx(float64(inRow)-0.5), ty(y+0.5)))
	}
}
