package tensor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// q6kGemm returns the eight-row Q6_K kernel and the Q6_K one-vector
// kernel, skipping the test on machines without them.
func q6kGemm(t testing.TB) (*gemmKernel, func(n int, row, xq []byte) float32) {
	g := gemmKernels[Q6_K]
	if g == nil {
		t.Skipf("no Q6_K tile kernel on this machine (SIMD() = %q)", SIMD())
	}
	return g, simdKernels[Q6_K].dot
}

// q6kQuant is the 6-bit quant (0..63, standing for q-32) of element k of
// the Q6_K block w, as dequantQ6_K reads it.
func q6kQuant(w []byte, k int) int32 {
	h, m := k/128, k%128
	g, l := m/32, m%32
	ql := w[64*h+32*(g&1)+l]
	if g >= 2 {
		ql >>= 4
	}
	qh := w[128+32*h+l] >> (2 * g) & 3
	return int32(ql&15 | qh<<4)
}

// blockIntQ6K is the exact integer dot product of a Q6_K block with a Q8_K
// block, Σ_k sc_(k/16)·(q_k-32)·y_k, computed element by element (not
// through the bsums the kernels use).
func blockIntQ6K(w, y []byte) int32 {
	var s int32
	for k := range 256 {
		s += int32(int8(w[192+k/16])) * (q6kQuant(w, k) - 32) * int32(int8(y[4+k]))
	}
	return s
}

// dotResidueQ6K is dotResidue for Q6_K: each block's exact sum I scaled by
// d·dy (d converted from fp16, dy the Q8_K float32 scale) with one FMA into
// accumulator b mod 8, the accumulators added in hsum_float_8's order.
func dotResidueQ6K(nb int, row, xq []byte) float32 {
	var a [8]float32
	for b := range nb {
		w := row[b*210 : (b+1)*210]
		y := xq[b*292 : (b+1)*292]
		s := F16ToF32(binary.LittleEndian.Uint16(w[208:])) * math.Float32frombits(binary.LittleEndian.Uint32(y))
		a[b%8] = fma32(float32(blockIntQ6K(w, y)), s, a[b%8])
	}
	return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

// packRefQ6K is the plain-Go definition of the packed Q6_K layout (see
// packQ6KBlock).
func packRefQ6K(rows [][]byte, nb int) []byte {
	out := make([]byte, nb*packQ6KBlock)
	for b := range nb {
		dst := out[b*packQ6KBlock : (b+1)*packQ6KBlock]
		for t, row := range rows {
			blk := row[b*210 : (b+1)*210]
			for k := range 256 {
				dst[(k/4)*32+4*t+k%4] = byte(q6kQuant(blk, k))
			}
			for j := range 16 {
				sc := uint16(int8(blk[192+j]))
				binary.LittleEndian.PutUint16(dst[2048+32*j+4*t:], sc)
				binary.LittleEndian.PutUint16(dst[2048+32*j+4*t+2:], sc)
				binary.LittleEndian.PutUint16(dst[2560+32*(j/2)+4*t+2*(j%2):], uint16(-32*int16(int8(blk[192+j]))))
			}
			binary.LittleEndian.PutUint32(dst[2816+4*t:], quietF16(binary.LittleEndian.Uint16(blk[208:])))
		}
	}
	return out
}

// extremeQ8K returns nb Q8_K blocks whose quants are all v (or, for v ==
// 0, random over the whole int8 range, -128 included, which the quantizer
// never makes but the kernels must take), with consistent bsums and a
// random scale.
func extremeQ8K(r *rand.Rand, nb int, v int8) []byte {
	out := make([]byte, nb*292)
	for b := range nb {
		y := out[b*292 : (b+1)*292]
		binary.LittleEndian.PutUint32(y, math.Float32bits(float32(r.NormFloat64())))
		for j := range 16 {
			var s int16
			for l := range 16 {
				q := v
				if v == 0 {
					q = int8(r.Uint32())
				}
				y[4+16*j+l] = byte(q)
				s += int16(q)
			}
			binary.LittleEndian.PutUint16(y[260+2*j:], uint16(s))
		}
	}
	return out
}

// extremeQ6K sets every quant of the blocks of row to q (0..63) and every
// scale to sc, keeping their d.
func extremeQ6K(row []byte, q byte, sc int8) {
	for b := 0; b < len(row); b += 210 {
		blk := row[b : b+210]
		for i := range 128 {
			blk[i] = q&15 | q<<4
		}
		h := q >> 4
		for i := 128; i < 192; i++ {
			blk[i] = h | h<<2 | h<<4 | h<<6
		}
		for i := 192; i < 208; i++ {
			blk[i] = byte(sc)
		}
	}
}

// q6kCase makes one row and activation vector of nb blocks for trial
// (cycling through random rows and activations, tiny activations, the
// largest products of either sign, and random quants against activations
// over the whole int8 range).
func q6kCase(r *rand.Rand, nb, trial int) (row, xq []byte) {
	row = randomBlocks(r, Q6_K, nb)
	switch trial % 5 {
	case 0:
		xq = ConvertActivation(Q6_K, randomVector(r, nb*256), nil)
	case 1:
		x := randomVector(r, nb*256)
		for i := range x {
			x[i] *= 1e-30
		}
		xq = ConvertActivation(Q6_K, x, nil)
	case 2:
		extremeQ6K(row, 63, -128)
		xq = extremeQ8K(r, nb, -128)
	case 3:
		extremeQ6K(row, 0, -128)
		xq = extremeQ8K(r, nb, 127)
	case 4:
		xq = extremeQ8K(r, nb, 0)
	}
	return row, xq
}

// TestResidueDotQ6K: the one-vector Q6_K kernel must compute dotResidueQ6K
// to the bit, for block counts around multiples of eight (it flushes eight
// blocks at a time), tiny activations, the extreme quants, scales and
// activations, and activations of -128.
func TestResidueDotQ6K(t *testing.T) {
	_, dot := q6kGemm(t)
	r := rand.New(rand.NewPCG(61, 62))
	for _, nb := range []int{1, 2, 7, 8, 9, 15, 16, 17, 22, 64, 70, 176} {
		for trial := range 10 {
			row, xq := q6kCase(r, nb, trial)
			want := dotResidueQ6K(nb, row, xq)
			if got := dot(nb*256, row, xq); math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("nb=%d trial %d: kernel %g, dotResidueQ6K %g", nb, trial, got, want)
			}
		}
	}
}

