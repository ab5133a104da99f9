//go:build amd64 && !purego

package tensor

// The Q6_K kernels of gemm_q6k_amd64.s: dotQ6_KrAVX2 is the one-vector
// kernel (simd_amd64.go's Q6_K dot), packQ6_KAVX2 and gemmQ6_Kx8AVX2 the
// packer and eight-row kernel (see gemmKernel for their arguments).

//go:noescape
func dotQ6_KrAVX2(x, y *byte, nb int) float32

//go:noescape
func packQ6_KAVX2(w *byte, stride, nb int, dst *byte)

//go:noescape
func gemmQ6_Kx8AVX2(pk, y *byte, xb int, dy *float32, corr *int32, ds, nb int, out *float32, os int)

// init registers the eight-row Q6_K kernel. Package init functions run in
// file-name order, so gemm_amd64.go's, which makes gemmKernels, has run.
func init() {
	if !hasAVX2 {
		return
	}
	if gemmKernels == nil {
		gemmKernels = map[Type]*gemmKernel{}
	}
	gemmKernels[Q6_K] = &gemmKernel{fn: gemmQ6_Kx8AVX2, pack: packQ6_KAVX2, block: packQ6KBlock}
}
