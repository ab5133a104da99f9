package tensor

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// simdTypes lists the types with a SIMD kernel on this machine, skipping the
// test where there are none (another architecture or the purego tag): there
// the reference kernels are all MatMul uses, and the other tests cover them.
func simdTypes(t testing.TB) []Type {
	var ts []Type
	for _, typ := range supportedTypes() {
		if _, ok := simdKernels[typ]; ok {
			ts = append(ts, typ)
		}
	}
	if len(ts) == 0 {
		t.Skipf("no SIMD kernels on this machine (SIMD() = %q)", SIMD())
	}
	return ts
}

// minFields names, for the types whose weights are d·q - m style, the
// offsets of the scale (d) and offset (m or dmin) halves.
var minFields = map[Type][2]int{
	Q4_1: {0, 2}, Q5_1: {0, 2}, Q2_K: {80, 82}, Q4_K: {0, 2}, Q5_K: {0, 2},
}

// dotMagnitude is Σ|terms| for the float error bound of a kernel: the sum
// of |wᵢ·xᵢ| over the dequantized row and activations, with the scale and
// offset parts of d·q - m weights counted separately so that a cancellation
// between them cannot hide the size of the terms summed.
func dotMagnitude(t *testing.T, typ Type, n int, row, xq []byte) float64 {
	t.Helper()
	ti, _ := typ.Info()
	xd := make([]float32, n)
	if err := Dequantize(VecDotType(typ), xq, xd); err != nil {
		t.Fatal(err)
	}
	parts := [][]byte{row}
	if f, ok := minFields[typ]; ok {
		scale := append([]byte(nil), row...)
		offset := append([]byte(nil), row...)
		for b := 0; b < len(row); b += ti.BlockBytes {
			binary.LittleEndian.PutUint16(scale[b+f[1]:], 0)
			binary.LittleEndian.PutUint16(offset[b+f[0]:], 0)
		}
		parts = [][]byte{scale, offset}
	}
	var m float64
	w := make([]float32, n)
	for _, p := range parts {
		if err := Dequantize(typ, p, w); err != nil {
			t.Fatal(err)
		}
		for i := range w {
			m += math.Abs(float64(w[i]) * float64(xd[i]))
		}
	}
	return m
}

// simdTolerance bounds |SIMD - reference| for a dot of n elements whose
// reference result is ref.
//
// The quantized kernels sum the same float terms as the reference (block
// sums times scales) in another order; each order's rounding error is at
// most the number of terms added in sequence times 2⁻²⁴ times Σ|terms|, and
// (terms+16)·2⁻²³·Σ|terms| covers both. The float kernels round the same
// float32 products and differ only in the order of a float64 sum, so they
// are within one float32 rounding of the reference: 2⁻²⁴·|ref| plus
// n·2⁻⁵⁰·Σ|terms| for the float64 sums.
func simdTolerance(typ Type, n int, magnitude float64, ref float32) float64 {
	ti, _ := typ.Info()
	switch typ {
	case F32, BF16:
		return 0x1p-24*math.Abs(float64(ref)) + float64(n)*0x1p-50*magnitude + 1e-45
	case F16: // float32 lanes of n/32 products each
		return float64(n/32+16)*0x1p-23*magnitude + 1e-45
	}
	return float64(n/ti.BlockSize+16)*0x1p-23*magnitude + 1e-37
}

// TestSIMDDot compares every SIMD kernel with the plain-Go reference
// (DotRow) on random rows and activations, at several lengths (including
// float rows that are not a multiple of the vector width).
func TestSIMDDot(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, typ := range simdTypes(t) {
		t.Run(typ.String(), func(t *testing.T) {
			ti, _ := typ.Info()
			dot := simdKernels[typ].dot
			lengths := []int{256, 512, 2048, 5632}
			if ti.BlockSize == 1 {
				lengths = append(lengths, 1, 7, 8, 9, 31, 33, 100)
			} else if ti.BlockSize == qk {
				lengths = append(lengths, 32, 64, 96)
			}
			for _, n := range lengths {
				for trial := 0; trial < 5; trial++ {
					row := randomBlocks(r, typ, n/ti.BlockSize)
					x := randomVector(r, n)
					if trial == 1 && n >= 64 {
						clear(x[:64]) // zero activation blocks
					}
					xq := ConvertActivation(typ, x, nil)
					want := DotRow(typ, n, row, xq)
					got := dot(n, row, xq)
					tol := simdTolerance(typ, n, dotMagnitude(t, typ, n, row, xq), want)
					if d := math.Abs(float64(got) - float64(want)); !(d <= tol) {
						t.Fatalf("n=%d trial %d: SIMD %g, reference %g (diff %g > %g)", n, trial, got, want, d, tol)
					}
				}
			}
		})
	}
}

