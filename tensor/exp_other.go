//go:build !amd64 || purego

package tensor

// hasExpKernels is false: ExpSum and SiLUMul run the plain-Go expf.
const hasExpKernels = false

func expSumAVX2(x *float32, n int, m float32, s *[8]float64) {
	panic("tensor: no exp kernels on this platform")
}

func siluMulAVX2(x, y *float32, n int) { panic("tensor: no exp kernels on this platform") }
