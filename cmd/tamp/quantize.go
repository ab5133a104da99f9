package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"tamp/engine"
	"tamp/gguf"
	"tamp/quant"
	"tamp/tensor"
)

type quantizeFlags struct {
	out         string
	typeName    string
	pure        bool
	imatrix     string
	report      string
	targetBPW   float64
	targetSize  int64
	candidates  string
	calib       string
	calibPart   string
	calibCtx    int
	calibChunks int
	minExperts  string
	quiet       bool
	showSQ      bool
	actSplit    float64
	bpwScope    string
}

func newQuantizeCmd() *cobra.Command {
	var qf quantizeFlags
	cmd := &cobra.Command{
		Use:   "quantize IN.gguf -o OUT.gguf --type T",
		Short: "Quantize a model's weights to llama.cpp types, mixtures, tamp's SQ types, or a size budget",
		Long: `Convert a model's weight matrices to smaller tensor types and write a GGUF file.

--type takes a llama.cpp tensor type (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K,
Q4_K, Q5_K, Q6_K), one of llama-quantize's mixtures (Q4_K_M, Q4_K_S, Q5_K_M,
Q3_K_M, …, with the same per-tensor rules), F16/BF16/F32, or one of tamp's SQ
sparse-quantized types (SQ4_8, SQ4_16, SQ2_8, SQ2_16; --sq-info prints their
cost). Files with llama.cpp types load in llama.cpp; SQ files only in tamp.
A tensor whose rows do not divide into the type's blocks falls back to the
nearest type that fits (llama.cpp's fallbacks, then wider legacy types, then
F16) and the report says so; llama.cpp refuses such models, tamp carries on.

--imatrix FILE (from 'tamp imatrix' or llama-imatrix, GGUF or legacy .dat)
weights each column's error by its importance when scales are chosen.

--target-bpw X or --target-size BYTES choose a type per tensor (per expert for
MoE models) from --candidates to minimise the measured damage within the
budget: each (tensor, type) is measured as the KL divergence of the model
quantized in that tensor only, on calibration chunks of --calib, and the
choice is solved exactly as a knapsack. Budgets count all tensor data (bits
per weight = tensor bytes·8 / all weights, as 'tamp inspect' prints). For MoE
models each expert (its gate, up and down) gets one type, weighted by how
often and how strongly it is routed (MC-MoE; --min-experts sets minimum
counts per type); a layer whose experts differ in type is written as
per-expert tensors (blk.N.ffn_gate.E.weight …), which tamp loads directly.

The output is written to a temporary file and renamed, so an interrupted run
never leaves a partial file under the output name.`,
		Example: `  tamp quantize stories260K.gguf -o s-q4.gguf --type Q4_0
  tamp quantize stories260K.gguf -o s-q4i.gguf --type Q4_0 --imatrix stories.imatrix.gguf
  tamp quantize stories260K.gguf -o s-sq.gguf --type SQ4_8 --imatrix stories.imatrix.gguf --report sq.json
  tamp quantize stories260K.gguf -o s-6.gguf --target-bpw 6 --calib tinystories-sample.txt --calib-part first`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !qf.showSQ {
				return fmt.Errorf("quantize: give the input model (IN.gguf)")
			}
			in := ""
			if len(args) == 1 {
				in = args[0]
			}
			return runQuantize(cmd, in, &qf)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&qf.out, "output", "o", "", "output GGUF file")
	f.StringVar(&qf.typeName, "type", "Q8_0", "target type or mixture ("+quant.TargetNames()+")")
	f.BoolVar(&qf.pure, "pure", false, "no per-tensor rules: every weight matrix gets --type (or its fallback)")
	f.StringVar(&qf.imatrix, "imatrix", "", "importance matrix file (GGUF or legacy .dat)")
	f.StringVar(&qf.report, "report", "", "also write the per-tensor report as JSON to this file")
	f.Float64Var(&qf.targetBPW, "target-bpw", 0, "allocate types per tensor to this many bits per weight of tensor data")
	f.Int64Var(&qf.targetSize, "target-size", 0, "allocate types per tensor to at most this many bytes of tensor data")
	f.StringVar(&qf.bpwScope, "bpw-scope", "all", "what --target-bpw counts: all (every weight, as inspect prints) or choices (only the tensors the allocation chooses a type for; the others stay as they are)")
	f.StringVar(&qf.candidates, "candidates", "", "comma-separated types the allocation may use (default: all tamp writes)")
	f.StringVar(&qf.calib, "calib", "", "calibration text for the allocation's damage measurements")
	f.StringVar(&qf.calibPart, "calib-part", "all", "part of the calibration text: all, first or second half")
	f.IntVar(&qf.calibCtx, "calib-ctx", 128, "tokens per calibration chunk")
	f.IntVar(&qf.calibChunks, "calib-chunks", 4, "calibration chunks per damage measurement")
	f.StringVar(&qf.minExperts, "min-experts", "", "MoE: at least N experts per layer at a type, e.g. Q4_0=1,Q8_0=1")
	f.BoolVarP(&qf.quiet, "quiet", "q", false, "no progress bars")
	f.BoolVar(&qf.showSQ, "sq-info", false, "print the SQ presets' layouts and bits per weight, then exit")
	f.Float64Var(&qf.actSplit, "act-split", 0, "SQ static activation split: calibrate this fraction of each input's channels for INT8 (rest INT4) on --calib, store it in the file and report its cost")
	return cmd
}