// TestSIMDDotExact: when every operation is exact (integer weights and
// activations, unit scales, sums below 2²⁴) the kernels must return the true
// dot product to the bit, so their integer arithmetic is exactly the
// reference's. The quants take their extreme values here (all bits set or
// clear, scales at their largest) with activations at ±127 in pairs of equal
// sign, the worst case for VPMADDUBSW's 16-bit pair sums.
func TestSIMDDotExact(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	for _, typ := range simdTypes(t) {
		t.Run(typ.String(), func(t *testing.T) {
			ti, _ := typ.Info()
			n := 256
			nb := n / ti.BlockSize
			checked := 0
			for trial := 0; trial < 40; trial++ {
				x := make([]float32, n)
				switch trial % 4 {
				case 0, 1: // ±127 in equal-sign pairs
					for i := 0; i < n; i += 2 {
						v := float32(127)
						if r.IntN(2) == 0 {
							v = -127
						}
						x[i], x[i+1] = v, v
					}
				default: // small values, one -127 per block for unit scales
					for i := range x {
						x[i] = float32(r.IntN(9) - 4)
					}
					for b := 0; b < n; b += 32 {
						x[b+r.IntN(32)] = -127
					}
				}
				row := randomBlocks(r, typ, nb)
				for b := 0; b < nb; b++ {
					blk := row[b*ti.BlockBytes : (b+1)*ti.BlockBytes]
					if trial%2 == 1 && ti.BlockSize > 1 {
						// Extreme quants: every quant and scale
						// byte all ones or all zeros.
						fill := byte(0xff)
						if r.IntN(3) == 0 {
							fill = 0
						}
						for i := range blk {
							blk[i] = fill
						}
					}
					for _, off := range halfFields[typ] {
						binary.LittleEndian.PutUint16(blk[off:], 0x3c00) // 1.0
					}
					if ti.BlockSize == 1 {
						v := float32(r.IntN(255) - 127)
						switch typ {
						case F32:
							binary.LittleEndian.PutUint32(blk, math.Float32bits(v))
						case F16:
							binary.LittleEndian.PutUint16(blk, F32ToF16(v))
						case BF16:
							binary.LittleEndian.PutUint16(blk, F32ToBF16(v))
						}
					}
				}
				xq := ConvertActivation(typ, x, nil)
				w := make([]float32, n)
				xd := make([]float32, n)
				if err := Dequantize(typ, row, w); err != nil {
					t.Fatal(err)
				}
				if err := Dequantize(VecDotType(typ), xq, xd); err != nil {
					t.Fatal(err)
				}
				var want, mag float64
				for i := range w {
					if w[i] != float32(math.Round(float64(w[i]))) || xd[i] != float32(math.Round(float64(xd[i]))) {
						t.Fatalf("trial %d: element %d not an integer: w=%g x=%g", trial, i, w[i], xd[i])
					}
					want += float64(w[i]) * float64(xd[i])
					mag += math.Abs(float64(w[i]) * float64(xd[i]))
				}
				if mag >= 1<<24 {
					continue // partial sums might round; not an exact case
				}
				if got := simdKernels[typ].dot(n, row, xq); float64(got) != want {
					t.Fatalf("trial %d: SIMD = %g, want exactly %g (reference %g)", trial, got, want, DotRow(typ, n, row, xq))
				}
				checked++
			}
			if checked < 20 {
				t.Errorf("only %d of 40 trials were exact cases", checked)
			}
		})
	}
}

