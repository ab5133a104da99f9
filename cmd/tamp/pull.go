package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"tamp/fetch"
)

func newPullCmd() *cobra.Command {
	var opts fetch.PullOptions
	cmd := &cobra.Command{
		Use:   "pull URL|hf:OWNER/REPO/FILE.gguf",
		Short: "Download a model into the models directory, resuming and verifying it",
		Long: `Download a model file into the models directory ($TAMP_MODELS, or the
default printed by 'tamp pull --help'). An interrupted download resumes where it
stopped; the size and sha256 are checked when the server states them or
--sha256/--size are given. Commands then find the file by its name.`,
		Example: `  tamp pull hf:ggml-org/models/tinyllamas/stories260K.gguf
  tamp pull https://example.org/model.gguf --sha256 270cba1b...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Progress = cmd.ErrOrStderr()
			path, err := fetch.Pull(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "download into this directory instead of the models directory ("+fetch.ModelsDir()+")")
	cmd.Flags().StringVar(&opts.SHA256, "sha256", "", "expected sha256 of the file (hex)")
	cmd.Flags().Int64Var(&opts.Size, "size", 0, "expected size of the file in bytes")
	return cmd
}
