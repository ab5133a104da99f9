package tensor

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// gemmTypes lists the types with a tile kernel on this machine, skipping the
// test where there are none.
func gemmTypes(t testing.TB) []Type {
	var ts []Type
	for _, typ := range supportedTypes() {
		if gemmKernels[typ] != nil {
			ts = append(ts, typ)
		}
	}
	if len(ts) == 0 {
		t.Skipf("no tile kernels on this machine (SIMD() = %q)", SIMD())
	}
	return ts
}

// fma32 is a correctly rounded float32 fused multiply-add, computed exactly
// with big.Float (tests only: it is slow).
func fma32(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

// blockInt is the exact integer dot product of one Q4_0 or Q8_0 weight
// block with one Q8_0 activation block.
func blockInt(typ Type, w, y []byte) int32 {
	var s int32
	for k := range 32 {
		yv := int32(int8(y[2+k]))
		switch typ {
		case Q4_0:
			q := w[2+k%16]
			if k >= 16 {
				q >>= 4
			}
			s += (int32(q&15) - 8) * yv
		case Q8_0:
			s += int32(int8(w[2+k])) * yv
		}
	}
	return s
}

// blockIntK returns the exact integer sums of one Q4_K block with one Q8_K
// block: I = Σ_j sc_j·Σq·y over the eight sub-blocks and
// M = Σ_j m_j·(bsum_2j + bsum_2j+1).
func blockIntK(w, y []byte) (i, m int32) {
	for j := range 8 {
		sc, mn := scaleMinK4(j, w[4:16])
		var s int32
		for l := range 32 {
			q := w[16+32*(j/2)+l]
			if j%2 == 1 {
				q >>= 4
			}
			s += int32(q&15) * int32(int8(y[4+32*j+l]))
		}
		i += int32(sc) * s
		bs := int32(int16(binary.LittleEndian.Uint16(y[260+4*j:]))) + int32(int16(binary.LittleEndian.Uint16(y[262+4*j:])))
		m += int32(mn) * bs
	}
	return i, m
}

// dotResidue is the plain-Go definition of the residue order the Q4_0,
// Q8_0, Q4_K and Q6_K (dotResidueQ6K) SIMD kernels compute (see gemm.go): the exact block sums,
// scaled by dx·dy with one FMA into accumulator b mod 8 (for Q4_K then the
// mins term, -(M·dmin·dy), with a second), the accumulators added in
// hsum_float_8's order. With finite operands the kernels must agree with
// it to the bit.
func dotResidue(typ Type, nb int, row, xq []byte) float32 {
	if typ == Q6_K {
		return dotResidueQ6K(nb, row, xq)
	}
	ti, _ := typ.Info()
	vi, _ := VecDotType(typ).Info()
	var a [8]float32
	for b := range nb {
		w := row[b*ti.BlockBytes : (b+1)*ti.BlockBytes]
		y := xq[b*vi.BlockBytes : (b+1)*vi.BlockBytes]
		if typ == Q4_K {
			dy := math.Float32frombits(binary.LittleEndian.Uint32(y))
			s := F16ToF32(binary.LittleEndian.Uint16(w)) * dy
			t := F16ToF32(binary.LittleEndian.Uint16(w[2:])) * dy
			i, m := blockIntK(w, y)
			a[b%8] = fma32(float32(i), s, a[b%8])
			a[b%8] = fma32(-float32(m), t, a[b%8])
			continue
		}
		s := F16ToF32(binary.LittleEndian.Uint16(w)) * F16ToF32(binary.LittleEndian.Uint16(y))
		a[b%8] = fma32(float32(blockInt(typ, w, y)), s, a[b%8])
	}
	return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

// packRef is the plain-Go definition of the packed layout: per block, for
// each group e of four elements the four quants of rows 0..7 (Q4_0 as
// nibble values 0..15), then the eight rows' scales as float32 (converted
// as F16C does).
func packRef(typ Type, rows [][]byte, nb int) []byte {
	if typ == Q4_K {
		return packRefK(rows, nb)
	}
	if typ == Q6_K {
		return packRefQ6K(rows, nb)
	}
	ti, _ := typ.Info()
	out := make([]byte, nb*packBlock)
	for b := range nb {
		dst := out[b*packBlock:]
		for t, row := range rows {
			blk := row[b*ti.BlockBytes:]
			for k := range 32 {
				var q byte
				switch typ {
				case Q4_0:
					q = blk[2+k%16]
					if k >= 16 {
						q >>= 4
					}
					q &= 15
				case Q8_0:
					q = blk[2+k]
				}
				dst[(k/4)*32+t*4+k%4] = q
			}
			binary.LittleEndian.PutUint32(dst[256+4*t:], quietF16(binary.LittleEndian.Uint16(blk)))
		}
	}
	return out
}

// packRefK is packRef for Q4_K: the 64 groups of four nibble values, the
// sub-blocks' scales and mins as int16 pairs, then d and dmin as float32.
func packRefK(rows [][]byte, nb int) []byte {
	out := make([]byte, nb*packKBlock)
	for b := range nb {
		dst := out[b*packKBlock:]
		for t, row := range rows {
			blk := row[b*144 : (b+1)*144]
			for k := range 256 {
				j, l := k/32, k%32
				q := blk[16+32*(j/2)+l]
				if j%2 == 1 {
					q >>= 4
				}
				dst[(k/4)*32+t*4+k%4] = q & 15
			}
			for j := range 8 {
				sc, m := scaleMinK4(j, blk[4:16])
				for h := range 2 {
					binary.LittleEndian.PutUint16(dst[2048+32*j+4*t+2*h:], uint16(sc))
					binary.LittleEndian.PutUint16(dst[2304+32*j+4*t+2*h:], uint16(m))
				}
			}
			binary.LittleEndian.PutUint32(dst[2560+4*t:], quietF16(binary.LittleEndian.Uint16(blk)))
			binary.LittleEndian.PutUint32(dst[2592+4*t:], quietF16(binary.LittleEndian.Uint16(blk[2:])))
		}
	}
	return out
}

// gemmTile holds one tile's operands as MatMul prepares them: gemmRows
// weight rows ws bytes apart, packed, and gemmCols converted activation
// vectors with their block scales and sums.
type gemmTile struct {
	typ     Type
	g       *gemmKernel
	n, nb   int
	rows    [][]byte
	ws      int
	w, pk   []byte
	xq      []byte // converted activations, xb bytes each
	xb      int
	dy      []float32
	corr    []int32
	out     []float32
	ostride int
}

// newGemmTile prepares a tile of the given rows (each a whole row of typ,
// placed ws bytes apart) and activation vectors of n elements.
func newGemmTile(typ Type, n int, rows [][]byte, ws int, x [][]float32, ostride int) *gemmTile {
	ti, _ := typ.Info()
	g := gemmKernels[typ]
	tl := &gemmTile{typ: typ, g: g, n: n, nb: n / ti.BlockSize, rows: rows, ws: ws, ostride: ostride}
	tl.w = make([]byte, len(rows)*ws)
	for i, r := range rows {
		copy(tl.w[i*ws:], r)
	}
	tl.pk = make([]byte, tl.nb*g.block)
	tl.xb, _ = RowBytes(VecDotType(typ), n)
	tl.xq = make([]byte, len(x)*tl.xb)
	tl.dy = make([]float32, len(x)*tl.nb)
	tl.corr = make([]int32, len(x)*tl.nb)
	for j, v := range x {
		xq := ConvertActivation(typ, v, tl.xq[j*tl.xb:(j+1)*tl.xb])
		if g.dy {
			q8Sums(xq, tl.nb, tl.dy[j*tl.nb:(j+1)*tl.nb], tl.corr[j*tl.nb:(j+1)*tl.nb])
		}
	}
	tl.out = make([]float32, (gemmCols-1)*ostride+gemmRows)
	return tl
}

func (tl *gemmTile) run() {
	tl.g.pack(&tl.w[0], tl.ws, tl.nb, &tl.pk[0])
	tl.g.fn(&tl.pk[0], &tl.xq[0], tl.xb, &tl.dy[0], &tl.corr[0], tl.nb, tl.nb, &tl.out[0], tl.ostride)
}

// randomTileRows returns gemmRows random rows of nb blocks; with special
// set their bytes are random and their scales drawn from specials.
func randomTileRows(r *rand.Rand, typ Type, nb int, special bool, specials []uint16) [][]byte {
	ti, _ := typ.Info()
	rows := make([][]byte, gemmRows)
	for i := range rows {
		rows[i] = randomBlocks(r, typ, nb)
		if special {
			for k := range rows[i] {
				rows[i][k] = byte(r.Uint32())
			}
			for b := 0; b < len(rows[i]); b += ti.BlockBytes {
				for _, off := range halfFields[typ] {
					binary.LittleEndian.PutUint16(rows[i][b+off:], specials[r.IntN(len(specials))])
				}
			}
		}
	}
	return rows
}

var tileSpecials = []uint16{0x0000, 0x8000, 0x0001, 0x03ff, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01}

// TestResidueDot: the one-vector Q4_0, Q8_0, Q4_K and Q6_K kernels must compute
// dotResidue to the bit, for block counts around multiples of eight (the
// kernels do eight blocks at a time and the rest one by one), extreme
// quants and subnormal scales.
func TestResidueDot(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	for _, typ := range gemmTypes(t) {
		t.Run(typ.String(), func(t *testing.T) {
			dot := simdKernels[typ].dot
			ti, _ := typ.Info()
			quants := map[Type]int{Q4_0: 2, Q8_0: 2, Q4_K: 16}[typ]
			for _, nb := range []int{1, 2, 7, 8, 9, 15, 16, 17, 22, 64, 70, 176} {
				for trial := range 4 {
					rows := randomTileRows(r, typ, nb, false, nil)
					x := randomVector(r, nb*ti.BlockSize)
					if trial == 1 {
						for i := range x {
							x[i] *= 1e-30
						}
					}
					xq := ConvertActivation(typ, x, nil)
					row := rows[0]
					if trial == 2 {
						for b := 0; b < nb; b++ {
							blk := row[b*ti.BlockBytes : (b+1)*ti.BlockBytes]
							for k := quants; k < len(blk); k++ {
								blk[k] = 0x81 // Q8_0 -127; nibbles 1 and 8
							}
						}
					}
					want := dotResidue(typ, nb, row, xq)
					if got := dot(nb*ti.BlockSize, row, xq); math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("nb=%d trial %d: kernel %g, dotResidue %g", nb, trial, got, want)
					}
				}
			}
		})
	}
}

// TestPack: the packing kernels must write packRef's bytes.
func TestPack(t *testing.T) {
	r := rand.New(rand.NewPCG(49, 50))
	for _, typ := range gemmTypes(t) {
		ti, _ := typ.Info()
		for _, nb := range []int{1, 3, 64} {
			rows := randomTileRows(r, typ, nb, true, tileSpecials)
			ws := nb*ti.BlockBytes + r.IntN(3)
			w := make([]byte, gemmRows*ws)
			for i, row := range rows {
				copy(w[i*ws:], row)
			}
			got := make([]byte, nb*gemmKernels[typ].block)
			gemmKernels[typ].pack(&w[0], ws, nb, &got[0])
			if want := packRef(typ, rows, nb); !bytes.Equal(got, want) {
				t.Fatalf("%s nb=%d: packed bytes differ from packRef", typ, nb)
			}
		}
	}
}

// TestGemmTile: every result of an eight-row kernel must be bit-identical
// (NaNs included) to the type's one-vector kernel for that row and vector,
// for random rows, rows of random bytes with special scales, zero
// activation blocks, block counts that are not multiples of eight, rows
// spaced more widely than their size and outputs spaced ostride apart.
func TestGemmTile(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, typ := range gemmTypes(t) {
		t.Run(typ.String(), func(t *testing.T) {
			ti, _ := typ.Info()
			dot := simdKernels[typ].dot
			for trial := 0; trial < 60; trial++ {
				nb := 1 + r.IntN(20)
				if trial < 4 {
					nb = []int{1, 8, 64, 176}[trial]
				}
				n := nb * ti.BlockSize
				rows := randomTileRows(r, typ, nb, trial%5 == 4, tileSpecials)
				x := make([][]float32, gemmCols)
				for j := range x {
					x[j] = randomVector(r, n)
					if trial%3 == 1 {
						clear(x[j][:min(n, 64)])
					}
				}
				ws := len(rows[0]) + r.IntN(3)*ti.BlockBytes
				tl := newGemmTile(typ, n, rows, ws, x, gemmRows+r.IntN(5))
				tl.run()
				for i := range gemmRows {
					for j := range gemmCols {
						got := tl.out[j*tl.ostride+i]
						want := dot(n, rows[i], tl.xq[j*tl.xb:(j+1)*tl.xb])
						if math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("nb=%d trial %d row %d vector %d: tile %g, dot %g", nb, trial, i, j, got, want)
						}
					}
				}
			}
		})
	}
}