// TestPackQ6K: the packer must write packRefQ6K's bytes, for rows of random
// bytes with special scales (NaNs and infinities among them) spaced more
// widely than their size.
func TestPackQ6K(t *testing.T) {
	g, _ := q6kGemm(t)
	r := rand.New(rand.NewPCG(63, 64))
	for _, nb := range []int{1, 3, 8, 64} {
		rows := randomTileRows(r, Q6_K, nb, true, tileSpecials)
		ws := nb*210 + r.IntN(3)
		w := make([]byte, gemmRows*ws)
		for i, row := range rows {
			copy(w[i*ws:], row)
		}
		got := make([]byte, nb*g.block+1)
		got[len(got)-1] = 0x5a
		g.pack(&w[0], ws, nb, &got[0])
		if got[len(got)-1] != 0x5a {
			t.Fatalf("nb=%d: packer wrote past its blocks", nb)
		}
		if want := packRefQ6K(rows, nb); !bytes.Equal(got[:nb*g.block], want) {
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("nb=%d: packed byte %d (block %d, offset %d) is %#x, packRefQ6K has %#x", nb, i, i/g.block, i%g.block, got[i], want[i])
				}
			}
		}
	}
}

// TestGemmTileQ6K: every result of the eight-row Q6_K kernel must equal the
// one-vector kernel's to the bit (NaNs included, for rows with special
// scales) and, for finite operands, dotResidueQ6K's, with extreme quants
// and activations, block counts that are not multiples of eight and
// outputs spaced ostride apart.
func TestGemmTileQ6K(t *testing.T) {
	_, dot := q6kGemm(t)
	r := rand.New(rand.NewPCG(65, 66))
	for trial := range 40 {
		nb := 1 + r.IntN(20)
		if trial < 5 {
			nb = []int{1, 8, 9, 64, 176}[trial]
		}
		n := nb * 256
		special := trial%7 == 6
		rows := randomTileRows(r, Q6_K, nb, special, tileSpecials)
		x := make([][]float32, gemmCols)
		for j := range x {
			x[j] = randomVector(r, n)
		}
		ws := nb*210 + r.IntN(3)*210
		tl := newGemmTile(Q6_K, n, rows, ws, x, gemmRows+r.IntN(5))
		// Replace some rows and vectors with q6kCase's extremes.
		for i := range rows {
			if r.IntN(3) == 0 {
				row, _ := q6kCase(r, nb, 2+r.IntN(2))
				copy(rows[i], row)
				copy(tl.w[i*ws:], row)
			}
		}
		for j := range gemmCols {
			if r.IntN(2) == 0 {
				copy(tl.xq[j*tl.xb:], extremeQ8K(r, nb, []int8{0, -128, 127}[r.IntN(3)]))
			}
		}
		tl.run()
		for i := range gemmRows {
			for j := range gemmCols {
				xq := tl.xq[j*tl.xb : (j+1)*tl.xb]
				got := tl.out[j*tl.ostride+i]
				want := dot(n, rows[i], xq)
				if math.Float32bits(got) != math.Float32bits(want) {
					t.Fatalf("nb=%d trial %d row %d vector %d: tile %g, dot %g", nb, trial, i, j, got, want)
				}
				if !special {
					if ref := dotResidueQ6K(nb, rows[i], xq); math.Float32bits(got) != math.Float32bits(ref) {
						t.Fatalf("nb=%d trial %d row %d vector %d: tile %g, dotResidueQ6K %g", nb, trial, i, j, got, ref)
					}
				}
			}
		}
	}
}

