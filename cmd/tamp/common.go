package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"tamp/engine"
	"tamp/fetch"
	"tamp/kv"
	"tamp/sample"
)

// modelFlags are the flags every command that opens a model takes.
type modelFlags struct {
	model     string
	tokenizer string
}

func (m *modelFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&m.model, "model", "m", "", "model file (GGUF or llama2.c .bin), name, or pulled reference; default: first model found")
	cmd.Flags().StringVar(&m.tokenizer, "tokenizer", "", "llama2.c tokenizer .bin (only for llama2.c checkpoints)")
}

func (m *modelFlags) open(cmd *cobra.Command) (*engine.Engine, error) {
	path, err := resolveModel(cmd, m.model)
	if err != nil {
		return nil, err
	}
	if m.model == "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "using model %s\n", path)
	}
	return engine.Open(path, engine.Options{Tokenizer: m.tokenizer})
}

// samplingFlags map llama.cpp-style sampling options onto sample.Params.
type samplingFlags struct {
	p    sample.Params
	seed int64
}

func (s *samplingFlags) register(cmd *cobra.Command) {
	s.p = sample.DefaultParams()
	f := cmd.Flags()
	f.Float32Var(&s.p.Temperature, "temp", s.p.Temperature, "sampling temperature; 0 = greedy")
	f.IntVar(&s.p.TopK, "top-k", s.p.TopK, "keep the k most likely tokens; 0 = off")
	f.Float32Var(&s.p.TopP, "top-p", s.p.TopP, "keep the smallest set of tokens with this total probability; 1 = off")
	f.Float32Var(&s.p.MinP, "min-p", s.p.MinP, "drop tokens less likely than this fraction of the best one; 0 = off")
	f.Float32Var(&s.p.RepeatPenalty, "repeat-penalty", s.p.RepeatPenalty, "penalise recently seen tokens; 1 = off")
	f.IntVar(&s.p.RepeatLastN, "repeat-last-n", s.p.RepeatLastN, "how many recent tokens the repeat penalty looks at")
	f.Int64Var(&s.seed, "seed", -1, "random seed; the same seed gives the same text; -1 picks one and prints it")
}

// params returns the sampling parameters, choosing a seed when none was given.
func (s *samplingFlags) params() sample.Params {
	p := s.p
	if s.seed < 0 {
		p.Seed = uint64(time.Now().UnixNano())
	} else {
		p.Seed = uint64(s.seed)
	}
	return p
}

func kvStorageFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVar(dst, "kv-type", "f16", "KV cache element type: f16 or f32")
}

func parseKV(s string) (kv.Storage, error) { return kv.ParseStorage(s) }

// resolveModel finds a model file, downloading a hf: or http(s) reference
// into the models directory first if it is not there yet.
func resolveModel(cmd *cobra.Command, ref string) (string, error) {
	path, err := fetch.Resolve(ref)
	if err == nil || !isDownloadRef(ref) {
		return path, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "downloading %s into %s\n", ref, fetch.ModelsDir())
	return fetch.Pull(cmd.Context(), ref, fetch.PullOptions{Progress: cmd.ErrOrStderr()})
}

func isDownloadRef(ref string) bool {
	return strings.HasPrefix(ref, "hf:") || strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://")
}
