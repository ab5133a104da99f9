package eval_test

import (
	"bytes"
	"context"
	"fmt"

	"tamp/eval"
)

// uniform is a model that cannot tell tokens apart: every position gets equal
// logits, so its perplexity is exactly the vocabulary size.
type uniform struct{ vocab int }

func (u uniform) VocabSize() int { return u.vocab }

func (u uniform) Logits(tokens []int32, out []float32) error {
	clear(out)
	return nil
}

func ExamplePerplexity() {
	tokens := make([]int32, 100)
	for i := range tokens {
		tokens[i] = int32(i % 8)
	}
	res, err := eval.Perplexity(context.Background(), uniform{vocab: 8}, tokens, eval.Options{Ctx: 32, BOS: 1, AddBOS: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	// 3 chunks of 32 (4 tokens dropped), each scoring positions 16..30.
	fmt.Printf("%d chunks, %d scored tokens, PPL %.4f\n", res.Chunks, res.Tokens, res.PPL)
	// Output: 3 chunks, 45 scored tokens, PPL 8.0000
}

// A KL-divergence run: save the base model's log-probabilities, then compare
// another model with them.
func ExamplePerplexity_klDivergence() {
	tokens := make([]int32, 256)
	for i := range tokens {
		tokens[i] = int32(i*7) % 16
	}
	var file bytes.Buffer // in practice an *os.File
	if _, err := eval.Perplexity(context.Background(), uniform{vocab: 16}, tokens, eval.Options{Ctx: 64, SaveBase: &file}); err != nil {
		fmt.Println(err)
		return
	}
	base, err := eval.ReadBase(bytes.NewReader(file.Bytes()))
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := eval.Perplexity(context.Background(), uniform{vocab: 16}, nil, eval.Options{Base: base})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("mean KLD %.6f, same top %.0f%%, PPL %.2f vs base %.2f\n", res.KLD.Mean, 100*res.KLD.SameTop, res.KLD.PPL, res.KLD.BasePPL)
	// Output: mean KLD 0.000000, same top 100%, PPL 16.00 vs base 16.00
}

func ExamplePercentile() {
	sorted := []float32{1, 2, 3, 4, 5}
	fmt.Printf("%.4g %.4g\n", eval.Percentile(sorted, 0.1), eval.Median(sorted))
	// Output: 1.4 3
}
