package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"tamp/gguf"
	"tamp/llama2c"
)

func newConvertCmd() *cobra.Command {
	var tok, out string
	cmd := &cobra.Command{
		Use:   "convert IN.bin --tokenizer TOK.bin -o OUT.gguf",
		Short: "Convert a llama2.c checkpoint (float32 or int8 'ak42' export) to GGUF",
		Long: `Convert a llama2.c checkpoint and its tokenizer into a GGUF file with
llama.cpp's tensor names and metadata keys, so both tamp and llama.cpp load it.
int8 exports are dequantized to F32 (their groups span rows and carry float32
scales, which no GGUF type stores exactly). The output is written atomically.`,
		Example: `  tamp convert stories260K.bin --tokenizer tok512.bin -o stories260K.gguf`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("convert: -o OUT.gguf is required")
			}
			f, err := llama2c.Load(args[0], tok)
			if err != nil {
				return err
			}
			if err := gguf.WriteFile(out, f); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d tensors, %d metadata keys\n", out, len(f.Tensors), len(f.KV))
			return nil
		},
	}
	cmd.Flags().StringVar(&tok, "tokenizer", "", "llama2.c tokenizer .bin (default: tokenizer.bin or tokN.bin beside the checkpoint)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "output GGUF path")
	return cmd
}
