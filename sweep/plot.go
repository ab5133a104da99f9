package sweep

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot geometry: the data area on the left, the legend in a column on the
// right so that it never covers a point.
const (
	plotWidth   = 20 * vg.Centimeter
	plotHeight  = 12 * vg.Centimeter
	legendWidth = 5 * vg.Centimeter
	plotDPI     = 144
)

// glyphs are the marker shapes, one per weight format, in order.
var glyphs = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{},
	draw.BoxGlyph{}, draw.PlusGlyph{}, draw.RingGlyph{}, draw.PyramidGlyph{}}

// palette gives each KV policy a colour (Okabe–Ito, readable by most
// colour-blind readers), in order.
var palette = []color.RGBA{
	{0, 114, 178, 255}, {230, 159, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
	{86, 180, 233, 255}, {213, 94, 0, 255}, {240, 228, 66, 255}, {0, 0, 0, 255},
	{120, 120, 120, 255}, {153, 51, 0, 255},
}

// styleKeys lists the distinct weight formats and policies in the order they
// first appear, so that styles are stable across reruns of the same sweep.
func styleKeys(points []Point) (formats, policies []string) {
	for _, p := range points {
		if !slices.Contains(formats, p.Weights) {
			formats = append(formats, p.Weights)
		}
		if !slices.Contains(policies, p.Policy) {
			policies = append(policies, p.Policy)
		}
	}
	slices.Sort(formats)
	slices.Sort(policies)
	return formats, policies
}

// renderPlot draws KL divergence against total memory (speed false) or
// generation speed, with the Pareto front dashed, and returns it as PNG and
// SVG. It returns nils when no point has the x value (speed not measured).
func renderPlot(points []Point, speed bool) (pngData, svgData []byte, err error) {
	var use []Point
	for _, p := range points {
		if !speed || p.GenTPS > 0 {
			use = append(use, p)
		}
	}
	if len(use) == 0 {
		return nil, nil, nil
	}
	floor := klFloor(use)
	memUnit, memName := 1024.0, "KiB"
	var maxMem int64
	for _, p := range use {
		maxMem = max(maxMem, p.TotalBytes)
	}
	if maxMem >= 10<<20 {
		memUnit, memName = 1<<20, "MiB"
	}
	if maxMem >= 10<<30 {
		memUnit, memName = 1<<30, "GiB"
	}
	xy := func(p Point) (float64, float64) {
		x := float64(p.TotalBytes) / memUnit
		if speed {
			x = p.GenTPS
		}
		return x, max(p.KLD, floor)
	}

	pl := plot.New()
	// The y axis is described in the title: gonum reserves a rotated axis
	// label's full length as vertical padding, which squeezes the data area.
	pl.Y.Scale = plot.LogScale{}
	pl.Y.Tick.Marker = decadeTicks{}
	pl.X.Tick.Marker = niceTicks{}
	if speed {
		pl.Title.Text = "Mean KL divergence to the base (nats, log scale) vs generation speed"
		pl.X.Label.Text = "generation speed (tokens/s)"
	} else {
		pl.Title.Text = "Mean KL divergence to the base (nats, log scale) vs total memory"
		pl.X.Label.Text = fmt.Sprintf("total memory: weights + KV cache (%s)", memName)
	}
	pl.Add(plotter.NewGrid())

	// The front first, so that the markers are drawn over it.
	front := ParetoMemory(use)
	if speed {
		front = ParetoSpeed(use)
	}
	if len(front) > 0 {
		fxy := make(plotter.XYs, len(front))
		labels := make([]string, len(front))
		for i, j := range front {
			fxy[i].X, fxy[i].Y = xy(use[j])
			labels[i] = use[j].Weights + " + " + use[j].KV
		}
		line, err := plotter.NewLine(fxy)
		if err != nil {
			return nil, nil, err
		}
		line.Color = color.RGBA{200, 30, 30, 255}
		line.Width = vg.Points(1.2)
		line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		pl.Add(line)
		lab, err := plotter.NewLabels(plotter.XYLabels{XYs: fxy, Labels: labels})
		if err != nil {
			return nil, nil, err
		}
		for i := range lab.TextStyle {
			lab.TextStyle[i].Font.Size = vg.Points(7)
			lab.TextStyle[i].Color = color.RGBA{140, 20, 20, 255}
		}
		lab.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(3)}
		pl.Add(lab)
	}

	formats, policies := styleKeys(use)
	leg := plot.NewLegend()
	leg.TextStyle.Font.Size = vg.Points(9)
	leg.Top, leg.Left = true, true
	for fi, f := range formats {
		for pi, pol := range policies {
			var pts plotter.XYs
			for _, p := range use {
				if p.Weights == f && p.Policy == pol {
					x, y := xy(p)
					pts = append(pts, plotter.XY{X: x, Y: y})
				}
			}
			if len(pts) == 0 {
				continue
			}
			sc, err := plotter.NewScatter(pts)
			if err != nil {
				return nil, nil, err
			}
			sc.GlyphStyle = draw.GlyphStyle{Shape: glyphs[fi%len(glyphs)], Color: palette[pi%len(palette)], Radius: vg.Points(4)}
			pl.Add(sc)
		}
	}
	// Legend entries: shapes in grey for formats, filled circles for policies.
	leg.Add("weights:")
	for fi, f := range formats {
		leg.Add(f, glyphThumb{draw.GlyphStyle{Shape: glyphs[fi%len(glyphs)], Color: color.Gray{Y: 60}, Radius: vg.Points(4)}})
	}
	leg.Add("KV policy:")
	for pi, pol := range policies {
		leg.Add(pol, glyphThumb{draw.GlyphStyle{Shape: draw.CircleGlyph{}, Color: palette[pi%len(palette)], Radius: vg.Points(4)}})
	}
	leg.Add("Pareto front", frontThumb{})
	pad := func(lo, hi float64) (float64, float64) {
		d := (hi - lo) * 0.08
		if d == 0 {
			d = math.Max(math.Abs(hi)*0.1, 1)
		}
		return math.Max(0, lo-d), hi + d
	}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, p := range use {
		x, y := xy(p)
		xmin, xmax = min(xmin, x), max(xmax, x)
		ymin, ymax = min(ymin, y), max(ymax, y)
	}
	pl.X.Min, pl.X.Max = pad(xmin, xmax)
	pl.Y.Min, pl.Y.Max = ymin/2, ymax*2

	render := func(c vg.CanvasSizer) {
		dc := draw.New(c)
		pl.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
		lc := draw.Crop(dc, plotWidth-legendWidth+vg.Points(6), 0, 0, -vg.Points(30))
		leg.Draw(lc)
	}
	img := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI), vgimg.UseBackgroundColor(color.White))
	render(img)
	var pb bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&pb); err != nil {
		return nil, nil, err
	}
	svg := vgsvg.New(plotWidth, plotHeight)
	render(svg)
	var sb bytes.Buffer
	if _, err := svg.WriteTo(&sb); err != nil {
		return nil, nil, err
	}
	return pb.Bytes(), sb.Bytes(), nil
}