// TestMatMulTileEdges runs MatMul through the tile kernels with row and
// vector counts around the tile shape (leftover rows and vectors go through
// the one-vector kernel) and checks each result against MatVec to the bit.
func TestMatMulTileEdges(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	defer SetThreads(Threads())
	SetThreads(2)
	for _, typ := range gemmTypes(t) {
		for _, shape := range [][3]int{{256, 8, 4}, {256, 16, 3}, {256, 7, 4}, {512, 9, 5}, {768, 130, 8}, {2048, 64, 7}} {
			cols, rows, n := shape[0], shape[1], shape[2]
			w := randomTensor(r, typ, cols, rows)
			x := randomVector(r, n*cols)
			out := make([]float32, n*rows)
			if err := MatMul(w, x, n, out); err != nil {
				t.Fatal(err)
			}
			one := make([]float32, rows)
			for v := range n {
				if err := MatVec(w, x[v*cols:(v+1)*cols], one); err != nil {
					t.Fatal(err)
				}
				for i := range one {
					if math.Float32bits(out[v*rows+i]) != math.Float32bits(one[i]) {
						t.Fatalf("%s %v: vector %d row %d: MatMul %g, MatVec %g", typ, shape, v, i, out[v*rows+i], one[i])
					}
				}
			}
		}
	}
}

