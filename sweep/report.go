package sweep

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Report file names inside a sweep directory.
const (
	ReportMD         = "report.md"
	ReportHTML       = "report.html"
	PlotMemoryPrefix = "kld_vs_memory" // .png and .svg
	PlotSpeedPrefix  = "kld_vs_speed"
)

// ReportInfo describes the sweep a report is about.
type ReportInfo struct {
	Model, Text string
	Ctx         int
	Workers     int
	Threads     int
	BasePPL     float64
	// Planned is the number of combinations asked for; Failed those that
	// could not run; Interrupted marks a report of an unfinished sweep.
	Planned     int
	Failed      []Failure
	Interrupted bool
	Command     string
}

// row is a point prepared for the report tables.
type row struct {
	Point
	Front, SpeedFront bool
}

// sortedRows orders points by total memory, then KL divergence, and marks
// the Pareto fronts.
func sortedRows(points []Point) []row {
	rows := make([]row, len(points))
	for i, p := range points {
		rows[i].Point = p
	}
	for _, i := range ParetoMemory(points) {
		rows[i].Front = true
	}
	for _, i := range ParetoSpeed(points) {
		rows[i].SpeedFront = true
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		if c := cmp.Compare(a.TotalBytes, b.TotalBytes); c != 0 {
			return c
		}
		if c := cmp.Compare(a.KLD, b.KLD); c != 0 {
			return c
		}
		return cmp.Compare(a.Weights+a.KV, b.Weights+b.KV)
	})
	return rows
}

var tableHeader = []string{"front", "weights", "KV", "total mem", "weights", "KV @ctx", "KV peak", "bpw", "PPL", "KLD mean", "KLD p99", "same top", "pp t/s", "tg t/s"}

func (r row) cells() []string {
	mark := ""
	if r.Front {
		mark = "★"
	}
	if r.SpeedFront {
		mark += "⚡"
	}
	speed := func(v float64) string {
		if v <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.0f", v)
	}
	return []string{mark, r.Weights, r.KV, HumanBytes(r.TotalBytes), HumanBytes(r.WeightBytes), HumanBytes(r.KVBytes), HumanBytes(r.KVPeakBytes),
		fmt.Sprintf("%.2f", r.BPW), fmt.Sprintf("%.4f ± %.4f", r.PPL, r.PPLErr), fmt.Sprintf("%.6f", r.KLD), fmt.Sprintf("%.5f", r.KLDP99),
		fmt.Sprintf("%.2f%%", 100*r.SameTop), speed(r.PromptTPS), speed(r.GenTPS)}
}

