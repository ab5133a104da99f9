package kveval

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"sort"
)

// Series is one line (or set of bars) of a chart.
type Series struct {
	Name string
	X, Y []float64
}

// Chart is a minimal line or bar chart written as SVG, enough for tamp's
// quality-versus-budget and budget-per-layer plots without a plotting
// dependency.
type Chart struct {
	Title, XLabel, YLabel string
	LogX, LogY            bool // logarithmic axes (base 2 for x, 10 for y)
	Bars                  bool // draw the series as grouped bars at integer x
	Series                []Series
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

const (
	plotW, plotH                    = 720, 440
	marginL, marginR, marginT, marB = 72, 170, 40, 56
)

// WriteSVG renders the chart.
func (c Chart) WriteSVG(w io.Writer) error {
	bw := bufio.NewWriter(w)
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for i := range s.X {
			x, y := s.X[i], s.Y[i]
			if (c.LogX && x <= 0) || (c.LogY && y <= 0) || math.IsNaN(y) || math.IsInf(y, 0) {
				continue
			}
			xmin, xmax = math.Min(xmin, x), math.Max(xmax, x)
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	if math.IsInf(xmin, 1) {
		xmin, xmax, ymin, ymax = 0, 1, 0, 1
	}
	if c.Bars {
		xmin, xmax = xmin-0.6, xmax+0.6
		if !c.LogY {
			ymin = math.Min(0, ymin)
		}
	}
	tx := func(x float64) float64 { return x }
	ty := func(y float64) float64 { return y }
	if c.LogX {
		tx = math.Log2
	}
	if c.LogY {
		ty = math.Log10
	}
	x0, x1, y0, y1 := tx(xmin), tx(xmax), ty(ymin), ty(ymax)
	if c.LogY {
		y0, y1 = math.Floor(y0), math.Ceil(y1)
	} else if !c.Bars {
		pad := (y1 - y0) * 0.05
		y0, y1 = y0-pad, y1+pad
	} else {
		y1 += (y1 - y0) * 0.05
	}
	if c.LogX && !c.Bars {
		pad := (x1 - x0) * 0.05
		x0, x1 = x0-pad, x1+pad
	}
	if x1 == x0 {
		x0, x1 = x0-1, x1+1
	}
	if y1 == y0 {
		y0, y1 = y0-1, y1+1
	}
	pw, ph := float64(plotW-marginL-marginR), float64(plotH-marginT-marB)
	px := func(x float64) float64 { return marginL + (tx(x)-x0)/(x1-x0)*pw }
	py := func(y float64) float64 { return marginT + ph - (ty(y)-y0)/(y1-y0)*ph }

	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(bw, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(c.Title))
	// Axes and ticks.
	fmt.Fprintf(bw, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", marginL, marginT, pw, ph)
	for _, t := range ticks(x0, x1, c.LogX, 2, c.Bars) {
		x := px(t)
		fmt.Fprintf(bw, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, float64(marginT), x, marginT+ph)
		fmt.Fprintf(bw, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, marginT+ph+16, label(t))
	}
	for _, t := range ticks(y0, y1, c.LogY, 10, false) {
		y := py(t)
		fmt.Fprintf(bw, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, y, marginL+pw, y)
		fmt.Fprintf(bw, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-6, y+4, label(t))
	}
	fmt.Fprintf(bw, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+pw/2, plotH-14, html.EscapeString(c.XLabel))
	fmt.Fprintf(bw, `<text transform="translate(18,%.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginT+ph/2, html.EscapeString(c.YLabel))
	// Data.
	nb := float64(len(c.Series))
	for si, s := range c.Series {
		col := palette[si%len(palette)]
		if c.Bars {
			width := 0.8 / nb * pw / (x1 - x0)
			for i := range s.X {
				left := px(s.X[i]-0.4+0.8*float64(si)/nb) + 0.5
				top, base := py(s.Y[i]), py(math.Max(ymin, 0))
				if c.LogY {
					base = marginT + ph
				}
				fmt.Fprintf(bw, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`+"\n",
					left, top, math.Max(width-1, 1), math.Max(base-top, 0), col, html.EscapeString(s.Name), label(s.Y[i]))
			}
		} else {
			idx := make([]int, len(s.X))
			for i := range idx {
				idx[i] = i
			}
			sort.SliceStable(idx, func(a, b int) bool { return s.X[idx[a]] < s.X[idx[b]] })
			var pts []string
			for _, i := range idx {
				x, y := s.X[i], s.Y[i]
				if (c.LogX && x <= 0) || (c.LogY && y <= 0) || math.IsNaN(y) || math.IsInf(y, 0) {
					continue
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), py(y)))
				fmt.Fprintf(bw, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s: %s, %s</title></circle>`+"\n", px(x), py(y), col, html.EscapeString(s.Name), label(x), label(y))
			}
			if len(pts) > 1 {
				fmt.Fprintf(bw, `<polyline fill="none" stroke="%s" stroke-width="2" points="`, col)
				for i, p := range pts {
					if i > 0 {
						bw.WriteString(" ")
					}
					bw.WriteString(p)
				}
				bw.WriteString("\"/>\n")
			}
		}
		ly := marginT + 8 + 18*si
		fmt.Fprintf(bw, `<rect x="%d" y="%d" width="14" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			plotW-marginR+12, ly, col, plotW-marginR+32, ly+10, html.EscapeString(s.Name))
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

// ticks returns axis tick values in data units for the transformed range
// [t0, t1]: powers of base on a logarithmic axis, round steps otherwise.
func ticks(t0, t1 float64, log bool, base float64, integers bool) []float64 {
	var out []float64
	if log {
		for e := math.Ceil(t0 - 1e-9); e <= t1+1e-9; e++ {
			out = append(out, math.Pow(base, e))
		}
		return out
	}
	span := t1 - t0
	step := math.Pow(10, math.Floor(math.Log10(span/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= 8 {
			step *= m
			break
		}
	}
	if integers {
		step = math.Max(1, math.Round(step))
	}
	for v := math.Ceil(t0/step) * step; v <= t1+1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func label(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 1e5 || a < 1e-3:
		return fmt.Sprintf("%.0e", v)
	case a >= 10 && v == math.Round(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
