package gguf_test

import (
	"fmt"
	"log"
	"path/filepath"

	"tamp/gguf"
	"tamp/internal/testdata"
)

// Open a model, read its hyperparameters and list its first tensors.
func Example() {
	dir, err := testdata.Lookup()
	if err != nil {
		log.Fatal(err)
	}
	f, err := gguf.Open(filepath.Join(dir, "stories260K.gguf"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	arch := f.Architecture()
	dim, _ := f.Uint(arch + ".embedding_length")
	eps, _ := f.Float(arch + ".attention.layer_norm_rms_epsilon")
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	fmt.Printf("%s: dim %d, rms eps %g, %d tokens, %d tensors\n", arch, dim, float32(eps), len(tokens), len(f.Tensors))
	for _, t := range f.Tensors[:4] {
		fmt.Printf("%-20s %-4s %-9s %6d bytes at %d\n", t.Name, t.Type, fmt.Sprint(t.Dims), len(t.Data), f.DataOffset+t.Offset)
	}
	// Output:
	// llama: dim 64, rms eps 1e-05, 512 tokens, 48 tensors
	// token_embd.weight    F32  [64 512]  131072 bytes at 14176
	// output_norm.weight   F32  [64]         256 bytes at 145248
	// output.weight        F32  [64 512]  131072 bytes at 145504
	// blk.0.attn_q.weight  F32  [64 64]    16384 bytes at 276576
}
