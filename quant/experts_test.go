package quant

import (
	"bytes"
	"context"
	"os"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/model"
	"tamp/tensor"
	"tamp/tokenizer"
)

// splitExperts returns f with every stacked expert tensor stored per expert
// under SplitExpertName's names, each holding its slice's bytes.
func splitExperts(t *testing.T, f *gguf.File) *gguf.File {
	out := &gguf.File{Version: 3, Alignment: f.Alignment, KV: f.KV}
	for _, gt := range f.Tensors {
		if !isExperts(gt) {
			out.Tensors = append(out.Tensors, gt)
			continue
		}
		size := len(gt.Data) / int(gt.Dims[2])
		for e := range int(gt.Dims[2]) {
			name, _ := SplitExpertName(gt.Name, e)
			out.Tensors = append(out.Tensors, &gguf.Tensor{Name: name, Type: gt.Type, Dims: gt.Dims[:2], Data: gt.Data[e*size : (e+1)*size]})
		}
	}
	return out
}

func mixtralTokens(t *testing.T, f *gguf.File) []int32 {
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(testdata.Path(t, "tinystories-sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return tok.Encode(string(text[:4000]), true, false)
}

// TestPerExpertInput reads a file that already stores its experts apart:
// the imatrix, the allocation and the quantized output must be the same as
// for the stacked original, since the model computes the same logits from
// both layouts and every expert is the same allocation unit.
func TestPerExpertInput(t *testing.T) {
	stacked := openTB(t, "golden/tiny-mixtral.gguf")
	split := splitExperts(t, stacked)
	tokens := mixtralTokens(t, stacked)

	// Imatrix: per-expert entries hold the stacked entry's matrices, and each
	// layout's entries serve the other's tensors.
	collect := func(f *gguf.File) *Imatrix {
		m, err := model.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		im, err := CollectImatrix(context.Background(), m, tokens, CollectOptions{Ctx: 32, Chunks: 2})
		if err != nil {
			t.Fatal(err)
		}
		return im
	}
	imS, imP := collect(stacked), collect(split)
	if _, ok := imP.Entries["blk.1.ffn_down.2.weight"]; !ok {
		t.Fatalf("no per-expert entry; entries %v", imP.Names())
	}
	for e := range 4 {
		name, _ := SplitExpertName("blk.1.ffn_down_exps.weight", e)
		a, err := imS.Weights("blk.1.ffn_down_exps.weight", e, 160)
		if err != nil {
			t.Fatal(err)
		}
		b, err := imP.Weights(name, 0, 160)
		if err != nil {
			t.Fatal(err)
		}
		c, err := imS.weightsFor(name, 0, 160)
		if err != nil {
			t.Fatal(err)
		}
		d, err := imP.weightsFor("blk.1.ffn_down_exps.weight", e, 160)
		if err != nil {
			t.Fatal(err)
		}
		for j := range a {
			if a[j] != b[j] || a[j] != c[j] || a[j] != d[j] {
				t.Fatalf("expert %d column %d: importance %v stacked, %v per expert, %v and %v across layouts", e, j, a[j], b[j], c[j], d[j])
			}
		}
	}

	// Allocation and quantization.
	var weights int64
	for _, gt := range stacked.Tensors {
		weights += int64(gt.Tensor().Elements())
	}
	opts := AllocOptions{
		Candidates:  []tensor.Type{tensor.Q4_0, tensor.Q8_0},
		Budget:      int64(6.0 * float64(weights) / 8),
		Calibration: tokens,
		Ctx:         32,
		Chunks:      1,
		Imatrix:     imS,
	}
	planS, err := Allocate(context.Background(), stacked, opts)
	if err != nil {
		t.Fatal(err)
	}
	planP, err := Allocate(context.Background(), split, opts)
	if err != nil {
		t.Fatal(err)
	}
	if planS.Summary.Used != planP.Summary.Used || planS.Summary.Cost != planP.Summary.Cost {
		t.Errorf("stacked plan uses %d bytes at damage %g, per-expert plan %d at %g",
			planS.Summary.Used, planS.Summary.Cost, planP.Summary.Used, planP.Summary.Cost)
	}
	for k, ty := range planS.Types {
		if planP.Types[k] != ty {
			t.Errorf("%s: %s from the stacked file, %s from the per-expert one", k, ty, planP.Types[k])
		}
	}
	outS, repS, err := Quantize(stacked, Options{Type: tensor.Q4_0, Plan: planS, Imatrix: imS})
	if err != nil {
		t.Fatal(err)
	}
	outP, repP, err := Quantize(split, Options{Type: tensor.Q4_0, Plan: planP, Imatrix: imS})
	if err != nil {
		t.Fatal(err)
	}
	if repS.OutBytes != repP.OutBytes {
		t.Errorf("%d bytes from the stacked file, %d from the per-expert one", repS.OutBytes, repP.OutBytes)
	}
	// Where the stacked output split a layer, the per-expert output must hold
	// the same bytes under the same names.
	compared := 0
	for _, a := range outS.Tensors {
		if _, _, _, ok := model.ParseExpertTensorName(a.Name); !ok {
			continue
		}
		compared++
		b, ok := outP.Tensor(a.Name)
		if !ok || b.Type != a.Type || !bytes.Equal(a.Data, b.Data) {
			t.Errorf("%s differs between the stacked and the per-expert input", a.Name)
		}
	}
	if compared == 0 {
		t.Error("the plan split no layer; the comparison is empty")
	}
}
