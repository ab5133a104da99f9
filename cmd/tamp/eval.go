package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"tamp/eval"
	"tamp/kv/kveval"
	"tamp/model"
	"tamp/quant"
)

func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Measure what a model (and its compression) costs in quality",
	}
	cmd.AddCommand(newEvalPPLCmd(), newEvalKVCmd())
	return cmd
}

func newEvalPPLCmd() *cobra.Command {
	var (
		mf       modelFlags
		textPath string
		part     string
		ctxLen   int
		chunks   int
		saveBase string
		kldBase  string
		kvType   string
		quiet    bool
		kf       kvFlags
	)
	cmd := &cobra.Command{
		Use:   "ppl -m MODEL -f TEXT --ctx N",
		Short: "Perplexity and KL divergence with llama.cpp's conventions",
		Long: `Perplexity as llama.cpp's llama-perplexity computes it: the text is
tokenized with BOS first and cut into non-overlapping chunks of --ctx tokens;
each chunk starts with BOS and only its second half is scored, so figures
compare directly with llama.cpp's.

KL divergence: run the reference model once with --save-kld-base FILE to store
its log-probabilities, then run any other model (a compressed one) with
--kld-base FILE to get mean and 99th-percentile KL divergence and the rate at
which both models agree on the most likely token.

--kv POLICY --kv-budget N (and --kv-bits, --kv-table) compress the KV cache
while each chunk is evaluated, the way a deployed model meets it: the chunk's
first half is prefilled in one call, after which the policy compresses the
cache, and every later token is one decoding step, so each scored position of
the second half is predicted from the compressed cache (a whole-chunk prefill
would score the positions before a prefill-time policy ever acted). Without
--kv/--kv-bits chunks are prefilled whole, as llama.cpp does. Compare with
--kld-base from the full cache; the step-by-step full cache differs from the
batched one only by floating-point rounding. The KV cache's mean and peak
bytes are printed against an uncompressed cache's. 'tamp eval kv' compares
many policies and budgets at once.`,
		Example: `  tamp eval ppl -m stories260K.gguf -f tinystories-sample.txt --ctx 128 --save-kld-base base.kld
  tamp eval ppl -m stories260K-Q4_0-mixed.gguf -f tinystories-sample.txt --ctx 128 --kld-base base.kld`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if textPath == "" {
				return fmt.Errorf("eval ppl: -f TEXT is required")
			}
			raw, err := os.ReadFile(textPath)
			if err != nil {
				return err
			}
			// One half of the text can evaluate what the other calibrated
			// (imatrix --part, quantize --calib-part).
			text, err := quant.TextPart(raw, part)
			if err != nil {
				return err
			}
			e, err := mf.open(cmd)
			if err != nil {
				return err
			}
			defer e.Close()
			storage, err := parseKV(kvType)
			if err != nil {
				return err
			}
			kvSpec, err := kf.spec()
			if err != nil {
				return err
			}
			opts := eval.Options{Ctx: ctxLen, BOS: e.Tok.BOS(), AddBOS: e.Tok.AddBOS(), MaxChunks: chunks}
			if kldBase != "" {
				f, err := os.Open(kldBase)
				if err != nil {
					return err
				}
				// The base reads its rows from f as the evaluation goes, so f
				// stays open until the command returns.
				defer f.Close()
				base, err := eval.ReadBase(f)
				if err != nil {
					return fmt.Errorf("reading %s: %w", kldBase, err)
				}
				opts.Base = base
			}
			var tmp *os.File
			if saveBase != "" {
				// Written beside its destination and renamed at the end, so an
				// interrupted run never leaves a partial base under that name.
				if tmp, err = os.CreateTemp(filepath.Dir(saveBase), ".kld-*"); err != nil {
					return err
				}
				defer os.Remove(tmp.Name())
				defer tmp.Close()
				opts.SaveBase = tmp
			}
			tokens := e.Tok.Encode(string(text), true, false)
			var (
				scorer eval.Scorer
				steps  *kveval.StepScorer
			)
			sessOpts := model.SessionOptions{Context: ctxLen, KVStorage: storage, KV: kvSpec}
			if kvSpec.IsFull() {
				scorer, err = e.Model.NewScorer(sessOpts)
			} else {
				steps, err = kveval.NewStepScorer(e.Model, sessOpts)
				scorer = steps
			}
			if err != nil {
				return err
			}
			if !quiet {
				var bar *progress
				opts.Progress = func(done, total int) {
					if bar == nil {
						bar = newProgress(cmd.ErrOrStderr(), total, "chunks")
					}
					bar.Set(done)
					if done == total {
						bar.Finish()
					}
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s (%s): %d tokens, ctx %d\n", textPath, part, len(tokens), ctxLen)
			res, err := eval.Perplexity(cmd.Context(), scorer, tokens, opts)
			if err != nil {
				return err
			}
			if tmp != nil {
				if err := tmp.Close(); err != nil {
					return err
				}
				if err := os.Rename(tmp.Name(), saveBase); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "saved KL-divergence base to %s\n", saveBase)
			}
			res.Format(cmd.OutOrStdout())
			if steps != nil {
				st := steps.Stats()
				fmt.Fprintf(cmd.OutOrStdout(), "KV cache (%s): %s at the end of a chunk, %.1f%% of the full cache's %s; peak %s\n",
					kvSpec, humanBytes(st.MeanBytes), 100*float64(st.MeanBytes)/float64(max(st.FullBytes, 1)), humanBytes(st.FullBytes), humanBytes(st.PeakBytes))
			}
			return nil
		},
	}
	mf.register(cmd)
	cmd.Flags().StringVarP(&textPath, "file", "f", "", "text file to evaluate on")
	cmd.Flags().StringVar(&part, "part", "all", "part of the text to evaluate on: all, first or second half (cut as imatrix --part and quantize --calib-part cut it)")
	cmd.Flags().IntVar(&ctxLen, "ctx", 512, "tokens per chunk")
	cmd.Flags().IntVar(&chunks, "chunks", 0, "evaluate at most this many chunks; 0 = all")
	cmd.Flags().StringVar(&saveBase, "save-kld-base", "", "store this model's log-probabilities in FILE as a KL-divergence base")
	cmd.Flags().StringVar(&kldBase, "kld-base", "", "compare against the base stored in FILE (KL divergence, same top token)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	kvStorageFlag(cmd, &kvType)
	kf.register(cmd)
	return cmd
}
