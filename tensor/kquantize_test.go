package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// levelStep returns, for element e of a K-quant block, its stored level, the
// largest level of the format and the block's step for that element's
// sub-block (the dequantized spacing between adjacent levels).
var levelStep = map[Type]func(b []byte, e int) (level, top int, step float64){
	Q2_K: func(b []byte, e int) (int, int, float64) {
		return twoBit(b[16:80], e), 3, float64(h16(b[80:]) * float32(b[e/16]&15))
	},
	Q3_K: func(b []byte, e int) (int, int, float64) {
		q := twoBit(b[32:96], e) | int(b[e%32]>>(e/32)&1)<<2
		return q, 7, math.Abs(float64(h16(b[108:]) * float32(sixBitQ3(b[96:108], e/16)-32)))
	},
	Q4_K: func(b []byte, e int) (int, int, float64) {
		sc, _ := scaleMinRef(b[4:16])
		return fourBit(b[16:144], e), 15, float64(h16(b) * float32(sc[e/32]))
	},
	Q5_K: func(b []byte, e int) (int, int, float64) {
		sc, _ := scaleMinRef(b[4:16])
		return fourBit(b[48:176], e) | int(b[16+e%32]>>(e/32)&1)<<4, 31, float64(h16(b) * float32(sc[e/32]))
	},
	Q6_K: func(b []byte, e int) (int, int, float64) {
		half, r := e/128, e%128
		g, l := r/32, r%32
		lo := int(b[64*half+32*(g%2)+l]>>(4*(g/2))) & 15
		hi := int(b[128+32*half+l]>>(2*g)) & 3
		return lo | hi<<4, 63, math.Abs(float64(h16(b[208:]) * float32(int8(b[192+e/16]))))
	},
}

// TestQuantizeKQuants checks the K-quant reference quantizers' defining
// property: after the scales are fixed, every element not clamped to the
// end of the range sits on its nearest level, so its error is at most half a
// step. It also checks that error falls as bits are added and that the
// K-quants beat the legacy formats of the same width.
func TestQuantizeKQuants(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 23))
	const n = 256 * 32
	x := randomVector(r, n)
	for i := n / 2; i < n/2+256; i++ {
		x[i] = float32(r.Float64()*0.5) + 2 // one all-positive block (min 0 branch)
	}
	rmse := map[Type]float64{}
	for _, typ := range []Type{Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q4_1, Q5_1} {
		ti, _ := typ.Info()
		q := make([]byte, n/ti.BlockSize*ti.BlockBytes)
		if err := Quantize(typ, x, q); err != nil {
			t.Fatal(err)
		}
		y := make([]float32, n)
		if err := Dequantize(typ, q, y); err != nil {
			t.Fatal(err)
		}
		var se float64
		for i := range x {
			e := float64(x[i] - y[i])
			se += e * e
		}
		rmse[typ] = math.Sqrt(se / n)
		ls := levelStep[typ]
		if ls == nil {
			continue
		}
		for blk := 0; blk < n/qkK; blk++ {
			b := q[blk*ti.BlockBytes : (blk+1)*ti.BlockBytes]
			for e := 0; e < qkK; e++ {
				level, top, step := ls(b, e)
				if step == 0 || level == 0 || level == top {
					continue
				}
				i := blk*qkK + e
				if err := math.Abs(float64(x[i] - y[i])); err > step*(0.5+1e-5)+1e-7 {
					t.Fatalf("%s element %d: %g -> %g (level %d), error %g > half step %g", typ, i, x[i], y[i], level, err, step/2)
				}
			}
		}
	}
	t.Logf("rmse: %v", rmse)
	order := []Type{Q2_K, Q3_K, Q4_K, Q5_K, Q6_K}
	for i := 1; i < len(order); i++ {
		if rmse[order[i]] > 0.6*rmse[order[i-1]] {
			t.Errorf("%s rmse %g is not well below %s's %g", order[i], rmse[order[i]], order[i-1], rmse[order[i-1]])
		}
	}
	if rmse[Q4_K] >= rmse[Q4_1] || rmse[Q5_K] >= rmse[Q5_1] {
		t.Errorf("K-quants no better than legacy: Q4_K %g vs Q4_1 %g, Q5_K %g vs Q5_1 %g", rmse[Q4_K], rmse[Q4_1], rmse[Q5_K], rmse[Q5_1])
	}
}

