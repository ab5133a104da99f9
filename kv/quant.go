package kv

import (
	"fmt"
	"math"

	"tamp/tensor"
)

// Quant configures KIVI-style quantization of the cache (Liu et al., "KIVI: A
// Tuning-Free Asymmetric 2bit Quantization for KV Cache", ICML 2024; code
// jy-yuan/KIVI).
//
// Faithful: asymmetric min-max quantization (a minimum and a step per group,
// both F16 as in KIVI's fp16 tensors); keys are quantized per channel, each
// group being Group consecutive tokens of one channel; values per token, each
// group being Group consecutive channels of one token (the whole head when the
// head is narrower). Recent tokens stay at full precision: keys accumulate in
// a residual until it holds Residual tokens (at least one group), which are
// then quantized together; values are quantized one at a time, oldest first,
// as soon as more than Residual are at full precision.
//
// Ours: quantization happens as entries arrive, so the later chunks of a
// prefill attend to already quantized earlier chunks (KIVI's prefill attends
// in full precision and quantizes afterwards); eviction removes rows from key
// blocks without requantizing them, so a block's parameters may end up
// describing fewer than Group tokens. The optional Hadamard rotation (as in
// llama.cpp's KV rotation, PR #21038) multiplies keys, values and queries of
// each head by the normalised Walsh–Hadamard matrix before quantizing and
// rotates the attention output back; the head size must then be a power of
// two.
type Quant struct {
	Bits     int  // 2, 4 or 8; 0 turns quantization off
	Group    int  // tokens per key group and channels per value group; 0 means 32
	Residual int  // recent tokens kept at full precision (see above)
	Hadamard bool // rotate before quantizing
}

// String describes the quantization, e.g. "kivi4 g32 r32".
func (q Quant) String() string {
	if q.Bits == 0 {
		return "none"
	}
	s := fmt.Sprintf("kivi%d g%d r%d", q.Bits, q.group(), q.Residual)
	if q.Hadamard {
		s += " hadamard"
	}
	return s
}

func (q Quant) group() int {
	if q.Group <= 0 {
		return 32
	}
	return q.Group
}

// quantizer holds a Quant with the derived sizes for one head size.
type quantizer struct {
	Quant
	hd       int
	rowBytes int // one packed row of hd codes
	vGroup   int // channels per value group
	vGroups  int
	kFlush   int // tail keys that trigger quantization: Residual rounded up to whole groups, at least one
	levels   float32
}

func newQuantizer(q Quant, hd int) (quantizer, error) {
	switch q.Bits {
	case 2, 4, 8:
	default:
		return quantizer{}, fmt.Errorf("kv: %d-bit KV quantization is not supported (2, 4 or 8)", q.Bits)
	}
	if q.Group < 0 || q.Residual < 0 {
		return quantizer{}, fmt.Errorf("kv: group %d and residual %d must not be negative", q.Group, q.Residual)
	}
	if hd*q.Bits%8 != 0 {
		return quantizer{}, fmt.Errorf("kv: head size %d does not pack into whole bytes at %d bits", hd, q.Bits)
	}
	if q.Hadamard && hd&(hd-1) != 0 {
		return quantizer{}, fmt.Errorf("kv: Hadamard rotation needs a power-of-two head size, not %d", hd)
	}
	g := q.group()
	z := quantizer{Quant: q, hd: hd, rowBytes: hd * q.Bits / 8, levels: float32(int(1)<<q.Bits - 1)}
	z.Group = g
	z.vGroup = min(g, hd)
	z.vGroups = (hd + z.vGroup - 1) / z.vGroup
	z.kFlush = max(g, (q.Residual+g-1)/g*g)
	return z, nil
}

// flush quantizes what has left the full-precision window of head e.
func (z *quantizer) flush(c *Cache, e *head) {
	n := len(e.pos)
	if n-e.kq < z.kFlush && n-e.vq <= z.Residual {
		return
	}
	before := c.headBytes(e)
	if n-e.kq >= z.kFlush {
		z.quantizeKeys(c, e, z.kFlush)
	}
	for n-e.vq > z.Residual {
		z.quantizeValue(c, e)
	}
	c.grow(c.headBytes(e) - before)
}

