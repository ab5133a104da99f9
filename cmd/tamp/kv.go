package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"tamp/kv"
	"tamp/kv/evolkv"
	"tamp/kv/kveval"
)

// kvFlags are the KV-compression flags run, eval and bench take.
type kvFlags struct {
	policy   string
	budget   int
	bits     int
	table    string
	group    int
	residual int
	hadamard bool
}

func (f *kvFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.policy, "kv", "full", "KV-cache policy: "+strings.Join(kv.Policies(), ", ")+"; parameters as POLICY:key=value,...")
	fl.IntVar(&f.budget, "kv-budget", 0, "entries per KV head a compressing policy keeps (mean over layers)")
	fl.IntVar(&f.bits, "kv-bits", 0, "quantize the KV cache KIVI-style to 8, 4 or 2 bits (0 = off)")
	fl.StringVar(&f.table, "kv-table", "", "per-layer budgets: uniform, pyramid, or a JSON table (tamp kv evolve writes one)")
	fl.IntVar(&f.group, "kv-group", 32, "KIVI group: tokens per key group, channels per value group")
	fl.IntVar(&f.residual, "kv-residual", 32, "KIVI: recent tokens kept at full precision")
	fl.BoolVar(&f.hadamard, "kv-hadamard", false, "KIVI: rotate keys and values by a Hadamard matrix before quantizing")
}

// spec turns the flags into a kv.Spec.
func (f *kvFlags) spec() (kv.Spec, error) {
	s := kv.Spec{Policy: f.policy, Budget: f.budget}
	if f.policy == "full" {
		s.Policy = ""
	}
	if f.table != "" {
		t, err := kv.ParseTable(f.table)
		if err != nil {
			return s, err
		}
		s.Table = t
	}
	if f.bits != 0 {
		s.Quant = kv.Quant{Bits: f.bits, Group: f.group, Residual: f.residual, Hadamard: f.hadamard}
	} else if f.hadamard {
		return s, fmt.Errorf("--kv-hadamard rotates before quantizing and needs --kv-bits")
	}
	return s, nil
}

func newKVCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kv",
		Short: "KV-cache compression tools: search per-layer budgets",
	}
	cmd.AddCommand(newKVEvolveCmd())
	return cmd
}

