package tensor

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestQuantizeActivationsKnown(t *testing.T) {
	// With max|x| = 127 every Q8 scale is exactly 1, which exposes each
	// quantizer's rounding rule and sign convention directly.
	x := make([]float32, 256)
	for i := range x {
		x[i] = float32(i%16) - 7.5 // halves everywhere: ties
	}
	x[0] = 127
	x[40] = -126.5

	q80 := make([]byte, 8*34)
	QuantizeQ8_0(x, q80)
	if d := le16(q80); d != 0x3c00 {
		t.Errorf("Q8_0 block 0 scale %#04x, want 1.0", d)
	}
	for i, v := range x[:32] {
		// roundf: ties away from zero.
		want := int8(math.Copysign(math.Floor(math.Abs(float64(v))+0.5), float64(v)))
		if got := int8(q80[2+i]); got != want {
			t.Errorf("Q8_0 q[%d] for %g = %d, want %d", i, v, got, want)
		}
	}
	// Block 1 holds -126.5 as its largest magnitude: d = 126.5/127.
	if got, want := le16(q80[34:]), F32ToF16(126.5/127); got != want {
		t.Errorf("Q8_0 block 1 scale %#04x, want %#04x", got, want)
	}
	if got := int8(q80[34+2+8]); got != -127 {
		t.Errorf("Q8_0 block 1 max element -> %d, want -127", got)
	}

	q81 := make([]byte, 8*36)
	QuantizeQ8_1(x, q81)
	var sum int
	for i := 0; i < 32; i++ {
		if q81[4+i] != q80[2+i] || le16(q81) != le16(q80) {
			t.Fatalf("Q8_1 quants differ from Q8_0's at %d", i)
		}
		sum += int(int8(q81[4+i]))
	}
	if got, want := h16(q81[2:]), float32(sum); got != want {
		t.Errorf("Q8_1 s = %g, want d·Σq = %g", got, want)
	}

	// Q8_K maps the first element of largest magnitude to -127: here +127,
	// so the scale is -1, quants are -x, and ties round to even.
	q8k := make([]byte, 292)
	QuantizeQ8_K(x, q8k)
	if d := math.Float32frombits(binary.LittleEndian.Uint32(q8k)); d != -1 {
		t.Errorf("Q8_K scale %g, want -1", d)
	}
	for i, v := range x {
		want := int8(-math.RoundToEven(float64(v)))
		if got := int8(q8k[4+i]); got != want {
			t.Fatalf("Q8_K q[%d] for %g = %d, want %d", i, v, got, want)
		}
	}
	for j := 0; j < 16; j++ {
		var s int
		for _, q := range q8k[4+16*j : 4+16*j+16] {
			s += int(int8(q))
		}
		if got := int(int16(le16(q8k[260+2*j:]))); got != s {
			t.Errorf("Q8_K bsums[%d] = %d, want %d", j, got, s)
		}
	}

	// All-zero input: zero scales and quants.
	zero := make([]float32, 256)
	for _, c := range []struct {
		typ Type
		q   func([]float32, []byte)
	}{{Q8_0, QuantizeQ8_0}, {Q8_1, QuantizeQ8_1}, {Q8_K, QuantizeQ8_K}} {
		size, _ := RowBytes(c.typ, 256)
		b := make([]byte, size)
		for i := range b {
			b[i] = 0xee
		}
		c.q(zero, b)
		for i, v := range b {
			if v != 0 {
				t.Fatalf("%s of zeros: byte %d = %#x", c.typ, i, v)
			}
		}
	}
}

