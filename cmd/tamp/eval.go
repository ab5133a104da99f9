package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"tamp/eval"
	"tamp/model"
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

--kv and its flags compress the KV cache while each chunk is evaluated. A
chunk is one prefill, so only policies that evict during the prefill
(streaming, chunked) and KV quantization (--kv-bits) change the figures;
'tamp eval kv' measures compression between a prefill and decoding.`,
		Example: `  tamp eval ppl -m stories260K.gguf -f tinystories-sample.txt --ctx 128 --save-kld-base base.kld
  tamp eval ppl -m stories260K-Q4_0-mixed.gguf -f tinystories-sample.txt --ctx 128 --kld-base base.kld`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if textPath == "" {
				return fmt.Errorf("eval ppl: -f TEXT is required")
			}
			text, err := os.ReadFile(textPath)
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
			scorer, err := e.Model.NewScorer(model.SessionOptions{Context: ctxLen, KVStorage: storage, KV: kvSpec})
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
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d tokens, ctx %d\n", textPath, len(tokens), ctxLen)
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
			return nil
		},
	}
	mf.register(cmd)
	cmd.Flags().StringVarP(&textPath, "file", "f", "", "text file to evaluate on")
	cmd.Flags().IntVar(&ctxLen, "ctx", 512, "tokens per chunk")
	cmd.Flags().IntVar(&chunks, "chunks", 0, "evaluate at most this many chunks; 0 = all")
	cmd.Flags().StringVar(&saveBase, "save-kld-base", "", "store this model's log-probabilities in FILE as a KL-divergence base")
	cmd.Flags().StringVar(&kldBase, "kld-base", "", "compare against the base stored in FILE (KL divergence, same top token)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	kvStorageFlag(cmd, &kvType)
	kf.register(cmd)
	return cmd
}
