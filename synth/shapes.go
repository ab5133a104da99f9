package synth

import (
	"fmt"
	"sort"
	"strings"
)

// Shape is a model's architecture and hyperparameters: everything about it
// except the values of its weights.
type Shape struct {
	// Name identifies the shape in tamp synth --shape and in the file's
	// general.name.
	Name string
	// Arch is the GGUF architecture: "llama" (RoPE on adjacent pairs, no
	// biases) or "qwen2" (NeoX RoPE, biases on the query, key and value
	// projections).
	Arch    string
	Dim     int // embedding width
	Layers  int
	Heads   int
	KVHeads int
	FFN     int // feed-forward width
	Vocab   int
	Context int // trained context length written to the file
	// RopeBase and RMSEps are the rotary base frequency and the RMSNorm
	// epsilon.
	RopeBase float32
	RMSEps   float32
	// Tied models have no output.weight: the output projection reuses
	// token_embd.weight, as Qwen2-0.5B's does.
	Tied bool
}

// The shapes of real models, from their published configurations.
// llama-350m is not a published model: it is a Llama-2-style shape of about
// 350M parameters, between the stories models and TinyLlama, for
// benchmarks of a mid-sized model.
var shapes = []Shape{
	{Name: "stories260k", Arch: "llama", Dim: 64, Layers: 5, Heads: 8, KVHeads: 4, FFN: 172, Vocab: 512, Context: 512, RopeBase: 10000, RMSEps: 1e-5},
	{Name: "stories15m", Arch: "llama", Dim: 288, Layers: 6, Heads: 6, KVHeads: 6, FFN: 768, Vocab: 32000, Context: 256, RopeBase: 10000, RMSEps: 1e-5},
	{Name: "stories42m", Arch: "llama", Dim: 512, Layers: 8, Heads: 8, KVHeads: 8, FFN: 1376, Vocab: 32000, Context: 1024, RopeBase: 10000, RMSEps: 1e-5},
	{Name: "stories110m", Arch: "llama", Dim: 768, Layers: 12, Heads: 12, KVHeads: 12, FFN: 2048, Vocab: 32000, Context: 1024, RopeBase: 10000, RMSEps: 1e-5},
	{Name: "llama-350m", Arch: "llama", Dim: 1024, Layers: 24, Heads: 16, KVHeads: 16, FFN: 2816, Vocab: 32000, Context: 2048, RopeBase: 10000, RMSEps: 1e-5},
	{Name: "qwen2-0.5b", Arch: "qwen2", Dim: 896, Layers: 24, Heads: 14, KVHeads: 2, FFN: 4864, Vocab: 151936, Context: 32768, RopeBase: 1e6, RMSEps: 1e-6, Tied: true},
	{Name: "tinyllama-1.1b", Arch: "llama", Dim: 2048, Layers: 22, Heads: 32, KVHeads: 4, FFN: 5632, Vocab: 32000, Context: 2048, RopeBase: 10000, RMSEps: 1e-5},
	{Name: "qwen2-1.5b", Arch: "qwen2", Dim: 1536, Layers: 28, Heads: 12, KVHeads: 2, FFN: 8960, Vocab: 151936, Context: 32768, RopeBase: 1e6, RMSEps: 1e-6, Tied: true},
	{Name: "llama2-7b", Arch: "llama", Dim: 4096, Layers: 32, Heads: 32, KVHeads: 32, FFN: 11008, Vocab: 32000, Context: 4096, RopeBase: 10000, RMSEps: 1e-5},
	{Name: "llama3-8b", Arch: "llama", Dim: 4096, Layers: 32, Heads: 32, KVHeads: 8, FFN: 14336, Vocab: 128256, Context: 8192, RopeBase: 500000, RMSEps: 1e-5},
}

// Shapes lists the built-in shapes, smallest first.
func Shapes() []Shape {
	out := append([]Shape(nil), shapes...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Params() < out[j].Params() })
	return out
}

// ShapeNames lists the built-in shapes' names, smallest first.
func ShapeNames() []string {
	var names []string
	for _, s := range Shapes() {
		names = append(names, s.Name)
	}
	return names
}

// LookupShape returns the built-in shape of that name (case-insensitive).
func LookupShape(name string) (Shape, error) {
	for _, s := range shapes {
		if strings.EqualFold(s.Name, name) {
			return s, nil
		}
	}
	return Shape{}, fmt.Errorf("synth: unknown shape %q (known: %s)", name, strings.Join(ShapeNames(), ", "))
}

// minVocab is the smallest vocabulary the synthetic tokenizer fits in: the
// three special tokens, the 256 byte tokens and one piece.
const minVocab = 3 + 256 + 1

// maxDim bounds every size so that no product of them overflows and no
// absurd request starts writing terabytes.
const maxDim = 1 << 20