// TestQuantizeRoundTrip checks every reference quantizer against the error
// bound of its format after dequantization.
func TestQuantizeRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 19))
	tests := []struct {
		typ Type
		// maxErr bounds the error of the block's elements, before the
		// fp16 rounding of scales: half a step, except that Q4_0 and Q5_0
		// reach only 7/8 and 15/16 of max|x| on the side opposite the
		// extreme, where the error grows to a full step.
		maxErr func(xb []float32) float64
	}{
		{Q8_0, func(xb []float32) float64 { return maxAbs(xb) / 127 / 2 }},
		{Q8_1, func(xb []float32) float64 { return maxAbs(xb) / 127 / 2 }},
		{Q8_K, func(xb []float32) float64 { return maxAbs(xb) / 127 / 2 }},
		{Q4_0, func(xb []float32) float64 { return maxAbs(xb) / 8 }},
		{Q5_0, func(xb []float32) float64 { return maxAbs(xb) / 16 }},
		{Q4_1, func(xb []float32) float64 { lo, hi := minMax(xb); return float64(hi-lo) / 15 / 2 }},
		{Q5_1, func(xb []float32) float64 { lo, hi := minMax(xb); return float64(hi-lo) / 31 / 2 }},
	}
	for _, tc := range tests {
		t.Run(tc.typ.String(), func(t *testing.T) {
			ti, _ := tc.typ.Info()
			n := 32 * ti.BlockSize
			for trial := 0; trial < 10; trial++ {
				x := randomVector(r, n)
				if trial == 1 {
					for i := range x {
						x[i] = float32(r.Float64()) + 3 // all positive, offset
					}
				}
				size, _ := RowBytes(tc.typ, n)
				q := make([]byte, size)
				if err := Quantize(tc.typ, x, q); err != nil {
					t.Fatal(err)
				}
				y := make([]float32, n)
				if err := Dequantize(tc.typ, q, y); err != nil {
					t.Fatal(err)
				}
				for b := 0; b < n; b += ti.BlockSize {
					xb := x[b : b+ti.BlockSize]
					// fp16 scales (and mins) are off by up to 2^-11
					// relative, which moves the largest values by
					// that much of max|x|.
					bound := tc.maxErr(xb)*(1+1e-4) + maxAbs(xb)*0x1p-10
					for i, v := range xb {
						if e := math.Abs(float64(v - y[b+i])); e > bound {
							t.Fatalf("trial %d element %d: %g -> %g, error %g > %g", trial, b+i, v, y[b+i], e, bound)
						}
					}
				}
			}
		})
	}
}

func maxAbs(xb []float32) float64 {
	var m float64
	for _, v := range xb {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// TestQuantizeQ4_0SignedMax pins the detail that makes Q4_0 asymmetric: the
// largest-magnitude value lands exactly on q = 0 (d = max/-8), so a block
// whose extreme is positive represents +max exactly and -max only to 7/8.
func TestQuantizeQ4_0SignedMax(t *testing.T) {
	x := make([]float32, 32)
	x[3], x[4] = 8, -7
	b := make([]byte, 18)
	QuantizeQ4_0(x, b)
	if got := h16(b); got != -1 {
		t.Errorf("d = %g, want -1", got)
	}
	y := make([]float32, 32)
	if err := Dequantize(Q4_0, b, y); err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if y[i] != x[i] {
			t.Errorf("element %d: %g -> %g", i, x[i], y[i])
		}
	}
	if b[2+3]&0x0f != 0 {
		t.Errorf("largest value stored as nibble %d, want 0", b[2+3]&0x0f)
	}
}

func TestQuantizeErrors(t *testing.T) {
	tests := []struct {
		name string
		typ  Type
		n    int
		dst  int
		want string
	}{
		{"partial block", Q4_0, 40, 18, "not a multiple"},
		{"short dst", Q8_0, 32, 33, "needs 34 bytes, got 33"},
		{"no quantizer", IQ2_XS, 256, 74, "no quantizer for type IQ2_XS"},
		{"unknown", Type(1000), 1, 1, "unknown type id 1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Quantize(tc.typ, make([]float32, tc.n), make([]byte, tc.dst))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
	if msg := mustPanic(t, func() { QuantizeQ8_K(make([]float32, 256), make([]byte, 291)) }); !strings.Contains(msg, "need 292 bytes") {
		t.Errorf("short dst panic: %q", msg)
	}
}

func TestQuantizeFloatTypes(t *testing.T) {
	x := []float32{1, -0.1, 65504, 70000, 1e-7}
	for _, typ := range []Type{F32, F16, BF16} {
		size, _ := RowBytes(typ, len(x))
		b := make([]byte, size)
		if err := Quantize(typ, x, b); err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := Dequantize(typ, b, y); err != nil {
			t.Fatal(err)
		}
		for i, v := range x {
			var want float32
			switch typ {
			case F32:
				want = v
			case F16:
				want = F16ToF32(F32ToF16(v))
			case BF16:
				want = BF16ToF32(F32ToBF16(v))
			}
			if y[i] != want {
				t.Errorf("%s element %d: %g -> %g, want %g", typ, i, v, y[i], want)
			}
		}
	}
}
