//go:build amd64 && !purego

package tensor

import "encoding/binary"

//go:noescape
func dotF16x3AVX2(x *byte, y *float32, ystride, n32 int, out *float64)

//go:noescape
func widenF16AVX2(dst *float32, src *byte, n int)

func init() {
	if hasAVX2 {
		f16Batch = &f16BatchKernel{dot3: dotF16x3, widen: widenF16}
	}
}

// dotF16x3 writes the dot products of the F16 weight row with the three
// float32 activation rows at y, y[ystride:] and y[2·ystride:] to out[0],
// out[ostride] and out[2·ostride], each bit-identical to dotF16AVX2 with
// the activations as halves.
func dotF16x3(n int, row []byte, y []float32, ystride int, out []float32, ostride int) {
	_ = row[2*n-1]
	_ = y[2*ystride+n-1]
	_ = out[2*ostride]
	n32 := n &^ 31
	var acc [3]float64
	if n32 > 0 {
		dotF16x3AVX2(&row[0], &y[0], 4*ystride, n32/32, &acc[0])
	}
	for v := range 3 {
		a := acc[v]
		yv := y[v*ystride : v*ystride+n]
		for i := n32; i < n; i++ {
			a += float64(quietF16AsF32(binary.LittleEndian.Uint16(row[2*i:])) * yv[i])
		}
		out[v*ostride] = float32(a)
	}
}

// widenF16 converts the halves in src to float32 in dst.
func widenF16(dst []float32, src []byte) {
	n := len(dst) &^ 7
	if n > 0 {
		_ = src[2*n-1]
		widenF16AVX2(&dst[0], &src[0], n)
	}
	for i := n; i < len(dst); i++ {
		dst[i] = quietF16AsF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}
