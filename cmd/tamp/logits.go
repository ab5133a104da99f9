package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"tamp/model"
)

// logitsReport has the layout of the golden files in shared/testdata/golden, so
// any model can be compared with a reference engine's output.
type logitsReport struct {
	Model  string      `json:"model"`
	NVocab int         `json:"n_vocab"`
	Tokens []int32     `json:"tokens"`
	Logits [][]float32 `json:"logits"`
	Greedy []int32     `json:"greedy"`
}

func newLogitsCmd() *cobra.Command {
	var (
		mf     modelFlags
		prompt string
		greedy int
		kvType string
	)
	cmd := &cobra.Command{
		Use:   "logits -m MODEL -p PROMPT [--greedy N]",
		Short: "Print the logits of every prompt position and a greedy continuation as JSON",
		Long: `Evaluate a prompt (BOS first when the vocabulary adds it) in one batch and
print JSON: model, n_vocab, tokens, one row of logits per position, and the
argmax continuation of --greedy N tokens, each fed back one at a time. The
layout matches the golden files, so outputs of tamp and a reference engine can
be compared number by number.`,
		Example: `  tamp logits -m stories260K.gguf -p "Once upon a time" --greedy 16 > out.json`,
		Args:    cobra.NoArgs,
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
			tokens := e.Encode(prompt)
			sess, err := e.Model.NewSession(model.SessionOptions{Context: len(tokens) + greedy, KVStorage: storage})
			if err != nil {
				return err
			}
			logits, err := sess.Forward(tokens, true)
			if err != nil {
				return err
			}
			v := e.Model.Vocab
			rep := logitsReport{Model: filepath.Base(e.Path), NVocab: v, Tokens: tokens, Greedy: []int32{}}
			for i := range tokens {
				rep.Logits = append(rep.Logits, append([]float32(nil), logits[i*v:(i+1)*v]...))
			}
			last := rep.Logits[len(tokens)-1]
			for range greedy {
				next := argmax(last)
				rep.Greedy = append(rep.Greedy, next)
				if last, err = sess.Forward([]int32{next}, false); err != nil {
					return fmt.Errorf("greedy step %d: %w", len(rep.Greedy), err)
				}
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(rep)
		},
	}
	mf.register(cmd)
	cmd.Flags().StringVarP(&prompt, "prompt", "p", "", "prompt text")
	cmd.Flags().IntVar(&greedy, "greedy", 0, "greedy tokens to generate after the prompt")
	kvStorageFlag(cmd, &kvType)
	return cmd
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}
