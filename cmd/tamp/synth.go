package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"tamp/quant"
	"tamp/synth"
	"tamp/tensor"
)

func newSynthCmd() *cobra.Command {
	var (
		arch, shapeName, typeName, out string
		seed                           uint64
		threads                        int
		list                           bool
		over                           synth.Shape
	)
	cmd := &cobra.Command{
		Use:   "synth --shape SHAPE --type TYPE -o FILE.gguf",
		Short: "Write a random-weight model of a real model's shape, for benchmarks and tests",
		Long: `Write a GGUF model with random weights and the shape of a real one
(TinyLlama-1.1B, Qwen2-0.5B, …): llama.cpp's tensor names and metadata, the
tensor types a llama-quantize target gives (F16, Q8_0, Q4_0, the Q4_K_M
mixture with its per-tensor rules, …), and a synthetic SentencePiece
vocabulary of the shape's size with byte fallback, so 'tamp run', 'tamp
bench' and llama.cpp load and run it. Its text is noise; its speed and
memory are those of the real model.

Weights are normal with standard deviation 0.02 (norms 1 ± 0.02). The same
--seed gives the same file byte for byte. The file is streamed to disk one
tensor at a time, so memory use stays small whatever the model's size; it is
written to a temporary name and renamed when complete.

--dim, --layers, --heads, --kv-heads, --ffn, --vocab and --ctx change the
chosen shape; --arch changes its architecture (qwen2 adds biases to the
query, key and value projections).`,
		Example: `  tamp synth --shape tinyllama-1.1b --type Q4_K_M -o tl-q4km.gguf
  tamp synth --arch qwen2 --shape qwen2-0.5b --type Q8_0 --seed 7 -o qw.gguf
  tamp synth --shape stories260k --layers 2 --type F32 -o tiny.gguf
  tamp synth --list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if list {
				return listShapes(cmd)
			}
			if shapeName == "" {
				return fmt.Errorf("synth: give --shape (one of %s)", strings.Join(synth.ShapeNames(), ", "))
			}
			if out == "" {
				return fmt.Errorf("synth: give the output file with -o")
			}
			s, err := synth.LookupShape(shapeName)
			if err != nil {
				return err
			}
			if arch != "" {
				s.Arch = arch
			}
			f := cmd.Flags()
			for _, o := range []struct {
				flag string
				dst  *int
				v    int
			}{{"dim", &s.Dim, over.Dim}, {"layers", &s.Layers, over.Layers}, {"heads", &s.Heads, over.Heads},
				{"kv-heads", &s.KVHeads, over.KVHeads}, {"ffn", &s.FFN, over.FFN}, {"vocab", &s.Vocab, over.Vocab}, {"ctx", &s.Context, over.Context}} {
				if f.Changed(o.flag) {
					*o.dst = o.v
				}
			}
			opts := synth.Options{Shape: s, Type: typeName, Seed: seed, Threads: threads}
			plan, err := synth.Plan(opts)
			if err != nil {
				return err
			}
			w := cmd.ErrOrStderr()
			fmt.Fprintf(w, "synthesizing %s (%s, %s params) as %s: %s\n", s.Name, s.Arch, humanCount(s.Params()), plan.Target, humanBytes(plan.Size))
			bar := newProgress(w, int(plan.Size), "synth")
			opts.Progress = func(done, _ int64) { bar.Set(int(done)) }
			start := time.Now()
			if _, err := synth.WriteFile(cmd.Context(), out, opts); err != nil {
				return err
			}
			bar.Finish()
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s, %s in %s (%s)\n", out, humanBytes(plan.Size), typeSummary(plan),
				time.Since(start).Round(100*time.Millisecond), mbPerSec(plan.Size, time.Since(start)))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&arch, "arch", "", "architecture: llama or qwen2 (default: the shape's)")
	f.StringVar(&shapeName, "shape", "", "model shape: "+strings.Join(synth.ShapeNames(), ", "))
	f.StringVar(&typeName, "type", "F16", "tensor type or llama-quantize mixture: "+quant.TargetNames())
	f.Uint64Var(&seed, "seed", 1, "random seed; the same seed gives the same file")
	f.StringVarP(&out, "output", "o", "", "output GGUF file")
	f.IntVarP(&threads, "threads", "t", 0, "threads generating weights (default: all cores); the file does not depend on it")
	f.BoolVar(&list, "list", false, "list the built-in shapes and exit")
	f.IntVar(&over.Dim, "dim", 0, "override the embedding width")
	f.IntVar(&over.Layers, "layers", 0, "override the number of blocks")
	f.IntVar(&over.Heads, "heads", 0, "override the attention head count")
	f.IntVar(&over.KVHeads, "kv-heads", 0, "override the KV head count")
	f.IntVar(&over.FFN, "ffn", 0, "override the feed-forward width")
	f.IntVar(&over.Vocab, "vocab", 0, "override the vocabulary size (at least 260)")
	f.IntVar(&over.Context, "ctx", 0, "override the trained context length")
	return cmd
}

func listShapes(cmd *cobra.Command) error {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SHAPE\tARCH\tPARAMS\tDIM\tLAYERS\tHEADS\tKV\tFFN\tVOCAB\tCTX\tTIED\t")
	for _, s := range synth.Shapes() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t\n", s.Name, s.Arch, humanCount(s.Params()),
			s.Dim, s.Layers, s.Heads, s.KVHeads, s.FFN, s.Vocab, s.Context, s.Tied)
	}
	return tw.Flush()
}

// typeSummary counts the tensors of each type, most bytes first.
func typeSummary(l *synth.Layout) string {
	count := map[tensor.Type]int{}
	bytes := map[tensor.Type]uint64{}
	for _, t := range l.Tensors {
		count[t.Type]++
		bytes[t.Type] += t.Bytes
	}
	var types []tensor.Type
	for t := range count {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool { return bytes[types[i]] > bytes[types[j]] })
	var parts []string
	for _, t := range types {
		parts = append(parts, fmt.Sprintf("%d×%s", count[t], t))
	}
	return strings.Join(parts, ", ")
}

// humanCount prints a parameter count as llama-bench does (1.10 B).
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

func mbPerSec(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MB/s", float64(n)/1e6/d.Seconds())
}
