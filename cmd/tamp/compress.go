package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"tamp/engine"
	"tamp/eval"
	"tamp/fetch"
	"tamp/gguf"
	"tamp/kv"
	"tamp/model"
	"tamp/quant"
	"tamp/sample"
	"tamp/tensor"
)

// compressFlags are the options of tamp's main job.
type compressFlags struct {
	mf       modelFlags
	typeName string
	prompt   string
	n        int
	textPath string
	ctxLen   int
	chunks   int
	out      string
}

func newCompressCmd() *cobra.Command {
	var cf compressFlags
	cmd := &cobra.Command{
		Use:   "compress [-m MODEL] [--type Q4_0]",
		Short: "Compress a model, run it beside the original, and show what that saved and cost",
		Long: `tamp's main job in one command: compress a model's weights, run the same
prompt through the original and the compressed model, and measure what the
compression saved (bytes, bits per weight, speed) and cost (perplexity and KL
divergence to the original on an evaluation text, agreement on the most likely
token). With -o the compressed model is also written as GGUF.

Without -m the first model found is used (see 'tamp --help'); without -f the
evaluation text tinystories-sample.txt is looked up in the same places.`,
		Example: `  tamp compress
  tamp compress -m stories260K.gguf --type Q8_0 -p "Once upon a time" -o stories-q8.gguf`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCompress(cmd, &cf) },
	}
	cf.mf.register(cmd)
	cmd.Flags().StringVar(&cf.typeName, "type", "Q4_0", "tensor type for the weight matrices ("+quant.WritableTypes()+")")
	cmd.Flags().StringVarP(&cf.prompt, "prompt", "p", "Once upon a time", "prompt both models continue (greedy)")
	cmd.Flags().IntVarP(&cf.n, "n-predict", "n", 48, "tokens to generate")
	cmd.Flags().StringVarP(&cf.textPath, "file", "f", "", "evaluation text (default: tinystories-sample.txt where models are found)")
	cmd.Flags().IntVar(&cf.ctxLen, "ctx", 128, "evaluation context (tokens per chunk)")
	cmd.Flags().IntVar(&cf.chunks, "chunks", 100, "evaluation chunks; 0 = the whole text")
	cmd.Flags().StringVarP(&cf.out, "output", "o", "", "also write the compressed model to this GGUF file")
	return cmd
}

// side is one model of the comparison and what was measured on it.
type side struct {
	name     string
	e        *engine.Engine
	bytes    int64
	bpw      float64
	text     string
	st       engine.Stats
	res      *eval.Result
	evalTime time.Duration
}

func runCompress(cmd *cobra.Command, cf *compressFlags) error {
	ctx := cmd.Context()
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	typ, ok := tensor.ParseType(cf.typeName)
	if !ok || !quant.Writable(typ) {
		return fmt.Errorf("compress: unknown or unwritable type %q (writable: %s)", cf.typeName, quant.WritableTypes())
	}
	base, err := cf.mf.open(cmd)
	if err != nil {
		return err
	}
	defer base.Close()
	textPath := cf.textPath
	if textPath == "" {
		if textPath, err = fetch.Resolve("tinystories-sample.txt"); err != nil {
			return fmt.Errorf("compress: no evaluation text given (-f) and tinystories-sample.txt not found: %w", err)
		}
	}
	text, err := os.ReadFile(textPath)
	if err != nil {
		return err
	}

	fmt.Fprintf(stderr, "compressing %s to %s\n", base.Path, typ)
	bar := newProgress(stderr, len(base.File.Tensors), "quantizing")
	qf, rep, err := quant.Quantize(base.File, quant.Options{Type: typ, Progress: func(done, _ int, _ string) { bar.Set(done) }})
	if err != nil {
		return err
	}
	bar.Finish()
	if cf.out != "" {
		if err := gguf.WriteFile(cf.out, qf); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", cf.out)
	}
	small, err := engine.FromFile(base.Path+" ("+typ.String()+")", qf)
	if err != nil {
		return err
	}

	orig := &side{name: "original", e: base, bytes: base.Model.WeightBytes()}
	comp := &side{name: typ.String(), e: small, bytes: small.Model.WeightBytes()}
	weights := int64(0)
	for _, r := range rep.Tensors {
		weights += int64(r.Elements)
	}
	orig.bpw = float64(orig.bytes*8) / float64(weights)
	comp.bpw = float64(comp.bytes*8) / float64(weights)

	for _, s := range []*side{orig, comp} {
		if err := s.generate(ctx, cf); err != nil {
			return err
		}
	}

	tokens := base.Tok.Encode(string(text), true, false)
	var baseLogprobs bytes.Buffer
	for i, s := range []*side{orig, comp} {
		opts := eval.Options{Ctx: cf.ctxLen, BOS: base.Tok.BOS(), AddBOS: base.Tok.AddBOS(), MaxChunks: cf.chunks}
		if i == 0 {
			opts.SaveBase = &baseLogprobs
		} else {
			b, err := eval.ReadBase(&baseLogprobs)
			if err != nil {
				return err
			}
			opts.Base = b
		}
		if err := s.evaluate(ctx, stderr, tokens, opts); err != nil {
			return err
		}
	}
	report(stdout, cf, textPath, rep, orig, comp)
	return nil
}

