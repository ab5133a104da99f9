package model

import "tamp/gguf"

// llama covers Llama 1/2/3, Mistral, TinyLlama and Mixtral-style mixtures of
// experts: RMSNorm, RoPE on adjacent pairs, grouped-query attention, SwiGLU,
// tied or untied output. llama.cpp files Mixtral under this architecture name
// with expert_count set and ffn_*_exps tensors in place of the dense FFN.
func init() { Register("llama", loadLlama) }

func loadLlama(f *gguf.File) (*Model, error) {
	c, err := readConfig(f, "llama")
	if err != nil {
		return nil, err
	}
	c.RopeStyle = RopeNormal
	return bindWeights(f, c)
}
