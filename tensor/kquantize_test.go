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
