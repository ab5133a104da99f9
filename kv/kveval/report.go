package kveval

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints results as an aligned text table.
func WriteTable(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\ttable\tbudget\tKV bits\tPPL\t±\tmean KL\t±\tKL p99\tsame top\tpeak KV\tfinal KV\tfinal/full\t")
	for _, r := range results {
		budget, bits := "all", "16"
		if r.Budget > 0 {
			budget = fmt.Sprint(r.Budget)
		}
		if r.Bits > 0 {
			bits = fmt.Sprint(r.Bits)
			if r.Hadamard {
				bits += "+H"
			}
		}
		table := r.Table
		if table == "" {
			table = "-"
		}
		ratio := 0.0
		if r.FullBytes > 0 {
			ratio = float64(r.FinalBytes) / float64(r.FullBytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.4f\t%.4f\t%.5f\t%.5f\t%.4f\t%.2f%%\t%s\t%s\t%.1f%%\t\n",
			r.Policy, table, budget, bits, r.PPL, r.PPLErr, r.KL, r.KLErr, r.KLP99, 100*r.SameTop,
			HumanBytes(r.PeakBytes), HumanBytes(r.FinalBytes), 100*ratio)
	}
	return tw.Flush()
}

// QualityChart plots mean KL divergence against budget, one line per policy
// (and table and quantization); rows without a budget are left out.
func QualityChart(results []*Result, title string) Chart {
	var series []Series
	index := map[string]int{}
	for _, r := range results {
		if r.Budget <= 0 {
			continue
		}
		name := r.Policy
		if r.Table != "" && r.Table != "pyramid" {
			name += " (" + r.Table + ")"
		}
		if r.Bits > 0 {
			name += fmt.Sprintf(" + %d-bit KV", r.Bits)
			if r.Hadamard {
				name += " (Hadamard)"
			}
		}
		i, ok := index[name]
		if !ok {
			i = len(series)
			index[name] = i
			series = append(series, Series{Name: name})
		}
		series[i].X = append(series[i].X, float64(r.Budget))
		series[i].Y = append(series[i].Y, r.KL)
	}
	return Chart{Title: title, XLabel: "KV budget (entries per head)", YLabel: "mean KL divergence to the full cache (nats)",
		LogX: true, LogY: true, Series: series}
}

// HumanBytes prints a byte count in binary units.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