// TestSIMDDotEdges feeds the kernels hostile values: subnormal, infinite
// and NaN scales, random bytes everywhere (for F32 that includes NaN and
// infinite weights), tiny activations. They must not crash; where the terms
// are finite and far from overflow the result must be within tolerance of
// the reference. Otherwise the two may legitimately differ: an infinite
// scale times a zero lane is NaN in one summation order and ±Inf in the
// other, and float32 lanes can overflow where the reference's float64 sum of
// the float types does not.
func TestSIMDDotEdges(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	specials := []uint16{0x0000, 0x8000, 0x0001, 0x03ff, 0x8001, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01}
	for _, typ := range simdTypes(t) {
		t.Run(typ.String(), func(t *testing.T) {
			ti, _ := typ.Info()
			const n = 512
			for trial := 0; trial < 200; trial++ {
				row := make([]byte, n/ti.BlockSize*ti.BlockBytes)
				for i := range row {
					row[i] = byte(r.Uint32())
				}
				for b := 0; b < len(row); b += ti.BlockBytes {
					for _, off := range halfFields[typ] {
						h := randomHalf(r)
						if r.IntN(4) == 0 {
							h = specials[r.IntN(len(specials))]
						}
						binary.LittleEndian.PutUint16(row[b+off:], h)
					}
				}
				if ti.BlockSize == 1 && typ != F32 {
					for i := 0; i < len(row); i += 2 {
						if r.IntN(50) == 0 {
							binary.LittleEndian.PutUint16(row[i:], specials[r.IntN(len(specials))])
						}
					}
				}
				x := randomVector(r, n)
				if trial%3 == 0 {
					for i := range x {
						x[i] *= 1e-30 // tiny activations: subnormal scales
					}
				}
				xq := ConvertActivation(typ, x, nil)
				want := DotRow(typ, n, row, xq)
				got := simdKernels[typ].dot(n, row, xq)
				mag := dotMagnitude(t, typ, n, row, xq)
				if !(mag < 1e37) {
					continue // non-finite or near-overflow terms
				}
				tol := simdTolerance(typ, n, mag, want)
				if d := math.Abs(float64(got) - float64(want)); !(d <= tol) {
					t.Fatalf("trial %d: SIMD %g, reference %g (diff %g > %g)", trial, got, want, d, tol)
				}
			}
		})
	}
}

// TestSIMDConvert: the SIMD activation conversions must produce exactly the
// reference quantizers' bytes, including on rounding ties (which the
// reference rounds away from zero), zeros, subnormals, tiny magnitudes whose
// reciprocal scale overflows, huge values, infinities and NaNs.
func TestSIMDConvert(t *testing.T) {
	if len(simdConvert) == 0 {
		t.Skipf("no SIMD conversions on this machine (SIMD() = %q)", SIMD())
	}
	ref := map[Type]func(x []float32, dst []byte){
		Q8_0: QuantizeQ8_0,
		Q8_K: QuantizeQ8_K,
		F16: func(x []float32, dst []byte) {
			for i, f := range x {
				putF16(dst[2*i:], F32ToF16(f))
			}
		},
	}
	r := rand.New(rand.NewPCG(39, 40))
	specials := []float32{0, float32(math.Copysign(0, -1)), 1e-45, -1e-40, 1e-38, 3e-37, 1e38, -3e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 65504, 65520, 6e-8}
	block := func(trial int) []float32 {
		x := make([]float32, 32)
		switch trial % 6 {
		case 0: // normal values
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
		case 1: // ties: amax 127 gives id = 1, so k+0.5 sits exactly between
			for i := range x {
				x[i] = float32(r.IntN(254)-127) + 0.5
			}
			x[r.IntN(32)] = 127
		case 2: // zero block
		case 3: // one special value among normal ones
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			x[r.IntN(32)] = specials[r.IntN(len(specials))]
		case 4: // all tiny or all huge
			scale := []float32{1e-39, 1e-37, 1e-30, 1e30, 1e37}[r.IntN(5)]
			for i := range x {
				x[i] = float32(r.NormFloat64()) * scale
			}
		case 5: // wide dynamic range
			for i := range x {
				x[i] = float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10)))
			}
		}
		return x
	}
	for vt, fast := range simdConvert {
		t.Run(vt.String(), func(t *testing.T) {
			for trial := 0; trial < 600; trial++ {
				nblocks := 1 + r.IntN(9)
				if vt == Q8_K {
					nblocks = 8 * (1 + r.IntN(3)) // 256-element blocks
				}
				var x []float32
				for b := 0; b < nblocks; b++ {
					x = append(x, block(trial+b)...)
				}
				if vt == Q8_K && trial%4 == 1 {
					// Ties for the largest magnitude with either sign
					// first: the reference takes the first one.
					m := float32(r.IntN(100) + 1)
					x[r.IntN(len(x))] = -m
					x[r.IntN(len(x))] = m
					for i := range x {
						if x[i] > m || x[i] < -m {
							x[i] /= 2 * x[i] / m
						}
					}
				}
				if vt == F16 && trial%3 == 0 {
					x = x[:len(x)-r.IntN(8)] // F16 rows need not be whole vectors
				}
				size, _ := RowBytes(vt, len(x))
				got, want := make([]byte, size), make([]byte, size)
				fast(x, got)
				ref[vt](x, want)
				if string(got) != string(want) {
					for i := range got {
						if got[i] != want[i] {
							t.Fatalf("trial %d: byte %d = %#x, reference %#x (input %v)", trial, i, got[i], want[i], x)
						}
					}
				}
			}
		})
	}
}