func (s *side) generate(ctx context.Context, cf *compressFlags) error {
	var sb strings.Builder
	p := sample.DefaultParams()
	p.Temperature = 0
	st, err := s.e.Generate(ctx, cf.prompt, engine.GenerateOptions{
		MaxTokens: cf.n, KVStorage: kv.F16, Sampling: p,
		OnText: func(t string) error { sb.WriteString(t); return nil },
	})
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.text, s.st = cf.prompt+sb.String(), st
	return nil
}

func (s *side) evaluate(ctx context.Context, stderr io.Writer, tokens []int32, opts eval.Options) error {
	scorer, err := s.e.Model.NewScorer(model.SessionOptions{Context: opts.Ctx})
	if err != nil {
		return err
	}
	var bar *progress
	opts.Progress = func(done, total int) {
		if bar == nil {
			bar = newProgress(stderr, total, "evaluating "+s.name)
		}
		bar.Set(done)
	}
	start := time.Now()
	s.res, err = eval.Perplexity(ctx, scorer, tokens, opts)
	s.evalTime = time.Since(start)
	if bar != nil {
		bar.Finish()
	}
	return err
}

func report(w io.Writer, cf *compressFlags, textPath string, rep *quant.Report, orig, comp *side) {
	fmt.Fprintf(w, "\nPrompt %q, greedy, %d tokens:\n", cf.prompt, cf.n)
	fmt.Fprintf(w, "  original: %s\n  %-8s: %s\n", oneLine(orig.text), comp.name, oneLine(comp.text))

	fmt.Fprintf(w, "\nTensor types in the compressed model:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rep.Tensors {
		if r.Note != "" {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.Name, r.To, r.Note)
		}
	}
	tw.Flush()
	counts := map[tensor.Type]int{}
	for _, r := range rep.Tensors {
		counts[r.To]++
	}
	var parts []string
	for t, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, t))
	}
	fmt.Fprintf(w, "  in all: %s\n", strings.Join(parts, ", "))

	r := comp.res
	fmt.Fprintf(w, "\nQuality on %s (%d chunks of %d tokens, %d tokens scored):\n", textPath, r.Chunks, cf.ctxLen, r.Tokens)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tweights\tbits/weight\tperplexity\tmean KLD\t99% KLD\tsame top\tprompt tok/s\tgen tok/s\t")
	for _, s := range []*side{orig, comp} {
		kld, p99, same := "-", "-", "-"
		if s.res.KLD != nil {
			kld = fmt.Sprintf("%.5f", s.res.KLD.Mean)
			p99 = fmt.Sprintf("%.5f", s.res.KLD.P99)
			same = fmt.Sprintf("%.2f%%", 100*s.res.KLD.SameTop)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.4f ± %.4f\t%s\t%s\t%s\t%.0f\t%.0f\t\n", s.name, humanBytes(s.bytes), s.bpw,
			s.res.PPL, s.res.PPLErr, kld, p99, same, s.st.PromptTokensPerSecond(), s.st.GenerateTokensPerSecond())
	}
	tw.Flush()
	saved := 1 - float64(comp.bytes)/float64(orig.bytes)
	fmt.Fprintf(w, "\nSaved %s of %s weight bytes (%.1f%%); cost %+.2f%% perplexity, mean KL divergence %.5f, same top token %.2f%%.\n",
		humanBytes(orig.bytes-comp.bytes), humanBytes(orig.bytes), 100*saved,
		100*(comp.res.PPL/orig.res.PPL-1), r.KLD.Mean, 100*r.KLD.SameTop)
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "⏎") }
