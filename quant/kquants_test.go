package quant

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"

	"tamp/tensor"
)

// TestWeightedQuantizers checks every importance-weighted quantizer: its
// output decodes close to the input, and it lowers the importance-weighted
// error against ggml's reference quantizer, which ignores importances.
func TestWeightedQuantizers(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	const rows, cols = 32, 512
	x := make([]float32, rows*cols)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 0.02)
	}
	qw := make([]float32, cols)
	for j := range qw {
		qw[j] = float32(math.Exp(1.5 * r.NormFloat64()))
	}
	for _, tc := range []struct {
		t      tensor.Type
		maxRel float64 // relative RMS error bound
	}{
		{tensor.Q4_0, 0.15}, {tensor.Q4_1, 0.12}, {tensor.Q5_0, 0.08}, {tensor.Q5_1, 0.06},
		{tensor.Q2_K, 0.45}, {tensor.Q3_K, 0.25}, {tensor.Q4_K, 0.12}, {tensor.Q5_K, 0.06}, {tensor.Q6_K, 0.03},
	} {
		t.Run(tc.t.String(), func(t *testing.T) {
			rb, _ := tensor.RowBytes(tc.t, cols)
			weighted := make([]byte, rb*rows)
			ref := make([]byte, rb*rows)
			for i := 0; i < rows; i++ {
				xr := x[i*cols : (i+1)*cols]
				if err := QuantizeRow(tc.t, xr, weighted[i*rb:(i+1)*rb], qw); err != nil {
					t.Fatal(err)
				}
				if err := QuantizeRow(tc.t, xr, ref[i*rb:(i+1)*rb], nil); err != nil {
					t.Fatal(err)
				}
			}
			// Without importances QuantizeRow is exactly the reference.
			direct := make([]byte, rb*rows)
			if err := tensor.Quantize(tc.t, x, direct); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(direct, ref) {
				t.Error("QuantizeRow without importances differs from tensor.Quantize")
			}
			errs := func(data []byte) (rel, werr float64) {
				back := make([]float32, len(x))
				if err := tensor.Dequantize(tc.t, data, back); err != nil {
					t.Fatal(err)
				}
				var se, ss float64
				for i := range x {
					d := float64(x[i] - back[i])
					se += d * d
					ss += float64(x[i]) * float64(x[i])
					werr += float64(qw[i%cols]) * d * d
				}
				return math.Sqrt(se / ss), werr
			}
			relW, wW := errs(weighted)
			_, wRef := errs(ref)
			if relW > tc.maxRel {
				t.Errorf("relative RMS error %.3f > %.3f", relW, tc.maxRel)
			}
			if !(wW < wRef) {
				t.Errorf("importance-weighted error %.4g with the imatrix is not below the reference's %.4g", wW, wRef)
			}
		})
	}
}

func TestQuantizeRowErrors(t *testing.T) {
	x := make([]float32, 64)
	for _, tc := range []struct {
		name string
		t    tensor.Type
		dst  int
		qw   []float32
	}{
		{"wrong dst size", tensor.Q4_0, 10, nil},
		{"wrong weight count", tensor.Q4_0, 36, make([]float32, 3)},
		{"rows not blocks", tensor.Q4_K, 144, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := QuantizeRow(tc.t, x, make([]byte, tc.dst), tc.qw); err == nil {
				t.Error("no error")
			}
		})
	}
}
