package tensor

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func supportedTypes() []Type {
	return []Type{F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K}
}

func randomVector(r *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// activationError bounds |x_i - dequantized x_i| for each element of x after
// conversion to vt: half a quantization step plus the rounding of the stored
// scale, bounded generously by a full step.
func activationError(vt Type, x []float32) []float64 {
	e := make([]float64, len(x))
	switch vt {
	case F16:
		for i, v := range x {
			e[i] = math.Abs(float64(v)) * 0x1p-11
		}
	case BF16:
		for i, v := range x {
			e[i] = math.Abs(float64(v)) * 0x1p-8
		}
	case Q8_0, Q8_1, Q8_K:
		ti, _ := vt.Info()
		for b := 0; b < len(x); b += ti.BlockSize {
			var amax float64
			for _, v := range x[b : b+ti.BlockSize] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			for i := b; i < b+ti.BlockSize; i++ {
				e[i] = amax / 127
			}
		}
	}
	return e
}

// TestDotRow checks each kernel against dequantize-then-dot. Against the
// dequantized activations the only differences are float rounding (and, for
// the _1 types, ggml's fp16 rounding of the block sum s); against the
// original activations the difference is bounded by the activation
// quantization error.
func TestDotRow(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const n = 512
	for _, typ := range supportedTypes() {
		t.Run(typ.String(), func(t *testing.T) {
			ti, _ := typ.Info()
			vt := VecDotType(typ)
			for trial := 0; trial < 20; trial++ {
				row := randomBlocks(r, typ, n/ti.BlockSize)
				x := randomVector(r, n)
				if trial == 0 {
					clear(x[:64]) // an all-zero activation block
				}
				xq := ConvertActivation(typ, x, nil)
				w := make([]float32, n)
				xd := make([]float32, n)
				if err := Dequantize(typ, row, w); err != nil {
					t.Fatal(err)
				}
				if err := Dequantize(vt, xq, xd); err != nil {
					t.Fatal(err)
				}
				got := float64(DotRow(typ, n, row, xq))

				var ref, refAbs, exact, bound float64
				aerr := activationError(vt, x)
				for i := range w {
					ref += float64(w[i]) * float64(xd[i])
					refAbs += math.Abs(float64(w[i]) * float64(xd[i]))
					exact += float64(w[i]) * float64(x[i])
					bound += math.Abs(float64(w[i])) * aerr[i]
				}
				tol := 1e-5*refAbs + 1e-30
				if vt == Q8_1 {
					// Σ m·s uses s rounded to fp16: relative error 2^-11.
					mOff := map[Type]int{Q4_1: 2, Q5_1: 2}[typ]
					for b := 0; b < n/32; b++ {
						m := math.Abs(float64(h16(row[b*ti.BlockBytes+mOff:])))
						s := math.Abs(float64(h16(xq[b*36+2:])))
						tol += m * s * 0x1p-10
					}
				}
				if math.Abs(got-ref) > tol {
					t.Fatalf("trial %d: DotRow = %g, dequantized dot = %g (diff %g > %g)", trial, got, ref, math.Abs(got-ref), tol)
				}
				if math.Abs(got-exact) > bound+tol {
					t.Fatalf("trial %d: DotRow = %g, exact dot = %g (diff %g > bound %g)", trial, got, exact, math.Abs(got-exact), bound+tol)
				}
			}
		})
	}
}

// TestDotRowExact uses values for which every operation is exact: small
// integer activations whose blocks each hold a -127 (so every Q8 scale is
// exactly 1 and the activations convert without loss), and weight blocks
// whose fp16 scales are 1, so the weights are small integers. The kernels
// must then return the true dot product to the bit.
func TestDotRowExact(t *testing.T) {
	const n = 256
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i%7 - 3)
	}
	for b := 0; b < n; b += 32 {
		x[b+5] = -127
	}
	for _, typ := range supportedTypes() {
		t.Run(typ.String(), func(t *testing.T) {
			ti, _ := typ.Info()
			row := randomBlocks(rand.New(rand.NewPCG(11, uint64(typ))), typ, n/ti.BlockSize)
			for b := 0; b < n/ti.BlockSize; b++ {
				blk := row[b*ti.BlockBytes:]
				for _, off := range halfFields[typ] {
					binary.LittleEndian.PutUint16(blk[off:], 0x3c00) // 1.0
				}
				if ti.BlockSize == 1 { // float types: small integers
					v := float32(int(blk[0])%9 - 4)
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
			var want float64
			for i := range w {
				if w[i] != float32(math.Round(float64(w[i]))) {
					t.Fatalf("weight %d = %g is not an integer", i, w[i])
				}
				if xd[i] != x[i] {
					t.Fatalf("activation %d did not survive conversion exactly: %g -> %g", i, x[i], xd[i])
				}
				want += float64(w[i]) * float64(x[i])
			}
			if got := DotRow(typ, n, row, xq); float64(got) != want {
				t.Errorf("DotRow = %g, want exactly %g", got, want)
			}
		})
	}
}

func TestDotRowPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"unsupported", func() { DotRow(IQ2_XXS, 256, make([]byte, 66), make([]byte, 292)) }, "IQ2_XXS"},
		{"short row", func() { DotRow(Q4_0, 32, make([]byte, 17), make([]byte, 34)) }, "row has 17 bytes"},
		{"short activations", func() { DotRow(Q4_K, 256, make([]byte, 144), make([]byte, 291)) }, "activations 291"},
		{"partial block", func() { DotRow(Q8_0, 40, make([]byte, 34), make([]byte, 34)) }, "not a multiple"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := mustPanic(t, tc.f)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("panic %q does not mention %q", msg, tc.want)
			}
		})
	}
}

func mustPanic(t *testing.T, f func()) (msg string) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("did not panic")
		}
		switch v := r.(type) {
		case error:
			msg = v.Error()
		case string:
			msg = v
		}
	}()
	f()
	return ""
}

func BenchmarkDotRow(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(1, 1))
	for _, typ := range supportedTypes() {
		ti, _ := typ.Info()
		row := randomBlocks(r, typ, n/ti.BlockSize)
		xq := ConvertActivation(typ, randomVector(r, n), nil)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(len(row)))
			for b.Loop() {
				DotRow(typ, n, row, xq)
			}
		})
	}
}

func BenchmarkDequantize(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range supportedTypes() {
		ti, _ := typ.Info()
		src := randomBlocks(r, typ, n/ti.BlockSize)
		dst := make([]float32, n)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if err := Dequantize(typ, src, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
