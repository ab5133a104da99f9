// Package model runs decoder-only transformer language models loaded from GGUF.
//
// Each architecture lives in a file of its own (llama.go, qwen2.go) that reads
// its hyperparameters, binds its weights by GGUF tensor name through struct
// tags and registers itself in init. They share one forward pass (forward.go)
// whose variations (biases, RoPE layout, mixture-of-experts feed-forward) are
// properties of the loaded weights, not branches on the architecture's name.
package model

import (
	"fmt"
	"sort"
	"strings"

	"tamp/gguf"
	"tamp/kv"
	"tamp/tensor"
)

// Loader builds a model from a GGUF file's metadata and tensors.
type Loader func(f *gguf.File) (*Model, error)

var loaders = map[string]Loader{}

// Register makes an architecture loadable under its general.architecture name.
func Register(arch string, l Loader) {
	if _, dup := loaders[arch]; dup {
		panic("model: architecture registered twice: " + arch)
	}
	loaders[arch] = l
}

// Architectures lists the supported general.architecture values.
func Architectures() []string {
	names := make([]string, 0, len(loaders))
	for n := range loaders {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Load builds the model a GGUF file describes. Tensor data stays where the file
// put it (memory-mapped), so f must stay open while the model is used.
func Load(f *gguf.File) (*Model, error) {
	arch := f.Architecture()
	if arch == "" {
		return nil, fmt.Errorf("model: the file has no general.architecture; supported: %s", strings.Join(Architectures(), ", "))
	}
	l, ok := loaders[arch]
	if !ok {
		return nil, fmt.Errorf("model: architecture %q is not supported; supported: %s", arch, strings.Join(Architectures(), ", "))
	}
	m, err := l(f)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", arch, err)
	}
	return m, nil
}

// RopeStyle says which elements of a head RoPE rotates together.
type RopeStyle int

const (
	// RopeNormal rotates adjacent pairs (2i, 2i+1), as Llama does.
	RopeNormal RopeStyle = iota
	// RopeNeoX rotates (i, i+n/2), as GPT-NeoX and Qwen2 do.
	RopeNeoX
)

// Config holds a model's hyperparameters.
type Config struct {
	Arch        string
	Dim         int // embedding width
	Layers      int
	Heads       int
	KVHeads     int
	HeadDim     int
	FFN         int // feed-forward width (per expert for MoE)
	Vocab       int
	ContextLen  int // trained context length
	RMSEps      float32
	RopeBase    float32
	RopeDim     int // leading elements of each head that RoPE rotates
	RopeStyle   RopeStyle
	RopeScale   float32 // linear position scale (1 = none)
	Experts     int     // 0 for a dense feed-forward
	ExpertsUsed int
}

// Model is a loaded transformer: its configuration and bound weights.
type Model struct {
	Config
	TokenEmbd  *tensor.Tensor
	OutputNorm *tensor.Tensor
	Output     *tensor.Tensor
	Blocks     []Layer
	// ropeFreqs divides each rotation frequency (llama3-style scaling); nil for none.
	ropeFreqs []float32
}

// Layer is one transformer block's weights. Optional tensors are nil when the
// architecture has none (biases) or the layer is dense (experts).
type Layer struct {
	AttnNorm *tensor.Tensor `gguf:"attn_norm.weight"`
	Wq       *tensor.Tensor `gguf:"attn_q.weight"`
	Wk       *tensor.Tensor `gguf:"attn_k.weight"`
	Wv       *tensor.Tensor `gguf:"attn_v.weight"`
	Wo       *tensor.Tensor `gguf:"attn_output.weight"`
	Bq       *tensor.Tensor `gguf:"attn_q.bias,optional"`
	Bk       *tensor.Tensor `gguf:"attn_k.bias,optional"`
	Bv       *tensor.Tensor `gguf:"attn_v.bias,optional"`
	Bo       *tensor.Tensor `gguf:"attn_output.bias,optional"`
	FFNNorm  *tensor.Tensor `gguf:"ffn_norm.weight"`

	// Dense feed-forward (SwiGLU).
	FFNGate *tensor.Tensor `gguf:"ffn_gate.weight,optional"`
	FFNUp   *tensor.Tensor `gguf:"ffn_up.weight,optional"`
	FFNDown *tensor.Tensor `gguf:"ffn_down.weight,optional"`

	// Mixture of experts: a router and stacked expert matrices [in, out,
	// expert]. A stacked field is nil when the file stores that kind per
	// expert (blk.N.ffn_gate.E.weight …); Expert returns each expert's
	// matrices in either layout.
	FFNRouter   *tensor.Tensor `gguf:"ffn_gate_inp.weight,optional"`
	FFNGateExps *tensor.Tensor `gguf:"ffn_gate_exps.weight,optional"`
	FFNUpExps   *tensor.Tensor `gguf:"ffn_up_exps.weight,optional"`
	FFNDownExps *tensor.Tensor `gguf:"ffn_down_exps.weight,optional"`
	experts     []expert
}

type expert struct{ gate, up, down *tensor.Tensor }

// KVCacheBytes is the size of a full cache of n tokens in the given storage.
func (m *Model) KVCacheBytes(n int, s kv.Storage) int64 {
	return kv.New(m.Layers, m.KVHeads, m.HeadDim, n, s).FullBytes(n)
}

// WeightBytes is the stored size of all tensors the model uses.
func (m *Model) WeightBytes() int64 {
	seen := map[*tensor.Tensor]bool{}
	var n int64
	add := func(t *tensor.Tensor) {
		if t != nil && !seen[t] {
			seen[t] = true
			n += int64(len(t.Data))
		}
	}
	add(m.TokenEmbd)
	add(m.OutputNorm)
	if m.Output != m.TokenEmbd {
		add(m.Output)
	}
	for i := range m.Blocks {
		l := &m.Blocks[i]
		for _, t := range []*tensor.Tensor{l.AttnNorm, l.Wq, l.Wk, l.Wv, l.Wo, l.Bq, l.Bk, l.Bv, l.Bo, l.FFNNorm,
			l.FFNGate, l.FFNUp, l.FFNDown, l.FFNRouter, l.FFNGateExps, l.FFNUpExps, l.FFNDownExps} {
			add(t)
		}
		// Views of a stacked tensor count as the stacked tensor (already
		// added); per-expert tensors count themselves.
		for _, e := range l.experts {
			for _, t := range []*tensor.Tensor{e.gate, e.up, e.down} {
				if t != nil && t.Parent != nil {
					t = t.Parent
				}
				add(t)
			}
		}
	}
	return n
}
