package tensor

import "math"

// f16Table holds the float32 value of every half-precision bit pattern;
// dequantization converts one or more halves per block, and a table load
// beats decoding the bits each time.
var f16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = f16ToF32Bits(uint16(h))
	}
	return &t
}()

// F16ToF32 converts an IEEE 754 half-precision value to float32. Every half
// is exactly representable, so the conversion is exact; NaN payloads are kept
// bit for bit (as ggml's software conversion does).
func F16ToF32(h uint16) float32 { return f16Table[h] }

func f16ToF32Bits(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal half: every one is a normal float32, so shift the
		// leading one up to the implicit-bit position.
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}

// F32ToF16 converts f to half precision, rounding to nearest with ties to
// even, as x86 F16C (vcvtps2ph) and ggml do. Values too large for a half
// become ±Inf, tiny ones round into the subnormal range or to ±0. A NaN stays
// NaN: its top payload bits are kept and the quiet bit is set, as F16C does.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(mant>>13)
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Result is subnormal (or zero): the value in units of 2^-24 is
		// m·2^(exp-126) with m the 24-bit significand.
		if e < -10 {
			return sign // below half the smallest subnormal
		}
		m := mant | 0x800000 // float32 subnormals took the branch above
		shift := uint32(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && h&1 == 1) {
			h++ // may carry into the smallest normal, which encodes correctly
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry out of the mantissa bumps the exponent, up to Inf
	}
	return sign | uint16(h)
}

// BF16ToF32 converts a bfloat16 value to float32 (exact: bf16 is the top half
// of a float32).
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 converts f to bfloat16 the way ggml does: round to nearest with
// ties to even, and a NaN keeps its top bits with the quiet bit forced on so
// rounding can never turn it into Inf.
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	return uint16((u + 0x7fff + (u>>16)&1) >> 16)
}
