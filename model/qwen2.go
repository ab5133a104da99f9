package model

import (
	"fmt"

	"tamp/gguf"
)

// qwen2 is Llama's block with biases on the query, key and value projections
// and RoPE on the two halves of each head (NeoX layout).
func init() { Register("qwen2", loadQwen2) }

func loadQwen2(f *gguf.File) (*Model, error) {
	c, err := readConfig(f, "qwen2")
	if err != nil {
		return nil, err
	}
	c.RopeStyle = RopeNeoX
	m, err := bindWeights(f, c)
	if err != nil {
		return nil, err
	}
	for i, l := range m.Blocks {
		if l.Bq == nil || l.Bk == nil || l.Bv == nil {
			return nil, fmt.Errorf("layer %d lacks the attn_q/k/v biases qwen2 requires", i)
		}
	}
	return m, nil
}
