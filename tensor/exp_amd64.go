//go:build amd64 && !purego

package tensor

// hasExpKernels reports whether the AVX2+FMA exponentials of exp_amd64.s can
// run: they need what the dot-product kernels need.
var hasExpKernels = hasAVX2

//go:noescape
func expSumAVX2(x *float32, n int, m float32, s *[8]float64)

//go:noescape
func siluMulAVX2(x, y *float32, n int)
