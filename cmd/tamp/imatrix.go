package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"tamp/quant"
)

func newImatrixCmd() *cobra.Command {
	var (
		mf            modelFlags
		textPath      string
		part          string
		out           string
		ctxLen        int
		chunks        int
		processOutput bool
		show          bool
		quiet         bool
	)
	cmd := &cobra.Command{
		Use:   "imatrix -m MODEL -f CALIB.txt -o FILE",
		Short: "Collect an importance matrix (mean squared input activation per weight column) for quantize --imatrix",
		Long: `Run the model over a calibration text and record, for every weight matrix,
the mean squared input activation of each column: the importance matrix that
'tamp quantize --imatrix' uses to weight quantization error, as llama.cpp's
llama-imatrix and llama-quantize --imatrix do.

The text is tokenized with BOS first and cut into chunks of --ctx tokens, each
evaluated from an empty context with BOS first. The file is llama.cpp's GGUF
imatrix format (tensors NAME.in_sum2 and NAME.counts), so llama-quantize reads
it too; 'tamp quantize' also reads llama.cpp's legacy .dat files.

--part first|second uses one half of the text (cut by bytes at the first line
break at or after the middle), so the other half can evaluate the result.
The output matrix is skipped unless --process-output is given, as in
llama-imatrix.`,
		Example: `  tamp imatrix -m stories260K.gguf -f tinystories-sample.txt --part first --ctx 128 -o stories.imatrix.gguf`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if textPath == "" || out == "" {
				return fmt.Errorf("imatrix: -f CALIB.txt and -o FILE are required")
			}
			raw, err := os.ReadFile(textPath)
			if err != nil {
				return err
			}
			text, err := quant.TextPart(raw, part)
			if err != nil {
				return err
			}
			e, err := mf.open(cmd)
			if err != nil {
				return err
			}
			defer e.Close()
			tokens := e.Tok.Encode(string(text), true, false)
			stderr := cmd.ErrOrStderr()
			fmt.Fprintf(stderr, "%s (%s): %d bytes, %d tokens, chunks of %d\n", textPath, part, len(text), len(tokens), ctxLen)
			var bar *progress
			opts := quant.CollectOptions{Ctx: ctxLen, Chunks: chunks, BOS: e.Tok.BOS(), AddBOS: e.Tok.AddBOS(),
				ProcessOutput: processOutput, Dataset: filepath.Base(textPath)}
			if !quiet {
				opts.Progress = func(done, total int) {
					if bar == nil {
						bar = newProgress(stderr, total, "imatrix chunks")
					}
					bar.Set(done)
					if done == total {
						bar.Finish()
					}
				}
			}
			m, err := quant.CollectImatrix(cmd.Context(), e.Model, tokens, opts)
			if err != nil {
				return err
			}
			if err := quant.WriteImatrix(out, m); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d entries from %d chunks of %d tokens\n", out, len(m.Entries), m.Chunks, m.ChunkSize)
			if show {
				printImatrixStats(cmd, m)
			}
			return nil
		},
	}
	mf.register(cmd)
	cmd.Flags().StringVarP(&textPath, "file", "f", "", "calibration text")
	cmd.Flags().StringVar(&part, "part", "all", "part of the text to use: all, first or second half")
	cmd.Flags().StringVarP(&out, "output", "o", "", "imatrix file to write (GGUF)")
	cmd.Flags().IntVar(&ctxLen, "ctx", 512, "tokens per chunk")
	cmd.Flags().IntVar(&chunks, "chunks", 0, "evaluate at most this many chunks; 0 = all")
	cmd.Flags().BoolVar(&processOutput, "process-output", false, "also collect output.weight")
	cmd.Flags().BoolVar(&show, "show", false, "print per-tensor statistics")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

func printImatrixStats(cmd *cobra.Command, m *quant.Imatrix) {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TENSOR\tMATRICES\tCOLUMNS\tROWS SEEN\tMEAN\tMAX\tCV\tTOP 1% SHARE\t")
	for _, s := range m.Stats() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.4g\t%.4g\t%.3f\t%.1f%%\t\n", s.Name, s.Matrices, s.Cols, s.Count, s.Mean, s.Max, s.CV, 100*s.TopShare)
	}
	tw.Flush()
}