func newKVEvolveCmd() *cobra.Command {
	var (
		mf                  modelFlags
		textPath, out, plot string
		policy              string
		budget, group       int
		prompt, next, ctx   int
		windows, gens, pop  int
		part                string
		seed                uint64
		objective           string
		quiet               bool
	)
	cmd := &cobra.Command{
		Use:   "evolve -m MODEL -f CALIB.txt --budget N",
		Short: "Find per-layer KV budgets with CMA-ES, group by group from the bottom (EvolKV)",
		Long: `Search a per-layer budget table for a KV-cache policy, as EvolKV does:
layers are split into groups of --group consecutive layers and optimised
bottom-up with CMA-ES, one group at a time, the mean budget held at --budget.
Each candidate table is scored on calibration windows of the text (prefill
--prompt tokens, compress, predict --next tokens) by its mean KL divergence to
the full cache (or perplexity with --objective ppl).

The table is written as JSON (-o), ready for --kv-table, with an SVG plot of
budget per layer beside uniform and pyramid budgets (--plot). Use --part first
to calibrate on the first half of the text and evaluate on the second half
with 'tamp eval kv --part second --tables FILE'.`,
		Example: `  tamp kv evolve -m stories260K.gguf -f tinystories-sample.txt --budget 64 -o evolkv-64.json
  tamp eval kv -m stories260K.gguf -f tinystories-sample.txt --policies snapkv --budgets 64 --tables uniform,pyramid,evolkv-64.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if textPath == "" || budget < 1 {
				return fmt.Errorf("kv evolve: -f TEXT and --budget N are required")
			}
			e, err := mf.open(cmd)
			if err != nil {
				return err
			}
			defer e.Close()
			text, err := os.ReadFile(textPath)
			if err != nil {
				return err
			}
			o := kveval.Options{Prompt: prompt, Next: next, Context: ctx}
			toks, err := textPart(e.Tok.Encode(string(text), true, false), part)
			if err != nil {
				return err
			}
			wins := kveval.Windows(toks, o, e.Tok.BOS(), e.Tok.AddBOS(), windows)
			if len(wins) == 0 {
				return fmt.Errorf("kv evolve: the text's %s has fewer than %d tokens", part, prompt+next)
			}
			m := e.Model
			shape := kv.Shape{Layers: m.Layers, Heads: m.Heads, KVHeads: m.KVHeads, HeadDim: m.HeadDim}
			if _, err := kv.NewPolicy(kv.Spec{Policy: policy, Budget: budget}, shape); err != nil {
				return err
			}
			ev := kveval.NewEvaluator(m, wins, o, true)
			w := cmd.ErrOrStderr()
			fmt.Fprintf(w, "%s: %d calibration windows of %d+%d tokens (%s of the text), policy %s, mean budget %d\n",
				textPath, len(wins), prompt, next, part, policy, budget)
			obj := func(ctx context.Context, b []int) (float64, error) {
				t := &kv.Table{Kind: kv.TableLayers, Budget: budget, Layers: b}
				res, err := ev.Run(ctx, []kv.Spec{{Policy: policy, Budget: budget, Table: t}})
				if err != nil {
					return 0, err
				}
				if objective == "ppl" {
					return res[0].PPL, nil
				}
				return res[0].KL, nil
			}
			res, err := evolkv.Search(cmd.Context(), obj, evolkv.Options{
				Layers: m.Layers, Mean: budget, Group: group, Max: min(8*budget, prompt),
				Generations: gens, Lambda: pop, Seed: seed,
				Progress: func(p evolkv.Progress) {
					if !quiet {
						fmt.Fprintf(w, "group %d/%d generation %2d/%d, %4d evaluations: best %s %.5f (uniform %.5f) %v\n",
							p.Group+1, p.Groups, p.Generation, p.Generations, p.Evals, objective, p.Best, p.Uniform, p.Budgets)
					}
				},
			})
			if err != nil {
				return err
			}
			table := &kv.Table{Kind: kv.TableLayers, Budget: budget, Layers: res.Budgets, Model: filepath.Base(e.Path),
				Source: fmt.Sprintf("evolkv: %s, %s %.5f (uniform %.5f) on %d windows of %s (%s), groups of %d, %d evaluations",
					policy, objective, res.Best, res.Uniform, len(wins), filepath.Base(textPath), part, group, res.Evals)}
			if out == "" {
				out = fmt.Sprintf("evolkv-%d.json", budget)
			}
			var buf bytes.Buffer
			if _, err := table.WriteTo(&buf); err != nil {
				return err
			}
			if err := writeKVFile(out, buf.Bytes()); err != nil {
				return err
			}
			if plot == "" {
				plot = strings.TrimSuffix(out, filepath.Ext(out)) + ".svg"
			}
			if plot != "-" {
				if err := writeBudgetPlot(plot, table, shape, prompt); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "layer budgets (mean %d): %v\n%s on the calibration windows: %.5f (uniform budgets: %.5f)\nwrote %s",
				budget, res.Budgets, objective, res.Best, res.Uniform, out)
			if plot != "-" {
				fmt.Fprintf(cmd.OutOrStdout(), " and %s", plot)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	mf.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&textPath, "file", "f", "", "calibration text")
	f.IntVar(&budget, "budget", 0, "mean entries per KV head to hold")
	f.StringVar(&policy, "policy", "snapkv", "policy whose per-layer budgets are searched")
	f.IntVar(&group, "group", 2, "consecutive layers optimised together (EvolKV uses 8 of 32)")
	f.IntVar(&prompt, "prompt", 384, "prompt tokens per window (prefilled, then compressed)")
	f.IntVar(&next, "next", 128, "tokens predicted after the prompt")
	f.IntVar(&ctx, "ctx", 512, "context length")
	f.IntVar(&windows, "windows", 16, "calibration windows")
	f.StringVar(&part, "part", "first", "part of the text to calibrate on: first (half), second or all")
	f.IntVar(&gens, "generations", 12, "CMA-ES generations per group")
	f.IntVar(&pop, "population", 0, "CMA-ES population (0: 4+3 ln n)")
	f.Uint64Var(&seed, "seed", 1, "random seed")
	f.StringVar(&objective, "objective", "kl", "what to minimise: kl (to the full cache) or ppl")
	f.StringVarP(&out, "output", "o", "", "table file (default evolkv-BUDGET.json)")
	f.StringVar(&plot, "plot", "", "SVG plot of budget per layer (default beside the table; - for none)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress")
	return cmd
}

// textPart returns the first or second half of tokens, or all of them.
func textPart(toks []int32, part string) ([]int32, error) {
	switch part {
	case "first":
		return toks[:len(toks)/2], nil
	case "second":
		return toks[len(toks)/2:], nil
	case "all", "":
		return toks, nil
	}
	return nil, fmt.Errorf("--part %q: want first, second or all", part)
}

// writeBudgetPlot draws a table's budgets per layer beside uniform and
// pyramid budgets of the same mean.
func writeBudgetPlot(path string, t *kv.Table, shape kv.Shape, prompt int) error {
	x := make([]float64, shape.Layers)
	evo, uni, pyr := make([]float64, shape.Layers), make([]float64, shape.Layers), make([]float64, shape.Layers)
	pt := (&kv.Table{Kind: kv.TablePyramid}).Resolve(shape, t.Budget, prompt, 8)
	for l := range x {
		x[l] = float64(l)
		evo[l] = float64(t.Layers[l])
		uni[l] = float64(t.Budget)
		pyr[l] = float64(pt[l][0])
	}
	c := kveval.Chart{Title: fmt.Sprintf("KV budget per layer, mean %d", t.Budget), XLabel: "layer", YLabel: "entries per KV head",
		Bars: true, Series: []kveval.Series{{Name: "evolkv", X: x, Y: evo}, {Name: "uniform", X: x, Y: uni}, {Name: "pyramid (window 8)", X: x, Y: pyr}}}
	var buf bytes.Buffer
	if err := c.WriteSVG(&buf); err != nil {
		return err
	}
	return writeKVFile(path, buf.Bytes())
}

// writeKVFile writes data beside path and renames it into place.
func writeKVFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tamp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file private; results are for sharing.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