func runQuantize(cmd *cobra.Command, in string, qf *quantizeFlags) error {
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if qf.showSQ {
		for _, p := range quant.SQPresets() {
			fmt.Fprintln(stdout, p)
		}
		return nil
	}
	if qf.out == "" {
		return fmt.Errorf("quantize: -o OUT.gguf is required")
	}
	tg, err := quant.ParseTarget(qf.typeName)
	if err != nil {
		return err
	}
	src, err := gguf.Open(in)
	if err != nil {
		return err
	}
	defer src.Close()
	opts := quant.Options{Target: &tg, Pure: qf.pure}
	if qf.imatrix != "" {
		if opts.Imatrix, err = quant.ReadImatrix(qf.imatrix); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "imatrix %s: %d entries, %d chunks (%s)\n", qf.imatrix, len(opts.Imatrix.Entries), opts.Imatrix.Chunks, strings.Join(opts.Imatrix.Datasets, ", "))
	}
	if qf.targetBPW > 0 || qf.targetSize > 0 {
		if opts.Plan, err = allocate(cmd, in, src, qf, opts.Imatrix); err != nil {
			return err
		}
	}
	if qf.typeName != "" && IsSQName(tg) {
		for _, p := range quant.SQPresets() {
			if p.Type == tg.Type {
				fmt.Fprintln(stderr, p)
			}
		}
	}
	var bar *progress
	if !qf.quiet {
		opts.Progress = func(done, total int, _ string) {
			if bar == nil {
				bar = newProgress(stderr, total, "quantizing")
			}
			bar.Set(done)
			if done == total {
				bar.Finish()
			}
		}
	}
	out, rep, err := quant.Quantize(src, opts)
	if err != nil {
		return err
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if qf.actSplit > 0 {
		if err := actSplit(cmd, in, src, out, qf); err != nil {
			return err
		}
	}
	if err := gguf.WriteFile(qf.out, out); err != nil {
		return err
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	st, err := os.Stat(qf.out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes (%s), types: %s\n", qf.out, st.Size(), humanBytes(st.Size()), rep.TypeCounts())
	if a := rep.Allocation; a != nil {
		fmt.Fprintf(stdout, "allocation: budget %d bytes, used %d (fixed %d; %.4f bits per weight over the %d weights with a choice), minimum possible %d; total damage %.5g; %d measurements; solver step %d bytes (exact: %v)\n",
			a.Budget, a.Used, a.Fixed, 8*float64(a.Used-a.Fixed)/float64(max(a.ChoiceWeights, 1)), a.ChoiceWeights, a.Minimum, a.Cost, a.Measured, a.Granularity, a.Exact)
		printExpertWidths(stdout, a)
	}
	if qf.report != "" {
		f, err := os.Create(qf.report)
		if err != nil {
			return err
		}
		if err := rep.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote report %s\n", qf.report)
	}
	return nil
}

// printExpertWidths shows, for an MoE allocation, the type each expert got
// with its MC-MoE weight and routing frequency.
func printExpertWidths(w io.Writer, a *quant.AllocationSummary) {
	type pick struct {
		t      string
		weight float64
	}
	layers := map[int]map[int]pick{}
	for _, u := range a.Units {
		var l, e int
		if n, _ := fmt.Sscanf(u.Unit, "blk.%d.expert.%d", &l, &e); n != 2 || quant.ExpertKey(l, e) != u.Unit {
			continue
		}
		if layers[l] == nil {
			layers[l] = map[int]pick{}
		}
		layers[l][e] = pick{u.Type, u.Weight}
	}
	if len(layers) == 0 {
		return
	}
	freq := map[int][]float64{}
	for _, ls := range a.Experts {
		freq[ls.Layer] = ls.Frequency
	}
	fmt.Fprintln(w, "expert widths (type, MC-MoE weight on its damage, routing frequency):")
	ids := make([]int, 0, len(layers))
	for l := range layers {
		ids = append(ids, l)
	}
	sort.Ints(ids)
	for _, l := range ids {
		ps := layers[l]
		fmt.Fprintf(w, "  layer %d:", l)
		for e := range len(ps) {
			p, ok := ps[e]
			if !ok {
				continue
			}
			f := math.NaN()
			if e < len(freq[l]) {
				f = freq[l][e]
			}
			fmt.Fprintf(w, "  e%d %s (%.2f, %.2f)", e, p.t, p.weight, f)
		}
		fmt.Fprintln(w)
	}
}

// IsSQName reports whether a target is one of tamp's SQ types.
func IsSQName(tg quant.Target) bool { return quant.IsSQ(tg.Type) }

// allocate runs the budgeted allocation for runQuantize.
func allocate(cmd *cobra.Command, in string, src *gguf.File, qf *quantizeFlags, im *quant.Imatrix) (*quant.Plan, error) {
	stderr := cmd.ErrOrStderr()
	if qf.calib == "" {
		return nil, fmt.Errorf("quantize: --target-bpw/--target-size need a calibration text (--calib)")
	}
	raw, err := os.ReadFile(qf.calib)
	if err != nil {
		return nil, err
	}
	text, err := quant.TextPart(raw, qf.calibPart)
	if err != nil {
		return nil, err
	}
	e, err := engine.FromFile(in, src)
	if err != nil {
		return nil, err
	}
	tokens := e.Tok.Encode(string(text), true, false)
	var weights int64
	for _, t := range src.Tensors {
		weights += int64(t.Tensor().Elements())
	}
	budget := qf.targetSize
	target := fmt.Sprintf("size %d", budget)
	if qf.targetBPW > 0 {
		budget = int64(qf.targetBPW * float64(weights) / 8)
		target = fmt.Sprintf("bpw %g", qf.targetBPW)
	}
	opts := quant.AllocOptions{Budget: budget, Calibration: tokens, Ctx: qf.calibCtx, Chunks: qf.calibChunks, Imatrix: im}
	switch qf.bpwScope {
	case "all":
	case "choices":
		if qf.targetBPW <= 0 {
			return nil, fmt.Errorf("quantize: --bpw-scope choices needs --target-bpw")
		}
		opts.ChoiceBPW = qf.targetBPW
		target = fmt.Sprintf("bpw %g over the tensors with a choice", qf.targetBPW)
	default:
		return nil, fmt.Errorf("quantize: --bpw-scope is all or choices, not %q", qf.bpwScope)
	}
	if qf.candidates != "" {
		for _, name := range strings.Split(qf.candidates, ",") {
			t, ok := tensor.ParseType(strings.ToUpper(strings.TrimSpace(name)))
			if !ok || !quant.Writable(t) {
				return nil, fmt.Errorf("quantize: unknown or unwritable candidate type %q (writable: %s)", name, quant.WritableTypes())
			}
			opts.Candidates = append(opts.Candidates, t)
		}
	}
	if qf.minExperts != "" {
		opts.MinExpertCount = map[tensor.Type]int{}
		for _, kv := range strings.Split(qf.minExperts, ",") {
			name, n, ok := strings.Cut(kv, "=")
			t, tok := tensor.ParseType(strings.ToUpper(strings.TrimSpace(name)))
			cnt, err := strconv.Atoi(strings.TrimSpace(n))
			if !ok || !tok || err != nil || cnt < 0 {
				return nil, fmt.Errorf("quantize: --min-experts wants TYPE=N pairs, got %q", kv)
			}
			opts.MinExpertCount[t] = cnt
		}
	}
	if opts.ChoiceBPW > 0 {
		fmt.Fprintf(stderr, "allocating for %s; calibration %s (%s), %d tokens\n", target, qf.calib, qf.calibPart, len(tokens))
	} else {
		fmt.Fprintf(stderr, "allocating for %s: budget %d bytes of tensor data (%.4f bits per weight over %d weights); calibration %s (%s), %d tokens\n",
			target, budget, 8*float64(budget)/float64(weights), weights, qf.calib, qf.calibPart, len(tokens))
	}
	var bar *progress
	if !qf.quiet {
		opts.Progress = func(done, total int, _ string) {
			if bar == nil {
				bar = newProgress(stderr, total, "measuring damage")
			}
			bar.Set(done)
			if done == total {
				bar.Finish()
			}
		}
	}
	plan, err := quant.Allocate(cmd.Context(), src, opts)
	if err != nil {
		return nil, err
	}
	plan.Target = "allocated " + target
	return plan, nil
}

// actSplit calibrates the SQ static activation split on the base model,
// stores it in out and prints what activation quantization costs.
func actSplit(cmd *cobra.Command, in string, src, out *gguf.File, qf *quantizeFlags) error {
	if qf.calib == "" {
		return fmt.Errorf("quantize: --act-split needs a calibration text (--calib)")
	}
	raw, err := os.ReadFile(qf.calib)
	if err != nil {
		return err
	}
	text, err := quant.TextPart(raw, qf.calibPart)
	if err != nil {
		return err
	}
	base, err := engine.FromFile(in, src)
	if err != nil {
		return err
	}
	tokens := base.Tok.Encode(string(text), true, false)
	split, err := quant.CalibrateActSplit(cmd.Context(), base.Model, tokens, qf.calibCtx, qf.calibChunks, qf.actSplit)
	if err != nil {
		return err
	}
	split.Store(out)
	qm, err := engine.FromFile(qf.out, out)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "static activation split: %.3g of each input's channels in INT8, the rest INT4 (stored as %s*); mean KL divergence on %d calibration chunks of %d:\n",
		qf.actSplit, quant.KeyActSplit, qf.calibChunks, qf.calibCtx)
	for _, c := range []struct {
		name  string
		model *engine.Engine
		split *quant.ActSplit
	}{{"quantized weights", qm, nil}, {"activation split alone (original weights)", base, split}, {"quantized weights + activation split", qm, split}} {
		kld, err := quant.ActSplitKLD(base.Model, c.model.Model, c.split, tokens, qf.calibCtx, qf.calibChunks)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %-42s %.5f\n", c.name, kld)
	}
	return nil
}
