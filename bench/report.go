package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes r as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r as a Markdown table in llama-bench's style, one row
// per test, followed by the bandwidth and memory figures and the formulas
// behind them. A result with a depth, a compressed KV cache or a baseline
// gets "kv" and KV-memory columns, and a row per test for its baseline.
func (r *Result) WriteTable(w io.Writer) error { return WriteTables(w, []*Result{r}) }

// WriteTables writes several results (tamp bench's runs at several depths)
// as one table; the notes below it are the first result's, with the CPU
// shares of all.
func WriteTables(w io.Writer, rs []*Result) error {
	if len(rs) == 0 {
		return nil
	}
	var all []*Result
	showKV := false
	for _, r := range rs {
		all = append(all, r)
		if r.Baseline != nil {
			all = append(all, r.Baseline)
		}
	}
	for _, r := range all {
		if r.Depth > 0 || (r.KV != "" && r.KV != "full") {
			showKV = true
		}
	}
	head := []string{"model", "size", "params", "type", "threads", "test", "t/s", "min", "max", "GFLOP/s", "GB/s", "BW share"}
	right := []bool{false, true, true, false, true, true, true, true, true, true, true, true}
	if showKV {
		head = append(head, "kv", "KV used", "KV full")
		right = append(right, false, true, true)
	}
	var rows [][]string
	for _, r := range all {
		row := func(s *Speed, gflops, gbps, share string) {
			cells := []string{r.Model, humanBytes(r.FileBytes), humanCount(r.Params), r.Type, fmt.Sprint(r.Threads),
				s.Test, fmt.Sprintf("%.2f", s.Median), fmt.Sprintf("%.2f", s.Min), fmt.Sprintf("%.2f", s.Max), gflops, gbps, share}
			if showKV {
				kvName := r.KV
				if kvName == "" {
					kvName = "full"
				}
				used, full := "", ""
				if s == r.Gen && r.KVFullBytes > 0 {
					used, full = humanBytes(r.KVUsedBytes), humanBytes(r.KVFullBytes)
				}
				cells = append(cells, kvName, used, full)
			}
			rows = append(rows, cells)
		}
		if r.Prompt != nil {
			row(r.Prompt, fmt.Sprintf("%.1f", r.PromptGFLOPS), "", "")
		}
		if r.Gen != nil {
			share := ""
			if r.Bandwidth != nil {
				share = fmt.Sprintf("%.0f %%", 100*r.BandwidthShare)
			}
			row(r.Gen, "", fmt.Sprintf("%.1f", r.GenGBps), share)
		}
	}
	width := make([]int, len(head))
	for i, h := range head {
		width[i] = len(h)
		for _, rw := range rows {
			width[i] = max(width[i], len([]rune(rw[i])))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if right[i] {
				fmt.Fprintf(&b, " %s%s |", pad, c)
			} else {
				fmt.Fprintf(&b, " %s%s |", c, pad)
			}
		}
		b.WriteString("\n")
	}
	line(head)
	b.WriteString("|")
	for i := range head {
		dash := strings.Repeat("-", width[i]+1)
		if right[i] {
			fmt.Fprintf(&b, "%s:|", dash)
		} else {
			fmt.Fprintf(&b, "%s-|", dash)
		}
	}
	b.WriteString("\n")
	for _, rw := range rows {
		line(rw)
	}
	b.WriteString("\n")
	r := rs[0]
	fmt.Fprintf(&b, "t/s: median of %d runs; kernels %s, GOMAXPROCS %d, KV cache %s", r.Repeat, r.Kernels, r.GOMAXPROCS, r.KVStorage)
	if r.Prompt != nil || r.Depth > 0 {
		fmt.Fprintf(&b, ", prefill batch %d", r.Batch)
	}
	b.WriteString("\n")
	var shares []string
	for _, res := range all {
		for _, s := range []*Speed{res.Prompt, res.Gen} {
			if s != nil && s.CPUShare > 0 {
				name := s.Test
				if showKV {
					name += " " + res.KV
				}
				shares = append(shares, fmt.Sprintf("%s %.0f %%", name, 100*s.CPUShare))
			}
		}
	}
	if len(shares) > 0 {
		fmt.Fprintf(&b, "CPU time ÷ (threads × wall time): %s (well below 100 %% while computing: other programs had the cores)\n", strings.Join(shares, ", "))
	}
	if r.Prompt != nil {
		fmt.Fprintf(&b, "GFLOP/s = 2 × %s weights multiplied per token × t/s (attention products not counted)\n", humanCount(r.MatMulParams))
	}
	if r.Gen != nil {
		after := fmt.Sprintf("an untimed %d-token prompt", GenPromptTokens)
		if r.Depth > 0 {
			after = fmt.Sprintf("%d tokens prefilled untimed; run i starts at d + i × %d", r.Depth, r.Gen.Tokens)
		}
		fmt.Fprintf(&b, "GB/s = %.1f MB of weights read per generated token × t/s (tg after %s)\n",
			float64(r.ReadBytesPerToken)/1e6, after)
	}
	if showKV {
		b.WriteString("KV used: the generation test's cache at its end (evicted entries gone, quantized ones packed); KV full: an uncompressed cache holding the same tokens")
		for _, res := range all {
			if res.Gen != nil && res.KVPeakBytes > res.KVUsedBytes {
				fmt.Fprintf(&b, "; peak %s %s %s", res.Gen.Test, res.KV, humanBytes(res.KVPeakBytes))
			}
		}
		b.WriteString("\n")
	}
	if bw := r.Bandwidth; bw != nil {
		fmt.Fprintf(&b, "memory read bandwidth: %.1f GB/s (median of %d passes over %s by %d threads; best %.1f)",
			bw.GBps, bw.Passes, humanBytes(bw.Bytes), bw.Threads, bw.Best)
		if r.Gen != nil {
			fmt.Fprintf(&b, "; generation bound %.1f t/s, reached %.0f %%", r.GenBound, 100*r.BandwidthShare)
		}
		b.WriteString("\n")
	}
	for _, r := range rs {
		if r.Gen != nil && r.GenPeakRSS == 0 {
			b.WriteString("peak RSS: not reported on this system\n")
		}
		if r.Gen != nil && r.GenPeakRSS > 0 {
			verdict := "within"
			if !r.WithinLimit {
				verdict = "OVER"
			}
			label := ""
			if len(rs) > 1 {
				label = " " + r.Gen.Test
			}
			fmt.Fprintf(&b, "peak RSS during generation%s (%s): %s = %s before the weights were touched + %s; limit for the model: (file %s + KV %s) + 10 %% = %s: %s\n",
				label, r.PeakScope, humanBytes(r.GenPeakRSS), humanBytes(r.BaselineRSS), humanBytes(r.GenPeakRSS-r.BaselineRSS),
				humanBytes(r.FileBytes), humanBytes(r.KVBytes), humanBytes(r.RSSLimit), verdict)
		}
	}
	peak := int64(0)
	for _, r := range rs {
		peak = max(peak, r.PeakRSS)
	}
	if peak > 0 {
		fmt.Fprintf(&b, "peak RSS: %s\n", humanBytes(peak))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// humanBytes prints a byte count in binary units, as llama-bench does.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// humanCount prints a parameter count as llama-bench does ("1.10 B").
func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f B", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.2f K", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
