package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refF16Value decodes a half from its definition: (-1)^s · 2^(e-15) · 1.m, or
// m · 2^-24 for subnormals.
func refF16Value(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	switch e {
	case 0x1f:
		if m != 0 {
			return math.NaN()
		}
		return math.Inf(int(s))
	case 0:
		return s * m * math.Ldexp(1, -24)
	}
	return s * (1 + m/1024) * math.Ldexp(1, e-15)
}

// refF32ToF16 rounds f to a half by arithmetic instead of bit manipulation:
// scale so the half's last mantissa bit has weight 1, round to even, rebuild.
func refF32ToF16(f float32) uint16 {
	var sign uint16
	if math.Signbit(float64(f)) {
		sign = 0x8000
	}
	a := math.Abs(float64(f))
	switch {
	case math.IsNaN(a):
		return sign | 0x7e00 | uint16(math.Float32bits(f)&0x7fffff>>13)
	case a >= 65520: // halfway between 65504 and 65536 rounds to even = Inf
		return sign | 0x7c00
	case a == 0:
		return sign
	}
	e := max(math.Ilogb(a), -14)
	q := math.RoundToEven(math.Ldexp(a, 10-e)) // in [0, 2048]
	if q == 2048 {
		q, e = 1024, e+1
	}
	if q < 1024 { // subnormal (e == -14)
		return sign | uint16(q)
	}
	return sign | uint16(e+15)<<10 | (uint16(q) - 1024)
}

func TestF16ExhaustiveRoundTrip(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		want := refF16Value(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(f)) {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN", h, f)
			}
			if got := math.Float32bits(f) >> 13 & 0x3ff; got != uint32(h&0x3ff) {
				t.Fatalf("F16ToF32(%#04x) lost the NaN payload: %#x", h, got)
			}
			// Conversion back quiets the NaN and keeps the payload.
			if back := F32ToF16(f); back != h|0x0200 {
				t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x, want %#04x", h, back, h|0x0200)
			}
			continue
		}
		if float64(f) != want || math.Signbit(float64(f)) != (h&0x8000 != 0) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, f, want)
		}
		if back := F32ToF16(f); back != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
		}
	}
}

func TestF32ToF16Known(t *testing.T) {
	tests := []struct {
		name string
		f    float32
		want uint16
	}{
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"zero", 0, 0x0000},
		{"minus zero", float32(math.Copysign(0, -1)), 0x8000},
		{"0.1", 0.1, 0x2e66},
		{"max half", 65504, 0x7bff},
		{"just below overflow tie", 65519.996, 0x7bff},
		{"overflow tie to even", 65520, 0x7c00},
		{"large", 1e10, 0x7c00},
		{"-inf", float32(math.Inf(-1)), 0xfc00},
		{"inf", float32(math.Inf(1)), 0x7c00},
		{"smallest normal", 0x1p-14, 0x0400},
		{"smallest subnormal", 0x1p-24, 0x0001},
		{"half smallest subnormal ties to zero", 0x1p-25, 0x0000},
		{"just above half smallest subnormal", math.Nextafter32(0x1p-25, 1), 0x0001},
		{"1.5 subnormal units ties to 2", 0x3p-25, 0x0002},
		{"largest subnormal tie rounds up to normal", 0x1p-14 - 0x1p-25, 0x0400},
		{"tiny", 1e-30, 0x0000},
		{"float32 subnormal", math.SmallestNonzeroFloat32, 0x0000},
		{"1 + half ulp ties to even (down)", 1 + 0x1p-11, 0x3c00},
		{"1 + 3 half ulps ties to even (up)", 1 + 0x3p-11, 0x3c02},
		{"1 + just over half ulp", math.Nextafter32(1+0x1p-11, 2), 0x3c01},
		{"quiet NaN", float32(math.NaN()), 0x7e00},
		{"NaN payload kept", math.Float32frombits(0x7fa12345), 0x7e00 | 0x212345>>13},
		{"signalling NaN quieted", math.Float32frombits(0xff800001), 0xfe00},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := F32ToF16(tc.f); got != tc.want {
				t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tc.f, got, tc.want)
			}
		})
	}
}

