// Command tamp compresses language models and runs them: see `tamp --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "tamp: interrupted")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "tamp:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "tamp",
		Short: "tamp makes language models small and fast, and measures what that costs",
		Long: `tamp loads GGUF models and llama2.c checkpoints, compresses them, runs them
and measures what each compression saves (bytes, memory, speed) and costs
(perplexity, KL divergence to the uncompressed model).

A MODEL argument is a file path, a file name found in $TAMP_MODELS or
../shared/testdata, or a reference fetched earlier with 'tamp pull'.
Without one, tamp uses the first model it finds there.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newCompressCmd(), newRunCmd(), newInspectCmd(), newConvertCmd(), newLogitsCmd(), newEvalCmd(), newPullCmd(), newQuantizeCmd(), newImatrixCmd(), newServeCmd(), newSynthCmd(), newBenchCmd(), newKVCmd(), newSweepCmd())
	return root
}
