package quant

import (
	"math"
	"testing"

	"tamp/gguf"
	"tamp/model"
	"tamp/tensor"
	"tamp/tokenizer"
)

// dequantizedCopy returns f with every tensor of type t expanded to F32.
func dequantizedCopy(t *testing.T, f *gguf.File, typ tensor.Type) *gguf.File {
	out := &gguf.File{Version: 3, Alignment: f.Alignment, KV: f.KV}
	for _, gt := range f.Tensors {
		if gt.Type != typ {
			out.Tensors = append(out.Tensors, gt)
			continue
		}
		v, err := tensor.DequantizeTensor(gt.Tensor())
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 4*len(v))
		for i, x := range v {
			b := math.Float32bits(x)
			data[4*i], data[4*i+1], data[4*i+2], data[4*i+3] = byte(b), byte(b>>8), byte(b>>16), byte(b>>24)
		}
		out.Tensors = append(out.Tensors, &gguf.Tensor{Name: gt.Name, Dims: gt.Dims, Type: tensor.F32, Data: data})
	}
	return out
}

func storiesLogits(t *testing.T, f *gguf.File, tokens []int32) []float32 {
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := m.NewScorer(model.SessionOptions{Context: len(tokens)})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(tokens)*m.Vocab)
	if err := sc.Logits(tokens, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSQModelMatchesDequantized runs stories260K stored in each SQ type
// through the engine (the registered kernel, assembly where available)
// and compares its logits with the same weights expanded to F32. The two
// differ only by the rounding of activations to Q8_0 that every quantized
// type's dot product does (ggml semantics); the bound is stated for that.
func TestSQModelMatchesDequantized(t *testing.T) {
	f := openTB(t, "stories260K.gguf")
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	tokens := tok.Encode("Once upon a time, there was a little dog named Max. Max liked to run in the big green park.", true, false)
	deviation := func(typ tensor.Type) float64 {
		tg, _ := ParseTarget(typ.String())
		q, _, err := Quantize(f, Options{Target: &tg, Pure: true})
		if err != nil {
			t.Fatal(err)
		}
		got := storiesLogits(t, q, tokens)
		want := storiesLogits(t, dequantizedCopy(t, q, typ), tokens)
		var se, ss float64
		for i := range got {
			d := float64(got[i] - want[i])
			se += d * d
			ss += float64(want[i]) * float64(want[i])
		}
		return math.Sqrt(se / ss)
	}
	// Q4_0 and Q8_0 round their activations to Q8_0 the same way: their
	// deviations are the yardstick.
	q4, q8 := deviation(tensor.Q4_0), deviation(tensor.Q8_0)
	t.Logf("relative RMS logit deviation from the dequantized model: Q4_0 %.3g, Q8_0 %.3g", q4, q8)
	for _, typ := range SQTypes() {
		d := deviation(typ)
		t.Logf("%s: %.3g", typ, d)
		if d > 2*max(q4, q8) {
			t.Errorf("%s deviates %.3g from its dequantized model, more than twice Q4_0's %.3g / Q8_0's %.3g", typ, d, q4, q8)
		}
	}
}

// TestSQKernelMatchesReferenceInModel swaps the SQ kernels for their
// plain-Go reference and checks the model's logits are identical: the fast
// path computes the same integer sums.
func TestSQKernelMatchesReferenceInModel(t *testing.T) {
	f := openTB(t, "stories260K.gguf")
	tokens := make([]int32, 40)
	for i := range tokens {
		tokens[i] = int32(1 + 13*i%500)
	}
	for _, typ := range []tensor.Type{SQ4_8, SQ4_16} {
		tg, _ := ParseTarget(typ.String())
		q, _, err := Quantize(f, Options{Target: &tg})
		if err != nil {
			t.Fatal(err)
		}
		fast := storiesLogits(t, q, tokens)
		old := hasSQ4Asm
		setSQ4Asm(false)
		ref := storiesLogits(t, q, tokens)
		setSQ4Asm(old)
		for i := range fast {
			if fast[i] != ref[i] {
				t.Fatalf("%s: logit %d: kernel %g, reference %g", typ, i, fast[i], ref[i])
			}
		}
	}
}
