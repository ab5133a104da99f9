package tensor

import (
	"fmt"
	"math"
)

// Reference quantizers, byte-compatible with ggml's quantize_row_<t>_ref.
//
// Each takes len(x) elements (a whole number of blocks) and writes exactly
// RowBytes(t, len(x)) bytes at the start of dst. They panic when len(x) is
// not a whole number of blocks or dst is too short: both are programming
// errors, and Quantize checks them and returns errors instead.

// Quantize converts src into t's blocks in dst, with ggml's reference
// quantizer for t. len(src) must be a whole number of blocks and len(dst)
// exactly the stored size; otherwise, or when tamp has no quantizer for t, it
// returns an error.
func Quantize(t Type, src []float32, dst []byte) error {
	f, ok := quantizers[t]
	if !ok {
		if _, known := t.Info(); !known {
			return fmt.Errorf("tensor: unknown type id %d", uint32(t))
		}
		return fmt.Errorf("tensor: no quantizer for type %s", t)
	}
	want, err := RowBytes(t, len(src))
	if err != nil {
		return fmt.Errorf("tensor: quantize %s: %w", t, err)
	}
	if len(dst) != want {
		return fmt.Errorf("tensor: quantize %d elements to %s needs %d bytes, got %d", len(src), t, want, len(dst))
	}
	f(src, dst)
	return nil
}

var quantizers = map[Type]func(x []float32, dst []byte){
	F32: func(x []float32, dst []byte) {
		for i, f := range x {
			putF32(dst[4*i:], f)
		}
	},
	F16: func(x []float32, dst []byte) {
		for i, f := range x {
			putF16(dst[2*i:], F32ToF16(f))
		}
	},
	BF16: func(x []float32, dst []byte) {
		for i, f := range x {
			putF16(dst[2*i:], F32ToBF16(f))
		}
	},
	Q4_0: QuantizeQ4_0,
	Q4_1: QuantizeQ4_1,
	Q5_0: QuantizeQ5_0,
	Q5_1: QuantizeQ5_1,
	Q8_0: QuantizeQ8_0,
	Q8_1: QuantizeQ8_1,
	Q8_K: QuantizeQ8_K,
	Q2_K: QuantizeQ2_K,
	Q3_K: QuantizeQ3_K,
	Q4_K: QuantizeQ4_K,
	Q5_K: QuantizeQ5_K,
	Q6_K: QuantizeQ6_K,
}

// blocks checks the sizes for a quantizer and returns the block count.
func blocks(t Type, x []float32, dst []byte) int {
	ti, _ := t.Info()
	if len(x)%ti.BlockSize != 0 {
		panic(fmt.Sprintf("tensor: quantize %s: %d elements is not a multiple of the block size %d", t, len(x), ti.BlockSize))
	}
	nb := len(x) / ti.BlockSize
	if len(dst) < nb*ti.BlockBytes {
		panic(fmt.Sprintf("tensor: quantize %s: %d elements need %d bytes, dst has %d", t, len(x), nb*ti.BlockBytes, len(dst)))
	}
	return nb
}

// cmax is C's MAX(a, b) macro, a > b ? a : b, kept literally so NaNs flow
// through the same way they do in ggml.
func cmax(a, b float32) float32 {
	if a > b {
		return a
	}
	return b
}

func abs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

// roundI8 is C's (int8_t)roundf(f) for the values ggml feeds it (|f| ≤ 127
// after scaling): rounding half away from zero. Out-of-range values and NaN,
// undefined in C, saturate and map to 0 so the result is at least
// deterministic.
func roundI8(f float32) int8 {
	r := math.Round(float64(f))
	switch {
	case r != r:
		return 0
	case r > 127:
		return 127
	case r < -128:
		return -128
	}
	return int8(r)
}