// TestF32ToF16Ties checks every midpoint between adjacent halves (which must
// round to the even one) and the float32 values just either side of it.
func TestF32ToF16Ties(t *testing.T) {
	for _, sign := range []uint16{0, 0x8000} {
		for m := uint16(0); m < 0x7c00; m++ {
			lo, hi := m|sign, (m+1)|sign
			a, b := float64(F16ToF32(lo)), refF16Value(hi)
			if m+1 == 0x7c00 {
				b = math.Copysign(65536, a) // the next "half" past max is Inf
			}
			mid := float32((a + b) / 2) // exact: a half has 11 significant bits
			even := lo
			if m&1 == 1 {
				even = hi
			}
			if got := F32ToF16(mid); got != even {
				t.Fatalf("tie %g between %#04x and %#04x: got %#04x, want %#04x", mid, lo, hi, got, even)
			}
			if got := F32ToF16(math.Nextafter32(mid, float32(a))); got != lo {
				t.Fatalf("just below tie %g: got %#04x, want %#04x", mid, got, lo)
			}
			if got := F32ToF16(math.Nextafter32(mid, float32(b))); got != hi {
				t.Fatalf("just above tie %g: got %#04x, want %#04x", mid, got, hi)
			}
		}
	}
}

func TestF32ToF16Random(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1_000_000; i++ {
		var f float32
		if i%2 == 0 {
			f = math.Float32frombits(r.Uint32())
		} else { // concentrate on the half range, where rounding matters
			f = float32(r.NormFloat64() * math.Ldexp(1, r.IntN(40)-25))
		}
		if got, want := F32ToF16(f), refF32ToF16(f); got != want {
			t.Fatalf("F32ToF16(%g = %#08x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
}

func TestBF16(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := BF16ToF32(h)
		if math.Float32bits(f) != uint32(h)<<16 {
			t.Fatalf("BF16ToF32(%#04x) = %#08x", h, math.Float32bits(f))
		}
		want := h
		if math.IsNaN(float64(f)) {
			want = h | 0x40
		}
		if back := F32ToBF16(f); back != want {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x, want %#04x", h, back, want)
		}
	}
	tests := []struct {
		name string
		bits uint32
		want uint16
	}{
		{"one", 0x3f800000, 0x3f80},
		{"tie to even down", 0x3f808000, 0x3f80},
		{"tie to even up", 0x3f818000, 0x3f82},
		{"above tie", 0x3f808001, 0x3f81},
		{"below tie", 0x3f807fff, 0x3f80},
		{"max float rounds to inf", 0x7f7fffff, 0x7f80},
		{"inf", 0x7f800000, 0x7f80},
		{"signalling NaN quieted", 0x7f800001, 0x7fc0},
		{"negative NaN", 0xffc00000, 0xffc0},
		{"subnormal kept", 0x00010000, 0x0001},
	}
	for _, tc := range tests {
		if got := F32ToBF16(math.Float32frombits(tc.bits)); got != tc.want {
			t.Errorf("%s: F32ToBF16(%#08x) = %#04x, want %#04x", tc.name, tc.bits, got, tc.want)
		}
	}
	// Random values against rounding by arithmetic.
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200_000; i++ {
		u := r.Uint32()
		f := math.Float32frombits(u)
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			continue
		}
		a := math.Abs(float64(f))
		var want uint16
		if a != 0 {
			e := max(math.Ilogb(a), -126)
			q := math.RoundToEven(math.Ldexp(a, 7-e)) // 8 significant bits
			v := math.Ldexp(q, e-7)
			want = uint16(math.Float32bits(float32(v)) >> 16)
			if v > math.MaxFloat32 {
				want = 0x7f80
			}
		}
		want |= uint16(u>>16) & 0x8000
		if got := F32ToBF16(f); got != want {
			t.Fatalf("F32ToBF16(%#08x) = %#04x, want %#04x", u, got, want)
		}
	}
}