// WriteTable writes points as a Markdown table sorted by total memory, the
// memory–KLD Pareto front marked ★ and the speed–KLD front ⚡.
func WriteTable(w io.Writer, points []Point) error {
	var b strings.Builder
	b.WriteString("| " + strings.Join(tableHeader, " | ") + " |\n|")
	for range tableHeader {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range sortedRows(points) {
		b.WriteString("| " + strings.Join(r.cells(), " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FrontWords names the memory–KLD Pareto front in words, from the smallest
// configuration to the most accurate.
func FrontWords(points []Point) string {
	var parts []string
	for _, i := range ParetoMemory(points) {
		p := points[i]
		parts = append(parts, fmt.Sprintf("%s weights with %s KV (%s, KLD %.5f)", p.Weights, p.KV, HumanBytes(p.TotalBytes), p.KLD))
	}
	return strings.Join(parts, "; then ")
}

// WriteReport writes DIR/report.md, DIR/report.html and the plots (PNG and
// SVG) for points. The HTML file embeds its plots and styles and refers to
// nothing outside itself.
func WriteReport(dir string, points []Point, info ReportInfo) error {
	plots := map[string][]byte{}
	if len(points) > 0 {
		for _, spec := range []struct {
			prefix string
			speed  bool
		}{{PlotMemoryPrefix, false}, {PlotSpeedPrefix, true}} {
			png, svg, err := renderPlot(points, spec.speed)
			if err != nil {
				return err
			}
			if png == nil {
				continue
			}
			for ext, data := range map[string][]byte{".png": png, ".svg": svg} {
				if err := writeAtomic(filepath.Join(dir, spec.prefix+ext), func(w io.Writer) error {
					_, err := w.Write(data)
					return err
				}); err != nil {
					return err
				}
			}
			plots[spec.prefix] = png
		}
	}
	if err := writeAtomic(filepath.Join(dir, ReportMD), func(w io.Writer) error {
		return writeMarkdown(w, points, info, plots)
	}); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, ReportHTML), func(w io.Writer) error {
		return writeHTML(w, points, info, plots)
	})
}

func summaryLines(points []Point, info ReportInfo) []string {
	lines := []string{
		fmt.Sprintf("Model %s, text %s, context %d tokens; %d of %d combinations measured.", info.Model, info.Text, info.Ctx, len(points), info.Planned),
	}
	if info.Interrupted {
		lines = append(lines, "The sweep was interrupted: only finished points are shown; rerun the same command to complete it.")
	}
	if info.BasePPL > 0 {
		lines = append(lines, fmt.Sprintf("Base (uncompressed weights, full cache): PPL %.4f. KL divergence is measured against it on every scored position (second half of each chunk, predicted one decoding step at a time after the first half was prefilled).", info.BasePPL))
	}
	if len(points) > 0 {
		p := points[0]
		lines = append(lines, fmt.Sprintf("%d chunks, %d scored positions per point. Memory = weight bytes + KV bytes once the context holds %d tokens. Speeds: median of the speed test with %d threads, one point at a time.", p.Chunks, p.Positions, info.Ctx, p.SpeedThreads))
	}
	// Points may come from earlier runs: report the layout they were
	// measured with.
	if len(points) > 0 && points[0].Workers > 0 {
		lines = append(lines, fmt.Sprintf("Evaluated with %d workers × %d threads.", points[0].Workers, points[0].Threads))
	}
	lines = append(lines, "★ marks the Pareto front of memory against mean KLD, ⚡ that of generation speed against mean KLD.")
	return lines
}

func writeMarkdown(w io.Writer, points []Point, info ReportInfo, plots map[string][]byte) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# tamp sweep: %s\n\n", info.Model)
	for _, l := range summaryLines(points, info) {
		b.WriteString(l + "\n")
	}
	if info.Command != "" {
		fmt.Fprintf(&b, "\n```\n%s\n```\n", info.Command)
	}
	if len(points) > 0 {
		fmt.Fprintf(&b, "\n## Pareto front (memory vs KL divergence)\n\n%s.\n", FrontWords(points))
		b.WriteString("\n## Points, by total memory\n\n")
		if err := WriteTable(&b, points); err != nil {
			return err
		}
	}
	if _, ok := plots[PlotMemoryPrefix]; ok {
		fmt.Fprintf(&b, "\n## Plots\n\n![KL divergence vs total memory](%s.png)\n", PlotMemoryPrefix)
	}
	if _, ok := plots[PlotSpeedPrefix]; ok {
		fmt.Fprintf(&b, "\n![KL divergence vs generation speed](%s.png)\n", PlotSpeedPrefix)
	}
	if len(info.Failed) > 0 {
		b.WriteString("\n## Not measured\n\n")
		for _, f := range info.Failed {
			fmt.Fprintf(&b, "- %s: %v\n", failureName(f), f.Err)
		}
	}
	fmt.Fprintf(&b, "\nGenerated %s.\n", time.Now().UTC().Format(time.RFC3339))
	_, err := w.Write(b.Bytes())
	return err
}

func failureName(f Failure) string {
	switch {
	case f.Weights == "":
		return "KV " + f.KV
	case f.KV == "":
		return "weights " + f.Weights
	}
	return f.Weights + " × " + f.KV
}

var htmlTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tamp sweep: {{.Info.Model}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; position: sticky; top: 0; }
td.l, th.l { text-align: left; }
tr.front { background: #fff6d5; font-weight: 600; }
.front-list li { margin: .2em 0; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.plots figure { margin: 0; flex: 1 1 100%; max-width: 1000px; }
.plots img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; }
code, pre { background: #f6f6f6; padding: 2px 4px; }
pre { padding: .6em; white-space: pre-wrap; word-break: break-all; }
.note { color: #555; }
.warn { color: #a40; }
</style>
</head>
<body>
<h1>tamp sweep: {{.Info.Model}}</h1>
{{range .Summary}}<p class="note">{{.}}</p>
{{end}}{{if .Info.Command}}<pre>{{.Info.Command}}</pre>{{end}}
{{if .Front}}<h2>Pareto front: memory vs KL divergence</h2>
<ol class="front-list">{{range .Front}}<li>{{.}}</li>{{end}}</ol>{{end}}
{{if .Plots}}<h2>Plots</h2>
<div class="plots">{{range .Plots}}<figure><img src="{{.Src}}" alt="{{.Alt}}"><figcaption>{{.Alt}}</figcaption></figure>{{end}}</div>{{end}}
{{if .Rows}}<h2>Points, by total memory</h2>
<table>
<thead><tr>{{range $i, $h := .Header}}<th{{if and (ge $i 1) (le $i 2)}} class="l"{{end}}>{{$h}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr{{if .Front}} class="front"{{end}}>{{range $i, $c := .Cells}}<td{{if and (ge $i 1) (le $i 2)}} class="l"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</tbody>
</table>{{end}}
{{if .Failed}}<h2>Not measured</h2>
<ul>{{range .Failed}}<li class="warn">{{.}}</li>{{end}}</ul>{{end}}
<p class="note">Generated {{.Generated}} by tamp sweep.</p>
</body>
</html>
`))

type htmlPlot struct {
	Src template.URL
	Alt string
}

type htmlRow struct {
	Front bool
	Cells []string
}

func writeHTML(w io.Writer, points []Point, info ReportInfo, plots map[string][]byte) error {
	data := struct {
		Info      ReportInfo
		Summary   []string
		Front     []string
		Plots     []htmlPlot
		Header    []string
		Rows      []htmlRow
		Failed    []string
		Generated string
	}{Info: info, Summary: summaryLines(points, info), Header: tableHeader, Generated: time.Now().UTC().Format(time.RFC3339)}
	for _, i := range ParetoMemory(points) {
		p := points[i]
		data.Front = append(data.Front, fmt.Sprintf("%s weights + %s KV: %s total, mean KLD %.6f, PPL %.4f", p.Weights, p.KV, HumanBytes(p.TotalBytes), p.KLD, p.PPL))
	}
	for _, spec := range []struct{ key, alt string }{
		{PlotMemoryPrefix, "KL divergence vs total memory (weights + KV at the stated context); Pareto front dashed"},
		{PlotSpeedPrefix, "KL divergence vs generation speed; Pareto front dashed"},
	} {
		if png, ok := plots[spec.key]; ok {
			data.Plots = append(data.Plots, htmlPlot{Src: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)), Alt: spec.alt})
		}
	}
	for _, r := range sortedRows(points) {
		data.Rows = append(data.Rows, htmlRow{Front: r.Front, Cells: r.cells()})
	}
	for _, f := range info.Failed {
		data.Failed = append(data.Failed, fmt.Sprintf("%s: %v", failureName(f), f.Err))
	}
	return htmlTmpl.Execute(w, data)
}

// klFloor is the smallest KL divergence drawn on the logarithmic axis: the
// base file's quantization leaves a model compared with itself near 1e-6
// nats, sometimes just below zero.
func klFloor(points []Point) float64 {
	lo := math.Inf(1)
	for _, p := range points {
		if p.KLD > 0 {
			lo = min(lo, p.KLD)
		}
	}
	if math.IsInf(lo, 1) {
		return 1e-6
	}
	return min(lo, 1e-6)
}