// nearestInt is ggml's nearest_int: adding 1.5·2^23 leaves the rounded
// integer (ties to even) in the low mantissa bits. Valid for |f| < 2^22, which
// ggml asserts; reproduced bit for bit so other inputs give ggml's garbage.
func nearestInt(f float32) int32 {
	v := float32(f) + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

// QuantizeQ8_0 quantizes x into Q8_0 blocks as ggml's quantize_row_q8_0_ref:
// d = max|x|/127, q = round(x/d) half away from zero, d stored as fp16.
func QuantizeQ8_0(x []float32, dst []byte) {
	nb := blocks(Q8_0, x, dst)
	for i := 0; i < nb; i++ {
		xb := x[i*qk : i*qk+qk]
		b := dst[i*34 : i*34+34]
		var amax float32
		for _, v := range xb {
			amax = cmax(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, F32ToF16(d))
		for j, v := range xb {
			b[2+j] = byte(roundI8(v * id))
		}
	}
}

// QuantizeQ8_1 quantizes x into Q8_1 blocks as ggml's quantize_row_q8_1_ref:
// Q8_0's rounding plus s = d·Σq, both stored as fp16.
func QuantizeQ8_1(x []float32, dst []byte) {
	nb := blocks(Q8_1, x, dst)
	for i := 0; i < nb; i++ {
		xb := x[i*qk : i*qk+qk]
		b := dst[i*36 : i*36+36]
		var amax float32
		for _, v := range xb {
			amax = cmax(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, F32ToF16(d))
		var sum int32
		for j, v := range xb {
			q := roundI8(v * id)
			b[4+j] = byte(q)
			sum += int32(q)
		}
		putF16(b[2:], F32ToF16(float32(sum)*d))
	}
}

// QuantizeQ8_K quantizes x into Q8_K blocks as ggml's quantize_row_q8_K_ref:
// the element of largest magnitude maps to -127 (scale d = max/-127 kept as
// float32), others round to nearest, ties to even, and each group of 16 gets
// its sum. An all-zero block gets d = 0 and zero sums.
func QuantizeQ8_K(x []float32, dst []byte) {
	nb := blocks(Q8_K, x, dst)
	for i := 0; i < nb; i++ {
		xb := x[i*qkK : i*qkK+qkK]
		b := dst[i*292 : i*292+292]
		var vmax, amax float32
		for _, v := range xb {
			if ax := abs32(v); ax > amax {
				amax, vmax = ax, v
			}
		}
		if amax == 0 {
			clear(b)
			continue
		}
		iscale := -127 / vmax
		for j, v := range xb {
			b[4+j] = byte(int8(min(127, nearestInt(float32(iscale*v)))))
		}
		for j := 0; j < 16; j++ {
			var sum int16
			for _, q := range b[4+16*j : 4+16*j+16] {
				sum += int16(int8(q))
			}
			b[260+2*j] = byte(sum)
			b[261+2*j] = byte(uint16(sum) >> 8)
		}
		putF32(b, 1/iscale)
	}
}

// absMax returns the element of largest magnitude (the first one on ties),
// as the legacy symmetric quantizers pick it, and that magnitude.
func absMax(xb []float32) (vmax, amax float32) {
	for _, v := range xb {
		if ax := abs32(v); amax < ax {
			amax, vmax = ax, v
		}
	}
	return vmax, amax
}

// truncFMA is (int)(a*id + c) as ggml's legacy quantizers compute it on
// builds that contract the multiply-add into an FMA (gcc's default wherever
// FMA exists), and as llama.cpp's gguf-py quantizers emulate it: the product
// of two float32s is exact in float64, so only the add rounds, and the
// result is truncated toward zero.
func truncFMA(a, id float32, c float64) int32 {
	return int32(math.Trunc(float64(a)*float64(id) + c))
}

// QuantizeQ4_0 quantizes x into Q4_0 blocks as ggml's quantize_row_q4_0_ref:
// the signed value of largest magnitude sets d = max/-8 (so it lands on
// q = 0), q = min(15, trunc(x/d + 8.5)).
func QuantizeQ4_0(x []float32, dst []byte) {
	nb := blocks(Q4_0, x, dst)
	for i := 0; i < nb; i++ {
		xb := x[i*qk : i*qk+qk]
		b := dst[i*18 : i*18+18]
		vmax, _ := absMax(xb)
		d := vmax / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, F32ToF16(d))
		for j := 0; j < 16; j++ {
			q0 := min(15, int8(truncFMA(xb[j], id, 8.5)))
			q1 := min(15, int8(truncFMA(xb[j+16], id, 8.5)))
			b[2+j] = byte(q0) | byte(q1)<<4
		}
	}
}

// QuantizeQ4_1 quantizes x into Q4_1 blocks as ggml's quantize_row_q4_1_ref:
// m = min, d = (max-min)/15, q = min(15, trunc((x-m)/d + 0.5)).
func QuantizeQ4_1(x []float32, dst []byte) {
	nb := blocks(Q4_1, x, dst)
	for i := 0; i < nb; i++ {
		xb := x[i*qk : i*qk+qk]
		b := dst[i*20 : i*20+20]
		lo, hi := minMax(xb)
		d := (hi - lo) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, F32ToF16(d))
		putF16(b[2:], F32ToF16(lo))
		for j := 0; j < 16; j++ {
			q0 := min(15, int8(truncFMA(xb[j]-lo, id, 0.5)))
			q1 := min(15, int8(truncFMA(xb[j+16]-lo, id, 0.5)))
			b[4+j] = byte(q0) | byte(q1)<<4
		}
	}
}

// minMax is the min/max scan of ggml's asymmetric quantizers (starting from
// ±FLT_MAX, so NaNs are skipped).
func minMax(xb []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range xb {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// QuantizeQ5_0 quantizes x into Q5_0 blocks as ggml's quantize_row_q5_0_ref:
// d = max/-16, q = min(31, trunc(x/d + 16.5)).
func QuantizeQ5_0(x []float32, dst []byte) {
	nb := blocks(Q5_0, x, dst)
	for i := 0; i < nb; i++ {
		xb := x[i*qk : i*qk+qk]
		b := dst[i*22 : i*22+22]
		vmax, _ := absMax(xb)
		d := vmax / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, F32ToF16(d))
		var qh uint32
		for j := 0; j < 16; j++ {
			q0 := byte(min(31, int8(truncFMA(xb[j], id, 16.5))))
			q1 := byte(min(31, int8(truncFMA(xb[j+16], id, 16.5))))
			b[6+j] = q0&0x0f | (q1&0x0f)<<4
			qh |= uint32(q0>>4&1) << j
			qh |= uint32(q1>>4&1) << (j + 16)
		}
		b[2], b[3], b[4], b[5] = byte(qh), byte(qh>>8), byte(qh>>16), byte(qh>>24)
	}
}

// QuantizeQ5_1 quantizes x into Q5_1 blocks as ggml's quantize_row_q5_1_ref:
// m = min, d = (max-min)/31, q = trunc((x-m)/d + 0.5) (never above 31).
func QuantizeQ5_1(x []float32, dst []byte) {
	nb := blocks(Q5_1, x, dst)
	for i := 0; i < nb; i++ {
		xb := x[i*qk : i*qk+qk]
		b := dst[i*24 : i*24+24]
		lo, hi := minMax(xb)
		d := (hi - lo) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, F32ToF16(d))
		putF16(b[2:], F32ToF16(lo))
		var qh uint32
		for j := 0; j < 16; j++ {
			q0 := byte(truncFMA(xb[j]-lo, id, 0.5))
			q1 := byte(truncFMA(xb[j+16]-lo, id, 0.5))
			b[8+j] = q0&0x0f | (q1&0x0f)<<4
			qh |= uint32(q0>>4&1) << j
			qh |= uint32(q1>>4&1) << (j + 16)
		}
		b[4], b[5], b[6], b[7] = byte(qh), byte(qh>>8), byte(qh>>16), byte(qh>>24)
	}
}