// TestMatMulQ6K: MatMul through the eight-row Q6_K kernel (with leftover
// rows and vectors through the one-vector kernel) must give each vector
// what MatVec gives it to the bit, on one thread and two, and MatVec what
// dotResidueQ6K gives.
func TestMatMulQ6K(t *testing.T) {
	_, _ = q6kGemm(t)
	r := rand.New(rand.NewPCG(67, 68))
	defer SetThreads(Threads())
	for _, threads := range []int{1, 2} {
		SetThreads(threads)
		for _, shape := range [][3]int{{256, 8, 4}, {512, 13, 5}, {256, 7, 4}, {768, 130, 7}, {2304, 64, 9}, {2048, 40, 4}} {
			cols, rows, n := shape[0], shape[1], shape[2]
			w := randomTensor(r, Q6_K, cols, rows)
			x := randomVector(r, n*cols)
			out := make([]float32, n*rows)
			if err := MatMul(w, x, n, out); err != nil {
				t.Fatal(err)
			}
			one := make([]float32, rows)
			for v := range n {
				xv := x[v*cols : (v+1)*cols]
				if err := MatVec(w, xv, one); err != nil {
					t.Fatal(err)
				}
				xq := ConvertActivation(Q6_K, xv, nil)
				for i := range one {
					if math.Float32bits(out[v*rows+i]) != math.Float32bits(one[i]) {
						t.Fatalf("threads %d %v: vector %d row %d: MatMul %g, MatVec %g", threads, shape, v, i, out[v*rows+i], one[i])
					}
					if v == 0 {
						rb := w.RowBytes()
						if ref := dotResidueQ6K(cols/256, w.Data[i*rb:(i+1)*rb], xq); math.Float32bits(one[i]) != math.Float32bits(ref) {
							t.Fatalf("threads %d %v: row %d: MatVec %g, dotResidueQ6K %g", threads, shape, i, one[i], ref)
						}
					}
				}
			}
		}
	}
}

// BenchmarkMatMulQ6K times batched Q6_K products of the shapes Q4_K_M
// models give Q6_K (TinyLlama's ffn_down, 5632 → 2048, and attn_v, 2048 →
// 256) on Threads() threads, through the eight-row kernel ("simd") or the
// plain-Go one ("ref"); cpu-GFLOP/s is per second of process CPU time
// divided by the threads (see parallelLoop).
func BenchmarkMatMulQ6K(b *testing.B) {
	r := rand.New(rand.NewPCG(69, 70))
	for _, shape := range [][3]int{{5632, 2048, 64}, {2048, 256, 64}} {
		cols, rows, n := shape[0], shape[1], shape[2]
		w := randomTensor(r, Q6_K, cols, rows)
		x := randomVector(r, n*cols)
		out := make([]float32, n*rows)
		for _, m := range kernelModes() {
			b.Run(fmt.Sprintf("%dx%d/n%d/%s", rows, cols, n, m.name), func(b *testing.B) {
				withSIMD(m.on, func() {
					perOp := parallelLoop(b, int64(len(w.Data)), Threads(), func() {
						if err := MatMul(w, x, n, out); err != nil {
							b.Fatal(err)
						}
					})
					if perOp > 0 {
						b.ReportMetric(2*float64(cols*rows*n)/perOp/1e9, "cpu-GFLOP/s")
					}
				})
			})
		}
	}
}
