//go:build amd64 && !purego

package tensor

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// The assembly kernels of simd_amd64.s. Each takes a row of weights x and
// activations y as the reference kernel does, with n the element count for
// the float types and the block count nb for the quantized ones. They read
// exactly the bytes the reference reads.

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

//go:noescape
func dotF32AVX2(x, y *byte, n int) float32

//go:noescape
func dotF16AVX2(x, y *byte, n int) float32

//go:noescape
func dotBF16AVX2(x, y *byte, n int) float32

//go:noescape
func dotQ4_1AVX2(x, y *byte, nb int) float32

//go:noescape
func dotQ5_0AVX2(x, y *byte, nb int) float32

//go:noescape
func dotQ5_1AVX2(x, y *byte, nb int) float32

//go:noescape
func dotQ2_KAVX2(x, y *byte, nb int) float32

//go:noescape
func dotQ3_KAVX2(x, y *byte, nb int) float32

//go:noescape
func dotQ5_KAVX2(x, y *byte, nb int) float32

//go:noescape
func readAVX2(p *byte, n int) uint64

//go:noescape
func f32ToF16AVX2(dst *byte, src *float32, n int)

//go:noescape
func quantQ8AVX2(dst *byte, src *float32, nb, bstride, qoff int) int

//go:noescape
func quantQ8KAVX2(dst *byte, src *float32, nb int) int

// hasAVX2 reports whether the AVX2 kernels can run: AVX2 and FMA with OS
// support for the YMM state (which x/sys/cpu checks), and F16C for the half
// conversions, which x/sys/cpu does not report (CPUID leaf 1, ECX bit 29).
var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && hasF16C()

func hasF16C() bool {
	_, _, c, _ := cpuid(1, 0)
	return c&(1<<29) != 0
}

// ptr is the address of b's first byte, or nil for an empty slice; the
// kernels do not touch memory when their count is zero.
func ptr(b []byte) *byte { return unsafe.SliceData(b) }

func init() {
	if !hasAVX2 {
		return
	}
	simdName = "avx2"
	simdConvert = map[Type]func(x []float32, dst []byte){
		F16:  convertF16AVX2,
		Q8_0: quantizeQ8_0AVX2,
		Q8_K: quantizeQ8_KAVX2,
	}
	block := func(f func(x, y *byte, nb int) float32, bs int) func(n int, row, xq []byte) float32 {
		return func(n int, row, xq []byte) float32 { return f(ptr(row), ptr(xq), n/bs) }
	}
	elem := func(f func(x, y *byte, n int) float32) func(n int, row, xq []byte) float32 {
		return func(n int, row, xq []byte) float32 { return f(ptr(row), ptr(xq), n) }
	}
	simdKernels = map[Type]simdKernel{
		F32:  {dot: elem(dotF32AVX2)},
		F16:  {dot: elem(dotF16AVX2)},
		BF16: {dot: elem(dotBF16AVX2)},
		Q8_0: {dot: block(dotQ8_0rAVX2, qk)},
		Q4_0: {dot: block(dotQ4_0rAVX2, qk)},
		Q4_1: {dot: block(dotQ4_1AVX2, qk)},
		Q5_0: {dot: block(dotQ5_0AVX2, qk)},
		Q5_1: {dot: block(dotQ5_1AVX2, qk)},
		Q2_K: {dot: block(dotQ2_KAVX2, qkK)},
		Q3_K: {dot: block(dotQ3_KAVX2, qkK)},
		Q4_K: {dot: block(dotQ4_KrAVX2, qkK)},
		Q5_K: {dot: block(dotQ5_KAVX2, qkK)},
		Q6_K: {dot: block(dotQ6_KrAVX2, qkK)},
	}
}

// readBytes streams through b (whose length is a multiple of 128) and
// returns a checksum of it.
func readBytes(b []byte) uint64 {
	if hasAVX2 {
		return readAVX2(ptr(b), len(b))
	}
	return readBytesGo(b)
}

// convertF16AVX2 is ConvertActivation's F16 case: F32ToF16 for every
// element, eight at a time.
func convertF16AVX2(x []float32, dst []byte) {
	n := len(x) &^ 7
	if n > 0 {
		_ = dst[2*n-1]
		f32ToF16AVX2(&dst[0], &x[0], n)
	}
	for i := n; i < len(x); i++ {
		putF16(dst[2*i:], F32ToF16(x[i]))
	}
}

// quantizeQ8_0AVX2 is QuantizeQ8_0 (byte for byte) for whole blocks: the
// assembly does the blocks it can reproduce exactly and the scalar code the
// rest (non-finite values, magnitudes so small that 1/d overflows).
func quantizeQ8_0AVX2(x []float32, dst []byte) {
	nb := blocks(Q8_0, x, dst)
	for i := 0; i < nb; {
		i += quantQ8AVX2(&dst[i*34], &x[i*qk], nb-i, 34, 2)
		if i < nb {
			QuantizeQ8_0(x[i*qk:(i+1)*qk], dst[i*34:(i+1)*34])
			i++
		}
	}
}

// quantizeQ8_KAVX2 is QuantizeQ8_K (byte for byte) for whole blocks, with
// the scalar code for the blocks the assembly leaves (all zero, non-finite
// or tiny values).
func quantizeQ8_KAVX2(x []float32, dst []byte) {
	nb := blocks(Q8_K, x, dst)
	for i := 0; i < nb; {
		i += quantQ8KAVX2(&dst[i*292], &x[i*qkK], nb-i)
		if i < nb {
			QuantizeQ8_K(x[i*qkK:(i+1)*qkK], dst[i*292:(i+1)*292])
			i++
		}
	}
}