// tailKey returns tail key t as float32 into dst.
func tailRow(c *Cache, k32 []float32, k16 []uint16, t int, dst []float32) {
	hd := c.shape.HeadDim
	if c.opts.Storage == F32 {
		copy(dst, k32[t*hd:(t+1)*hd])
		return
	}
	for i, x := range k16[t*hd : (t+1)*hd] {
		dst[i] = tensor.F16ToF32(x)
	}
}

// params returns the F16-rounded minimum and step for values in [lo, hi].
func (z *quantizer) params(lo, hi float32) (mn, step uint16) {
	mn = tensor.F32ToF16(lo)
	m := tensor.F16ToF32(mn)
	// The step spans from the rounded minimum so the top code still reaches hi.
	step = tensor.F32ToF16((hi - m) / z.levels)
	if hi > m && tensor.F16ToF32(step) == 0 {
		step = 1 // smallest subnormal: never divide by zero
	}
	return mn, step
}

func (z *quantizer) code(x, mn, step float32) uint8 {
	if step == 0 {
		return 0
	}
	r := math.Round(float64((x - mn) / step))
	return uint8(min(max(r, 0), float64(z.levels)))
}

// putCode stores code q for channel i of a packed row.
func (z *quantizer) putCode(row []byte, i int, q uint8) {
	switch z.Bits {
	case 8:
		row[i] = q
	case 4:
		row[i/2] |= q << (4 * (i % 2))
	case 2:
		row[i/4] |= q << (2 * (i % 4))
	}
}

func (z *quantizer) getCode(row []byte, i int) float32 {
	switch z.Bits {
	case 8:
		return float32(row[i])
	case 4:
		return float32(row[i/2] >> (4 * (i % 2)) & 0xf)
	default:
		return float32(row[i/4] >> (2 * (i % 4)) & 0x3)
	}
}

// quantizeKeys turns the oldest cnt tail keys (a multiple of Group) into
// blocks of Group tokens quantized per channel.
func (z *quantizer) quantizeKeys(c *Cache, e *head, cnt int) {
	hd := z.hd
	w := &c.work[0]
	rows := w.rows(cnt * hd)
	for t := range cnt {
		tailRow(c, e.k32, e.k16, t, rows[t*hd:(t+1)*hd])
	}
	g := z.Group
	for b := 0; b < cnt; b += g {
		blk := rows[b*hd : (b+g)*hd]
		base := len(e.kParams)
		e.kParams = append(e.kParams, make([]uint16, 2*hd)...)
		mins, steps := e.kParams[base:base+hd], e.kParams[base+hd:base+2*hd]
		for i := range hd {
			lo, hi := blk[i], blk[i]
			for t := 1; t < g; t++ {
				x := blk[t*hd+i]
				lo, hi = min(lo, x), max(hi, x)
			}
			mins[i], steps[i] = z.params(lo, hi)
		}
		for t := range g {
			start := len(e.kCodes)
			e.kCodes = append(e.kCodes, make([]byte, z.rowBytes)...)
			row := e.kCodes[start:]
			for i := range hd {
				z.putCode(row, i, z.code(blk[t*hd+i], tensor.F16ToF32(mins[i]), tensor.F16ToF32(steps[i])))
			}
		}
		e.kLens = append(e.kLens, int32(g))
	}
	// Drop the quantized keys from the tail.
	if c.opts.Storage == F32 {
		e.k32 = e.k32[:copy(e.k32, e.k32[cnt*hd:])]
	} else {
		e.k16 = e.k16[:copy(e.k16, e.k16[cnt*hd:])]
	}
	e.kq += cnt
}