// BenchmarkGemmTile times one tile (eight rows of 2048 elements against four
// vectors, all in cache) on one thread: packing the rows, the eight-row
// kernel on packed rows, and the same 32 dots done by the one-vector kernel;
// cpu-GMAC/s is multiply-adds per second of the thread's CPU time.
func BenchmarkGemmTile(b *testing.B) {
	const n = 2048
	r := rand.New(rand.NewPCG(45, 46))
	for _, typ := range gemmTypes(b) {
		ti, _ := typ.Info()
		rows := randomTileRows(r, typ, n/ti.BlockSize, false, nil)
		x := make([][]float32, gemmCols)
		for j := range x {
			x[j] = randomVector(r, n)
		}
		tl := newGemmTile(typ, n, rows, len(rows[0]), x, gemmRows)
		tl.run()
		macs := float64(gemmRows * gemmCols * n)
		k := simdKernels[typ]
		b.Run(typ.String()+"/dot", func(b *testing.B) {
			cpuOpsLoop(b, macs, "GMAC/s", func() {
				for i := range gemmRows {
					for j := range gemmCols {
						tl.out[j*gemmRows+i] = k.dot(n, rows[i], tl.xq[j*tl.xb:(j+1)*tl.xb])
					}
				}
			})
		})
		b.Run(typ.String()+"/pack", func(b *testing.B) {
			cpuOpsLoop(b, float64(gemmRows*n), "Gelem/s", func() { tl.g.pack(&tl.w[0], tl.ws, tl.nb, &tl.pk[0]) })
		})
		b.Run(typ.String()+"/tile", func(b *testing.B) {
			cpuOpsLoop(b, macs, "GMAC/s", func() {
				tl.g.fn(&tl.pk[0], &tl.xq[0], tl.xb, &tl.dy[0], &tl.corr[0], tl.nb, tl.nb, &tl.out[0], tl.ostride)
			})
		})
	}
}