// Validate reports the first problem that would stop tamp (or llama.cpp)
// from loading a model of this shape.
func (s Shape) Validate() error {
	if s.Arch != "llama" && s.Arch != "qwen2" {
		return fmt.Errorf("synth: architecture %q is not supported (llama, qwen2)", s.Arch)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"dim", s.Dim}, {"layers", s.Layers}, {"heads", s.Heads}, {"kv heads", s.KVHeads}, {"ffn", s.FFN}, {"vocab", s.Vocab}, {"context", s.Context}} {
		if f.v <= 0 || f.v > maxDim {
			return fmt.Errorf("synth: %s %d must be in [1, %d]", f.name, f.v, maxDim)
		}
	}
	if s.Dim%s.Heads != 0 {
		return fmt.Errorf("synth: dim %d is not a multiple of the head count %d", s.Dim, s.Heads)
	}
	if s.Heads%s.KVHeads != 0 {
		return fmt.Errorf("synth: head count %d is not a multiple of the KV head count %d", s.Heads, s.KVHeads)
	}
	if hd := s.Dim / s.Heads; hd%2 != 0 {
		return fmt.Errorf("synth: head size %d (dim/heads) must be even for RoPE", hd)
	}
	if s.Vocab < minVocab {
		return fmt.Errorf("synth: vocab %d is below %d, the special and byte tokens plus one piece", s.Vocab, minVocab)
	}
	if !(s.RopeBase > 0) || !(s.RMSEps > 0) {
		return fmt.Errorf("synth: rope base %g and rms epsilon %g must be positive", s.RopeBase, s.RMSEps)
	}
	return nil
}

// HeadDim is the size of one attention head.
func (s Shape) HeadDim() int { return s.Dim / s.Heads }

// Params is the number of weights of a model of this shape, embedding,
// norms and biases included.
func (s Shape) Params() int64 {
	var n int64
	for _, t := range s.tensors() {
		e := int64(1)
		for _, d := range t.dims {
			e *= int64(d)
		}
		n += e
	}
	return n
}

// weightInit says how a tensor's values are drawn.
type weightInit int

const (
	initMatrix weightInit = iota // normal, std matrixStd
	initNorm                     // 1 + normal, std normStd
	initBias                     // normal, std biasStd
)

// The scales of the random weights: 0.02 is the standard deviation Llama
// and GPT-2 are initialised with. Each projection's outputs then have about
// unit size after RMSNorm (0.02·√2048 ≈ 0.9 for TinyLlama's width), so
// activations and logits stay in a realistic range over the layers instead
// of overflowing F16 or collapsing to zero.
const (
	matrixStd = 0.02
	normStd   = 0.02
	biasStd   = 0.02
)

type tensorSpec struct {
	name string
	dims []int // innermost first
	init weightInit
}

// tensors lists the model's tensors in llama.cpp's names and in the order
// convert_hf_to_gguf.py writes a Llama checkpoint: embedding, the blocks in
// order, final norm, output.
func (s Shape) tensors() []tensorSpec {
	hd := s.Dim / max(s.Heads, 1)
	qDim, kvDim := s.Heads*hd, s.KVHeads*hd
	ts := []tensorSpec{{"token_embd.weight", []int{s.Dim, s.Vocab}, initMatrix}}
	for l := range s.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		ts = append(ts,
			tensorSpec{p + "attn_norm.weight", []int{s.Dim}, initNorm},
			tensorSpec{p + "attn_q.weight", []int{s.Dim, qDim}, initMatrix},
			tensorSpec{p + "attn_k.weight", []int{s.Dim, kvDim}, initMatrix},
			tensorSpec{p + "attn_v.weight", []int{s.Dim, kvDim}, initMatrix},
		)
		if s.Arch == "qwen2" {
			ts = append(ts,
				tensorSpec{p + "attn_q.bias", []int{qDim}, initBias},
				tensorSpec{p + "attn_k.bias", []int{kvDim}, initBias},
				tensorSpec{p + "attn_v.bias", []int{kvDim}, initBias},
			)
		}
		ts = append(ts,
			tensorSpec{p + "attn_output.weight", []int{qDim, s.Dim}, initMatrix},
			tensorSpec{p + "ffn_norm.weight", []int{s.Dim}, initNorm},
			tensorSpec{p + "ffn_gate.weight", []int{s.Dim, s.FFN}, initMatrix},
			tensorSpec{p + "ffn_up.weight", []int{s.Dim, s.FFN}, initMatrix},
			tensorSpec{p + "ffn_down.weight", []int{s.FFN, s.Dim}, initMatrix},
		)
	}
	ts = append(ts, tensorSpec{"output_norm.weight", []int{s.Dim}, initNorm})
	if !s.Tied {
		ts = append(ts, tensorSpec{"output.weight", []int{s.Dim, s.Vocab}, initMatrix})
	}
	return ts
}