// quantizeValue quantizes the oldest full-precision value per token.
func (z *quantizer) quantizeValue(c *Cache, e *head) {
	hd := z.hd
	w := &c.work[0]
	row := w.rows(hd)
	tailRow(c, e.v32, e.v16, 0, row)
	start := len(e.vCodes)
	e.vCodes = append(e.vCodes, make([]byte, z.rowBytes)...)
	codes := e.vCodes[start:]
	for g := 0; g < z.vGroups; g++ {
		lo0, hi0 := g*z.vGroup, min((g+1)*z.vGroup, hd)
		lo, hi := row[lo0], row[lo0]
		for _, x := range row[lo0:hi0] {
			lo, hi = min(lo, x), max(hi, x)
		}
		mn, step := z.params(lo, hi)
		e.vParams = append(e.vParams, mn, step)
		m, s := tensor.F16ToF32(mn), tensor.F16ToF32(step)
		for i := lo0; i < hi0; i++ {
			z.putCode(codes, i, z.code(row[i], m, s))
		}
	}
	if c.opts.Storage == F32 {
		e.v32 = e.v32[:copy(e.v32, e.v32[hd:])]
	} else {
		e.v16 = e.v16[:copy(e.v16, e.v16[hd:])]
	}
	e.vq++
}

// keyBlock finds the block holding quantized key j and its first entry.
func (e *head) keyBlock(j int) (b, start int) {
	for b, n := range e.kLens {
		if j < start+int(n) {
			return b, start
		}
		start += int(n)
	}
	return -1, start
}

func (z *quantizer) key(e *head, j int, dst []float32) {
	hd := z.hd
	b, _ := e.keyBlock(j)
	p := e.kParams[b*2*hd : (b+1)*2*hd]
	row := e.kCodes[j*z.rowBytes : (j+1)*z.rowBytes]
	for i := range hd {
		dst[i] = tensor.F16ToF32(p[i]) + tensor.F16ToF32(p[hd+i])*z.getCode(row, i)
	}
}

func (z *quantizer) value(e *head, j int, dst []float32) {
	p := e.vParams[j*2*z.vGroups : (j+1)*2*z.vGroups]
	row := e.vCodes[j*z.rowBytes : (j+1)*z.rowBytes]
	for i := range z.hd {
		g := i / z.vGroup
		dst[i] = tensor.F16ToF32(p[2*g]) + tensor.F16ToF32(p[2*g+1])*z.getCode(row, i)
	}
}

// retainKeys compacts the quantized key rows to the kept entries below kq,
// dropping blocks left empty.
func (z *quantizer) retainKeys(e *head, keep []int, newKq int) {
	hd, rb := z.hd, z.rowBytes
	counts := make([]int32, len(e.kLens))
	b, end := 0, int(e.kLens[0])
	for w, j := range keep[:newKq] {
		for j >= end {
			b++
			end += int(e.kLens[b])
		}
		counts[b]++
		copy(e.kCodes[w*rb:(w+1)*rb], e.kCodes[j*rb:(j+1)*rb])
	}
	nb := 0
	for b, n := range counts {
		if n == 0 {
			continue
		}
		e.kLens[nb] = n
		copy(e.kParams[nb*2*hd:(nb+1)*2*hd], e.kParams[b*2*hd:(b+1)*2*hd])
		nb++
	}
	e.kLens = e.kLens[:nb]
	e.kParams = e.kParams[:nb*2*hd]
	e.kCodes = e.kCodes[:newKq*rb]
}

func (z *quantizer) retainValues(e *head, keep []int, newVq int) {
	rb, np := z.rowBytes, 2*z.vGroups
	for w, j := range keep[:newVq] {
		copy(e.vCodes[w*rb:(w+1)*rb], e.vCodes[j*rb:(j+1)*rb])
		copy(e.vParams[w*np:(w+1)*np], e.vParams[j*np:(j+1)*np])
	}
	e.vCodes = e.vCodes[:newVq*rb]
	e.vParams = e.vParams[:newVq*np]
}

// hadamard applies the normalised Walsh–Hadamard transform in place; it is
// orthonormal and its own inverse. len(x) must be a power of two.
func hadamard(x []float32) {
	n := len(x)
	for h := 1; h < n; h *= 2 {
		for i := 0; i < n; i += 2 * h {
			for j := i; j < i+h; j++ {
				a, b := x[j], x[j+h]
				x[j], x[j+h] = a+b, a-b
			}
		}
	}
	s := float32(1 / math.Sqrt(float64(n)))
	for i := range x {
		x[i] *= s
	}
}
