package main

import (
	"bufio"
	"fmt"

	"github.com/spf13/cobra"

	"tamp/engine"
)

func newRunCmd() *cobra.Command {
	var (
		mf       modelFlags
		sf       samplingFlags
		prompt   string
		n        int
		ctxLen   int
		kvType   string
		truncate bool
		kf       kvFlags
	)
	cmd := &cobra.Command{
		Use:   "run -m MODEL -p PROMPT",
		Short: "Generate text from a prompt, streaming it, then print speed and memory",
		Long: `Generate text from a prompt. Tokens are printed as they are produced; a
summary line on standard error then gives prompt and generation speed, KV-cache
size and peak memory.

A prompt longer than the context is an error unless --truncate is given, which
keeps BOS and the end of the prompt and says how many tokens it dropped.`,
		Example: `  tamp run -m stories260K.gguf -p "Once upon a time" -n 64 --temp 0
  tamp run -m stories260K.bin --tokenizer tok512.bin -p "Zoo" --seed 42`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			params := sf.params()
			overflow := engine.OverflowError
			if truncate {
				overflow = engine.OverflowTruncate
			}
			// Check the prompt against the context before printing anything.
			tokens, dropped, err := e.FitContext(e.Encode(prompt), e.ContextLen(ctxLen), overflow)
			if err != nil {
				return err
			}
			if dropped > 0 {
				prompt = e.Tok.Decode(tokens)
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			fmt.Fprint(out, prompt)
			st, err := e.GenerateTokens(cmd.Context(), tokens, engine.GenerateOptions{
				MaxTokens: n,
				Context:   ctxLen,
				KVStorage: storage,
				KV:        kvSpec,
				Sampling:  params,
				OnText: func(s string) error {
					if _, err := out.WriteString(s); err != nil {
						return err
					}
					return out.Flush()
				},
			})
			fmt.Fprintln(out)
			out.Flush()
			if err != nil {
				return err
			}
			st.Truncated = dropped
			w := cmd.ErrOrStderr()
			if st.Truncated > 0 {
				fmt.Fprintf(w, "note: prompt truncated: dropped its first %d tokens to fit the context\n", st.Truncated)
			}
			fmt.Fprintf(w, "prompt %d tok, %.1f tok/s | generated %d tok, %.1f tok/s (%s) | KV %s of %s | peak RSS %s | seed %d\n",
				st.PromptTokens, st.PromptTokensPerSecond(), st.GeneratedTokens, st.GenerateTokensPerSecond(), st.FinishReason,
				humanBytes(st.KVBytes), humanBytes(st.KVFullBytes), humanBytes(st.PeakRSS), params.Seed)
			return nil
		},
	}
	mf.register(cmd)
	sf.register(cmd)
	cmd.Flags().StringVarP(&prompt, "prompt", "p", "", "prompt text")
	cmd.Flags().IntVarP(&n, "n-predict", "n", 128, "tokens to generate; 0 = until the context is full")
	cmd.Flags().IntVar(&ctxLen, "ctx", 0, "context length in tokens; 0 = the model's")
	cmd.Flags().BoolVar(&truncate, "truncate", false, "drop the start of a prompt that does not fit the context instead of failing")
	kvStorageFlag(cmd, &kvType)
	kf.register(cmd)
	return cmd
}

// humanBytes prints a byte count in binary units.
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
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