// glyphThumb draws one marker as a legend entry.
type glyphThumb struct{ sty draw.GlyphStyle }

func (g glyphThumb) Thumbnail(c *draw.Canvas) {
	c.DrawGlyph(g.sty, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: (c.Min.Y + c.Max.Y) / 2})
}

// frontThumb draws the Pareto front's dashed line as a legend entry.
type frontThumb struct{}

func (frontThumb) Thumbnail(c *draw.Canvas) {
	y := (c.Min.Y + c.Max.Y) / 2
	c.StrokeLine2(draw.LineStyle{Color: color.RGBA{200, 30, 30, 255}, Width: vg.Points(1.2),
		Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}, c.Min.X, y, c.Max.X, y)
}

// decadeTicks labels each power of ten of a logarithmic axis ("1e-05"), with
// unlabelled minor ticks at 2…9 times it.
type decadeTicks struct{}

func (decadeTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	var ticks []plot.Tick
	for e := int(math.Floor(math.Log10(lo))); e <= int(math.Ceil(math.Log10(hi))); e++ {
		for m := 1; m < 10; m++ {
			v := float64(m) * math.Pow10(e)
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 {
				t.Label = strconv.FormatFloat(math.Pow10(e), 'g', -1, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// niceTicks puts about six labelled ticks on a linear axis at multiples of
// 1, 2 or 5 times a power of ten.
type niceTicks struct{}

func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return nil
	}
	raw := (hi - lo) / 6
	mag := math.Pow10(int(math.Floor(math.Log10(raw))))
	step := mag
	for _, m := range []float64{2, 5, 10} {
		if step >= raw {
			break
		}
		step = m * mag
	}
	prec := max(0, -int(math.Floor(math.Log10(step))))
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', prec, 64)})
		minor := v + step/2
		if minor <= hi {
			ticks = append(ticks, plot.Tick{Value: minor})
		}
	}
	return ticks
}
