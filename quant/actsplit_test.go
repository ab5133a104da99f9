package quant

import (
	"context"
	"os"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/model"
	"tamp/tokenizer"
)

func TestActSplitApply(t *testing.T) {
	a := &ActSplit{High: map[string][]int{"s": {1}}}
	x := []float32{0.5, -100, 0.26, -0.7, 0.1}
	a.Apply("s", x, 1, 5)
	// Channel 1 alone in INT8: exact at its own scale. The rest share the
	// INT4 scale 0.7/7 = 0.1.
	want := []float32{0.5, -100, 0.3, -0.7, 0.1}
	for i := range x {
		if d := x[i] - want[i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("got %v, want %v", x, want)
		}
	}
	before := append([]float32(nil), x...)
	a.Apply("s", x, 1, 5)
	for i := range x {
		if x[i] != before[i] {
			t.Fatalf("quantizing twice changed %v to %v", before, x)
		}
	}
	if actSite("blk.3.attn_k.weight") != "blk.3.attn_in" || actSite("blk.0.ffn_up_exps.weight") != "blk.0.ffn_in" ||
		actSite("blk.0.ffn_down.weight") != "blk.0.ffn_down.weight" || actSite("output.weight") != "output.weight" {
		t.Error("sites")
	}
}

// TestActSplitCost measures the static activation split on stories260K:
// keeping the calibrated eighth of the channels in INT8 must cost less than
// all-INT4 activations and more than all-INT8.
func TestActSplitCost(t *testing.T) {
	f := openTB(t, "stories260K.gguf")
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := tokenizer.FromGGUF(f)
	text, err := os.ReadFile(testdata.Path(t, "tinystories-sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	first, second := SplitText(text)
	calib := tok.Encode(string(first[:30000]), true, false)
	eval := tok.Encode(string(second[:30000]), true, false)
	kld := map[float64]float64{}
	for _, frac := range []float64{0, 0.125, 1} {
		split, err := CalibrateActSplit(context.Background(), m, calib, 128, 4, frac)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(split.High["blk.0.attn_in"]); n != int(frac*64+0.5) {
			t.Errorf("fraction %g: %d of 64 channels kept", frac, n)
		}
		if kld[frac], err = ActSplitKLD(m, m, split, eval, 128, 4); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("KL divergence of activation quantization (F32 weights): all INT4 %.4g, 1/8 INT8 %.4g, all INT8 %.4g", kld[0], kld[0.125], kld[1])
	if !(kld[1] < kld[0.125] && kld[0.125] < kld[0]) {
		t.Errorf("costs not ordered: %v", kld)
	}
	g := gguf.New()
	split, _ := CalibrateActSplit(context.Background(), m, calib, 128, 2, 0.125)
	split.Store(g)
	if ch, ok := g.Int32s(KeyActSplit + "blk.0.attn_in"); !ok || len(ch) != 8 {
		t.Errorf("stored split: %v %v", ch, ok)
	}
}