// TestQuantizeZeros: every quantizer encodes an all-zero input as a block
// that decodes to zeros, and writes every byte (the result does not depend on
// what dst held before).
func TestQuantizeZeros(t *testing.T) {
	for typ := range quantizers {
		ti, _ := typ.Info()
		const n = 256
		size := n / ti.BlockSize * ti.BlockBytes
		var outs [2][]byte
		for k, fill := range []byte{0x00, 0xa5} {
			dst := make([]byte, size)
			for i := range dst {
				dst[i] = fill
			}
			if err := Quantize(typ, make([]float32, n), dst); err != nil {
				t.Fatal(err)
			}
			outs[k] = dst
		}
		if string(outs[0]) != string(outs[1]) {
			t.Errorf("%s: output depends on dst's previous contents", typ)
		}
		y := make([]float32, n)
		if err := Dequantize(typ, outs[0], y); err != nil {
			t.Fatal(err)
		}
		for i, v := range y {
			if v != 0 {
				t.Errorf("%s: element %d decodes to %g", typ, i, v)
				break
			}
		}
	}
}

// TestMakeQPQuants checks the super-block scale fit: levels stay in range
// and reproduce the inputs closely.
func TestMakeQPQuants(t *testing.T) {
	x := []float32{0.1, 0.5, 0.25, 0.9, 0, 0.33, 0.7, 0.05}
	w := []float32{1, 2, 1, 3, 1, 1, 2, 1}
	var L [8]uint8
	d := makeQPQuants(63, x, L[:], w)
	for i, v := range x {
		if L[i] > 63 {
			t.Fatalf("level %d out of range", L[i])
		}
		if math.Abs(float64(d*float32(L[i])-v)) > float64(d) {
			t.Errorf("x[%d] = %g reconstructs as %g (scale %g)", i, v, d*float32(L[i]), d)
		}
	}
	if got := makeQPQuants(15, make([]float32, 4), L[:4], w[:4]); got != 0 {
		t.Errorf("all-zero input gives scale %g", got)
	}
}

// TestQuantizeWeighted: without importances it is Quantize byte for byte;
// with them, several rows at once equal the rows one at a time, types
// without a weighted quantizer ignore the weights, and sizes are checked.
func TestQuantizeWeighted(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const rows, cols = 3, 512
	x := make([]float32, rows*cols)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	qw := make([]float32, cols)
	for j := range qw {
		qw[j] = float32(math.Exp(r.NormFloat64()))
	}
	for _, typ := range []Type{Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, F16} {
		rb, _ := RowBytes(typ, cols)
		ref := make([]byte, rows*rb)
		if err := Quantize(typ, x, ref); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, rows*rb)
		if err := QuantizeWeighted(typ, x, got, nil); err != nil || string(got) != string(ref) {
			t.Errorf("%s: without importances the output differs from Quantize (%v)", typ, err)
		}
		if err := QuantizeWeighted(typ, x, got, qw); err != nil {
			t.Fatal(err)
		}
		_, weighted := weightedQuantizers[typ]
		if !weighted && string(got) != string(ref) {
			t.Errorf("%s has no weighted quantizer but the weights changed its output", typ)
		}
		if weighted && string(got) == string(ref) {
			t.Errorf("%s: the importances changed nothing", typ)
		}
		for i := range rows {
			one := make([]byte, rb)
			if err := QuantizeWeighted(typ, x[i*cols:(i+1)*cols], one, qw); err != nil {
				t.Fatal(err)
			}
			if string(one) != string(got[i*rb:(i+1)*rb]) {
				t.Errorf("%s: row %d quantized alone differs", typ, i)
			}
		}
	}
	for _, c := range []struct {
		name string
		n    int
		dst  int
		qw   []float32
	}{
		{"weights do not divide rows", 512, 3 * 144, make([]float32, 300)},
		{"empty weights", 256, 144, []float32{}},
		{"short dst", 512, 100, make([]float32, 256)},
		{"row not whole blocks", 384, 3 * 144, make([]float32, 128)},
	} {
		if err := QuantizeWeighted(Q4_K, make([]float32, c.n), make([]byte, c.dst), c.qw); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}
