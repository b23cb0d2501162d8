package output

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/llmbatch/llmbatch/jobs"
)

// The charts are inline SVG drawn here, on the server side: the report
// needs no script and no library to show them, and opens offline. Every
// chart is an <svg class="chart"> with a stable id and data-points, the
// number of data marks (elements of class "mark") it holds; the report's
// self-check script compares the two in the browser.

// svgDoc collects the elements of one chart. Every text and attribute value
// it writes is HTML-escaped, so that names from the database cannot break
// out of the markup.
type svgDoc struct {
	b     strings.Builder
	marks int
}

// plot is the drawing area of a chart inside its view box.
type plot struct{ x, y, w, h float64 }

func num(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

func (d *svgDoc) printf(format string, args ...any) { fmt.Fprintf(&d.b, format, args...) }

// mark draws one data mark, a bar with a tooltip.
func (d *svgDoc) mark(x, y, w, h float64, fill, class, title string) {
	d.marks++
	d.printf(`<rect class="mark%s" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`,
		html.EscapeString(class), num(x), num(y), num(w), num(h), html.EscapeString(fill), html.EscapeString(title))
}

func (d *svgDoc) text(x, y float64, anchor, class, s string) {
	d.printf(`<text x="%s" y="%s" text-anchor="%s" class="%s">%s</text>`,
		num(x), num(y), anchor, html.EscapeString(class), html.EscapeString(s))
}

func (d *svgDoc) line(x1, y1, x2, y2 float64, class string) {
	d.printf(`<line x1="%s" y1="%s" x2="%s" y2="%s" class="%s"/>`, num(x1), num(y1), num(x2), num(y2), html.EscapeString(class))
}

// svg wraps the elements into the chart's <svg> element.
func (d *svgDoc) svg(id, label string, w, h float64) template.HTML {
	return template.HTML(fmt.Sprintf(`<svg class="chart" id="%s" data-points="%d" viewBox="0 0 %s %s" role="img" aria-label="%s">%s</svg>`,
		html.EscapeString(id), d.marks, num(w), num(h), html.EscapeString(label), d.b.String()))
}

// niceTicks returns a round step for about four intervals up to maxv and
// the top of the axis, a whole number of steps.
func niceTicks(maxv float64) (step, top float64) {
	if maxv <= 0 {
		return 1, 1
	}
	raw := maxv / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	step = math.Max(step, 1) // counts are whole
	return step, math.Ceil(maxv/step) * step
}

// yGrid draws the horizontal grid lines and their labels.
func (d *svgDoc) yGrid(p plot, step, top float64) {
	for v := 0.0; v <= top+step/2; v += step {
		y := p.y + p.h - v/top*p.h
		d.line(p.x, y, p.x+p.w, y, "grid")
		d.text(p.x-8, y+4, "end", "tick", compactNumber(v))
	}
}

// series is one stacked layer of a time chart.
type series struct {
	name, color string
	counts      []int
}

// timeChart draws stacked bars, one per time bucket; unit is the singular
// of what a bar counts ("request").
func timeChart(id, label string, start time.Time, bucket time.Duration, layers []series, unit string) template.HTML {
	const w, h = 960.0, 260.0
	p := plot{x: 46, y: 14, w: w - 46 - 14, h: h - 14 - 30}
	n := len(layers[0].counts)
	maxv := 0
	for i := range n {
		t := 0
		for _, l := range layers {
			t += l.counts[i]
		}
		maxv = max(maxv, t)
	}
	step, top := niceTicks(float64(maxv))
	d := &svgDoc{}
	d.yGrid(p, step, top)
	slot := p.w / float64(n)
	bw := math.Max(slot*0.78, 1)
	layout := clockLayout(bucket, time.Duration(n)*bucket)
	for i := range n {
		from := start.Add(time.Duration(i) * bucket)
		span := from.Format(layout) + " – " + from.Add(bucket).Format(layout)
		y := p.y + p.h
		for _, l := range layers {
			c := l.counts[i]
			if c == 0 {
				continue
			}
			bh := math.Max(float64(c)/top*p.h, 1.5)
			y -= bh
			d.mark(p.x+float64(i)*slot+(slot-bw)/2, y, bw, bh, l.color, "", fmt.Sprintf("%s · %s: %s", span, l.name, countOf(int64(c), unit)))
		}
	}
	every := max(1, int(math.Ceil(float64(n)/7)))
	for i := 0; i <= n; i += every {
		anchor := "middle"
		if i == n { // the right edge: keep the label inside the chart
			anchor = "end"
		}
		d.line(p.x+float64(i)*slot, p.y+p.h, p.x+float64(i)*slot, p.y+p.h+4, "axis")
		d.text(p.x+float64(i)*slot, p.y+p.h+18, anchor, "tick", start.Add(time.Duration(i)*bucket).Format(layout))
	}
	d.line(p.x, p.y+p.h, p.x+p.w, p.y+p.h, "axis")
	return d.svg(id, label, w, h)
}

// histChart draws a histogram with markers at the median and the 95th
// percentile; an overflow bin is drawn paler.
func histChart(id, label string, hg jobs.Histogram, color string) template.HTML {
	const w, h = 520.0, 240.0
	p := plot{x: 40, y: 26, w: w - 40 - 14, h: h - 26 - 30}
	n := len(hg.Bins)
	maxv := 0
	for _, b := range hg.Bins {
		maxv = max(maxv, b.Count)
	}
	step, top := niceTicks(float64(maxv))
	d := &svgDoc{}
	d.yGrid(p, step, top)
	slot := p.w / float64(n)
	for i, b := range hg.Bins {
		if b.Count == 0 {
			continue
		}
		bh := math.Max(float64(b.Count)/top*p.h, 1.5)
		title := fmt.Sprintf("%s – %s: %s", shortDuration(b.Lo), shortDuration(b.Hi), countOf(int64(b.Count), "request"))
		class := ""
		if b.Overflow {
			class, title = " overflow", "outliers, "+title
		}
		d.mark(p.x+float64(i)*slot+0.5, p.y+p.h-bh, math.Max(slot-1, 1), bh, color, class, title)
	}
	every := max(1, int(math.Ceil(float64(n)/6)))
	for i := 0; i <= n; i += every {
		edge := hg.Bins[min(i, n-1)].Lo
		if i == n {
			edge = hg.Bins[n-1].Hi
		}
		anchor := "middle"
		if i == n {
			anchor = "end"
		}
		d.line(p.x+float64(i)*slot, p.y+p.h, p.x+float64(i)*slot, p.y+p.h+4, "axis")
		d.text(p.x+float64(i)*slot, p.y+p.h+18, anchor, "tick", shortDuration(edge))
	}
	d.line(p.x, p.y+p.h, p.x+p.w, p.y+p.h, "axis")
	x50 := d.percentile(p, hg, slot, "p50", hg.P50, "end")
	d.percentile(p, hg, slot, "p95", hg.P95, "start", x50)
	return d.svg(id, label, w, h)
}

// percentile draws a dashed marker at value v of the histogram, labelled on
// the side anchor says, or on the other side when the label would leave the
// chart or run into the label of a marker at one of the xs. It returns the
// marker's position.
func (d *svgDoc) percentile(p plot, hg jobs.Histogram, slot float64, name string, v time.Duration, anchor string, xs ...float64) float64 {
	x := p.x
	for i, b := range hg.Bins {
		if v >= b.Lo && (v < b.Hi || i == len(hg.Bins)-1) {
			frac := 0.5
			if b.Hi > b.Lo {
				frac = math.Min(float64(v-b.Lo)/float64(b.Hi-b.Lo), 1)
			}
			x = p.x + (float64(i)+frac)*slot
			break
		}
	}
	const labelW = 64.0
	if anchor == "start" && x+labelW > p.x+p.w {
		anchor = "end"
	}
	for _, o := range xs {
		if anchor == "end" && x-o < labelW {
			return x // too close to another marker: its label says enough
		}
	}
	d.line(x, p.y-6, x, p.y+p.h, "pct")
	dx := -4.0
	if anchor == "start" {
		dx = 4
	}
	d.text(x+dx, p.y-10, anchor, "pct-label", name+" "+shortDuration(v))
	return x
}

// segment is one part of a horizontal bar.
type segment struct {
	name, color string
	value       int64
}

// hbar is one row of a horizontal bar chart: a label above a stacked bar
// and a note after it.
type hbar struct {
	label, note string
	segments    []segment
}

// hbarChart draws one stacked horizontal bar per row; unit is the singular
// of what a segment counts ("token").
func hbarChart(id, label string, rows []hbar, unit string) template.HTML {
	const w, rowH, noteW = 960.0, 50.0, 300.0
	h := float64(len(rows))*rowH + 6
	var maxv int64
	for _, r := range rows {
		var t int64
		for _, s := range r.segments {
			t += s.value
		}
		maxv = max(maxv, t)
	}
	d := &svgDoc{}
	for i, r := range rows {
		y := 6 + float64(i)*rowH
		d.text(2, y+13, "start", "row-label", r.label)
		x := 2.0
		for _, s := range r.segments {
			if s.value <= 0 {
				continue
			}
			bw := math.Max(float64(s.value)/float64(maxv)*(w-noteW), 1.5)
			d.mark(x, y+21, bw, 18, s.color, "", fmt.Sprintf("%s · %s: %s", r.label, s.name, countOf(s.value, unit)))
			x += bw
		}
		d.text(x+10, y+34, "start", "row-note", r.note)
	}
	return d.svg(id, label, w, h)
}
