package tensor

import (
	"encoding/binary"
)

// simdKernel is a machine-specific implementation of a Kernel's Dot, with
// an optional four-column variant for batched products.
//
// dot has Kernel.Dot's contract. Where the reference sums integers (the
// quantized types' block sums) it does so exactly; only the float part
// (scaling the block sums and adding them up) runs in a different order, in
// eight float32 lanes with fused multiply-adds, so its result differs from
// the reference by float rounding alone: at most (blocks+16)·2⁻²³ times the
// sum of the magnitudes of the scaled block terms (for F16, whose products
// are exact, (n/32+16)·2⁻²³·Σ|wᵢxᵢ|). F32 and BF16 keep the reference's
// float32 products and float64 sum, in lanes, and so are within one float32
// rounding of it (2⁻²⁴ relative, plus n·2⁻⁵⁰·Σ|wᵢxᵢ|). TestSIMDDot checks
// these bounds. Batched products use the kernels of gemm.go and
// f16batch.go, which give each vector exactly what dot gives it.
type simdKernel struct {
	dot func(n int, row, xq []byte) float32
}

// simdKernels holds this machine's kernels; an init function fills it when
// the CPU supports them, so it is read-only afterwards.
var simdKernels map[Type]simdKernel

// simdConvert holds this machine's activation conversions, keyed by the
// activation type; each produces exactly the reference's bytes.
var simdConvert map[Type]func(x []float32, dst []byte)

// simdName names the kernel set in use, for SIMD.
var simdName = "generic"

// useSIMD lets tests and benchmarks run MatMul on the reference kernels.
var useSIMD = true

// SIMD names the instruction set MatVec and MatMul use on this machine:
// "avx2" (AVX2, FMA and F16C, detected at run time on amd64: dot products
// for F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K-Q6_K, activation
// conversion to F16, Q8_0 and Q8_K) or "generic" (the plain-Go kernels:
// another architecture, an older CPU, or a build with the purego tag).
// There are no AVX-512 kernels: AVX-512 machines run the AVX2 ones.
//
// The SIMD kernels compute what the plain-Go ones do, with the integer
// block sums exact and only the float summation in a different order (F32
// and BF16 keep the reference's float64 sum, F16 sums as ggml's AVX2 code
// does); activations convert to the same bytes.
func SIMD() string {
	if !useSIMD {
		return "generic"
	}
	return simdName
}

// kernelFor returns the dot products MatMul uses for t: the SIMD ones when
// this machine has them, else the reference k.Dot.
func kernelFor(t Type, k Kernel) simdKernel {
	if useSIMD {
		if s, ok := simdKernels[t]; ok {
			return s
		}
	}
	return simdKernel{dot: k.Dot}
}

// readBytesGo is the portable bandwidth probe: it folds b into a checksum
// 8 bytes at a time with four independent chains.
func readBytesGo(b []byte) uint64 {
	var s0, s1, s2, s3 uint64
	for len(b) >= 32 {
		s0 ^= binary.LittleEndian.Uint64(b)
		s1 ^= binary.LittleEndian.Uint64(b[8:])
		s2 ^= binary.LittleEndian.Uint64(b[16:])
		s3 ^= binary.LittleEndian.Uint64(b[24:])
		b = b[32:]
	}
	return s0 ^ s1 ^ s2 ^ s3
}
