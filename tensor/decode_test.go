package tensor

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestVecKernels: every decoding kernel must compute dotResidue to the bit
// from its prepared activations, for block counts around multiples of
// eight (whole groups, then the rest block by block), extreme quants and
// tiny activation scales.
func TestVecKernels(t *testing.T) {
	if len(vecKernels) == 0 {
		t.Log("no decoding kernels on this machine; MatMul uses the one-vector kernels")
	}
	r := rand.New(rand.NewPCG(57, 58))
	for typ, vk := range vecKernels {
		t.Run(typ.String(), func(t *testing.T) {
			ti, _ := typ.Info()
			for _, nb := range []int{1, 2, 7, 8, 9, 15, 16, 17, 22, 64, 70, 176} {
				for trial := range 4 {
					rows := randomTileRows(r, typ, nb, trial == 3, finiteSpecials)
					x := randomVector(r, nb*ti.BlockSize)
					if trial == 1 {
						for i := range x {
							x[i] *= 1e-30
						}
					}
					xq := ConvertActivation(typ, x, nil)
					row := rows[0]
					if trial == 2 {
						for i := range row {
							if i%ti.BlockBytes >= 2 {
								row[i] = 0x81
							}
						}
					}
					yv := make([]byte, vk.size(nb))
					vk.prep(xq, nb, yv)
					want := dotResidue(typ, nb, row, xq)
					got := vk.fn(&row[0], &yv[0], nb)
					if math.IsNaN(float64(got)) && math.IsNaN(float64(want)) {
						continue
					}
					if math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("nb=%d trial %d: kernel %g, dotResidue %g", nb, trial, got, want)
					}
					if vk.rows == nil {
						continue
					}
					// All the tile's rows in one call, from one buffer.
					var w []byte
					for _, rw := range rows {
						w = append(w, rw...)
					}
					out := make([]float32, len(rows))
					vk.rows(&w[0], len(rows[0]), &yv[0], nb, &out[0], len(rows))
					for i, rw := range rows {
						if want := dotResidue(typ, nb, rw, xq); math.Float32bits(out[i]) != math.Float32bits(want) {
							t.Fatalf("nb=%d trial %d: rows kernel row %d %g, dotResidue %g", nb, trial, i, out[i], want)
						}
					}
				}
			}
		})
	}
}

// finiteSpecials are tileSpecials without infinities and NaNs, which the
// exact reference cannot sum.
var finiteSpecials = []uint16{0x0000, 0x8000, 0x0001, 0x03ff, 0x7bff, 0xfbff}

// BenchmarkVecDot times the decoding kernels on a row of 4096 elements
// against prepared activations (compare BenchmarkDot's one-vector kernels).
func BenchmarkVecDot(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(1, 3))
	for typ, vk := range vecKernels {
		ti, _ := typ.Info()
		nb := n / ti.BlockSize
		row := randomBlocks(r, typ, nb)
		xq := ConvertActivation(typ, randomVector(r, n), nil)
		yv := make([]byte, vk.size(nb))
		vk.prep(xq, nb, yv)
		b.Run(typ.String(), func(b *testing.B) {
			cpuLoop(b, int64(len(row)), func() { vk.fn(&row[0], &yv[0], nb) })
		})
	}
}

func TestSumInt8x32(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	cases := [][]byte{make([]byte, 32), bytes32(0x80), bytes32(0x7f), bytes32(0xff)}
	for range 100 {
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		cases = append(cases, b)
	}
	for _, b := range cases {
		var want int32
		for _, q := range b {
			want += int32(int8(q))
		}
		if got := sumInt8x32(b); got != want {
			t.Fatalf("sumInt8x32(% x) = %d, want %d", b, got, want)
		}
	}
}

func bytes32(v byte) []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = v
	}
	return b
}
