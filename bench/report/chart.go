package report

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// series is one line of a chart.
type series struct {
	name  string
	class string // CSS class giving its colour
	ys    []float64
}

// Chart geometry in SVG user units.
const (
	chartW, chartH   = 720, 240
	padL, padR       = 64, 16
	padT, padB       = 12, 36
	chartTicks       = 4
	minLogChartValue = 0.001 // ms: the lowest floor of a logarithmic axis
)

// lineChart draws series over xs (seconds) as an inline SVG: no script, no
// fetch, so the file works offline and under a strict CSP. logY draws the
// y axis logarithmically (latencies, whose max dwarfs their median).
func lineChart(label, unit string, xs []float64, lines []series, logY bool) template.HTML {
	if len(xs) == 0 {
		return template.HTML(`<p class="empty">no measured seconds</p>`)
	}
	xMax := xs[len(xs)-1] + 1
	yMax := 0.0
	for _, l := range lines {
		for _, y := range l.ys {
			yMax = math.Max(yMax, y)
		}
	}
	if yMax <= 0 {
		yMax = 1
	}
	yMin := 0.0
	scale := func(y float64) float64 { return y }
	if logY {
		// From the decade below the smallest value shown.
		low := math.Inf(1)
		for _, l := range lines {
			for _, y := range l.ys {
				if y > 0 {
					low = math.Min(low, y)
				}
			}
		}
		yMin = minLogChartValue
		if !math.IsInf(low, 1) {
			yMin = math.Max(yMin, math.Pow(10, math.Floor(math.Log10(low))))
		}
		yMax = math.Max(yMax, yMin*10)
		scale = func(y float64) float64 { return math.Log10(math.Max(y, yMin)) }
	}
	w, h := float64(chartW-padL-padR), float64(chartH-padT-padB)
	px := func(x float64) float64 { return padL + x/xMax*w }
	py := func(y float64) float64 {
		return padT + h - (scale(y)-scale(yMin))/(scale(yMax)-scale(yMin))*h
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, chartH, template.HTMLEscapeString(label))
	for i := 0; i <= chartTicks; i++ {
		f := float64(i) / chartTicks
		y := yMin + f*(yMax-yMin)
		if logY {
			y = math.Pow(10, scale(yMin)+f*(scale(yMax)-scale(yMin)))
		}
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padL, chartW-padR, py(y), py(y))
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-6, py(y)+4, tick(y))
	}
	step := math.Max(1, math.Ceil(xMax/chartTicks)) // whole seconds
	for x := 0.0; x <= xMax; x += step {
		fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%d" text-anchor="middle">%.0fs</text>`, px(x), chartH-padB+16, x)
	}
	fmt.Fprintf(&b, `<text class="unit" x="%d" y="%d">%s</text>`, padL, chartH-4, template.HTMLEscapeString(unit))
	for _, l := range lines {
		var pts strings.Builder
		for i, y := range l.ys {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(xs[i]+0.5), py(y))
		}
		fmt.Fprintf(&b, `<polyline class="line %s" points="%s"><title>%s</title></polyline>`,
			l.class, strings.TrimSpace(pts.String()), template.HTMLEscapeString(l.name))
	}
	b.WriteString(`</svg><p class="legend">`)
	for _, l := range lines {
		fmt.Fprintf(&b, `<span class="key %s"></span>%s `, l.class, template.HTMLEscapeString(l.name))
	}
	b.WriteString(`</p>`)
	return template.HTML(b.String())
}

// tick formats an axis value compactly.
func tick(v float64) string {
	switch {
	case v >= 10_000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 1:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}
