package kv

import (
	"math"
	"sync"

	"tamp/tensor"
)

// work is one KV head's attention scratch, so that heads can be computed in
// parallel.
type work struct {
	scores     []float32 // group × entries: attention of each query head
	qg, acc    []float32 // group × head size: queries; outputs
	inv        []float32 // per query head of the group: 1/Σ exp
	kbuf, vbuf []float32 // one converted key and value
	qs         []float32 // query times a key block's steps
	rotK, rotV []float32 // Append's rotated copies
	buf        []float32 // quantizer rows

	// Block kernels (eight query heads at once): transposed queries,
	// converted keys or values of a block of entries, dot products and
	// rounded probabilities of the block.
	qT, kf, dt, pr []float32
}

// blockLen is how many entries the block kernels take at a time.
const blockLen = 64

func (w *work) init(hd int, blocks bool) {
	w.kbuf, w.vbuf, w.qs = make([]float32, hd), make([]float32, hd), make([]float32, hd)
	w.rotK, w.rotV = make([]float32, hd), make([]float32, hd)
	if blocks {
		w.qT, w.kf = make([]float32, 8*hd), make([]float32, blockLen*hd)
		w.dt, w.pr = make([]float32, blockLen*8), make([]float32, blockLen*8)
	}
}

// ensure sizes the scratch for ne entries and a group of query heads,
// reserving room for capacity entries on the first growth.
func (w *work) ensure(ne, group, hd, capacity int) {
	if cap(w.scores) < group*ne {
		w.scores = make([]float32, group*ne, group*max(ne, min(capacity, 4*ne)))
	}
	if len(w.qg) < group*hd {
		w.qg, w.acc = make([]float32, group*hd), make([]float32, group*hd)
		w.inv = make([]float32, group)
	}
}

func (w *work) rows(n int) []float32 {
	if cap(w.buf) < n {
		w.buf = make([]float32, n)
	}
	return w.buf[:n]
}

// parallelWork is the number of multiply-adds (rows × entries × query heads ×
// head size) above which a layer's KV heads are attended to on separate
// goroutines; below it starting them costs more than it saves.
const parallelWork = 1 << 18

// Attend computes the attention output of n query rows, at positions first,
// first+1, ..., for every query head of layer. q and out hold n rows of
// Heads×HeadDim values. Query rows at positions >= record add the attention
// they pay each entry to the entries' scores (when the cache keeps scores),
// averaged or maximised over the query heads that share a KV head.
//
// The arithmetic of full-precision entries is llama.cpp's CPU backend's: with
// F16 storage the query is rounded to F16 for the dot products with F16 keys,
// and the probabilities are rounded to F16 before multiplying F16 values; dot
// products and the weighted sum run in float32, the softmax normaliser in
// float64. Quantized entries are dequantized on the fly in float32.
func (c *Cache) Attend(layer int, first int32, n int, q, out []float32, record int32) {
	kvh := c.shape.KVHeads
	work := n * c.MaxLenLayer(layer) * c.shape.Heads * c.shape.HeadDim
	if work < parallelWork || kvh == 1 {
		for h := range kvh {
			c.attendHead(layer, h, first, n, q, out, record)
		}
		return
	}
	var wg sync.WaitGroup
	for h := 1; h < kvh; h++ {
		wg.Go(func() { c.attendHead(layer, h, first, n, q, out, record) })
	}
	c.attendHead(layer, 0, first, n, q, out, record)
	wg.Wait()
}

// MaxLenLayer is the largest number of entries a head of layer holds.
func (c *Cache) MaxLenLayer(layer int) int {
	m := 0
	for h := range c.shape.KVHeads {
		m = max(m, len(c.head(layer, h).pos))
	}
	return m
}

// attendHead runs the query heads of KV head kvh over its entries. The
// query heads of the group are processed together so that each key and value
// is read and converted once; every head's sums still run in the same order
// as a head-by-head loop, so the results are bit-identical to it.
func (c *Cache) attendHead(layer, kvh int, first int32, n int, q, out []float32, record int32) {
	e := c.head(layer, kvh)
	w := &c.work[kvh]
	hd := c.shape.HeadDim
	group := c.shape.Heads / c.shape.KVHeads
	qDim := c.shape.Heads * hd
	scale := float32(1 / math.Sqrt(float64(hd)))
	ne := len(e.pos)
	w.ensure(ne, group, hd, c.capacity)
	f16 := c.opts.Storage == F16
	rot := c.q.Hadamard
	rec := e.score != nil
	for i := range n {
		pos := first + int32(i)
		// The group's queries, rotated and rounded as the keys were stored.
		qg := w.qg[:group*hd]
		for g := range group {
			h := kvh*group + g
			qh := qg[g*hd : (g+1)*hd]
			copy(qh, q[i*qDim+h*hd:i*qDim+(h+1)*hd])
			if rot {
				hadamard(qh)
			}
			if f16 {
				for j, v := range qh {
					qh[j] = tensor.F16ToF32(tensor.F32ToF16(v))
				}
			}
		}
		// Entries are ordered by position, so the ones this row may not see
		// (later tokens of the same chunk) form a suffix: stop before it. A
		// masked entry would only have added exp(−∞) = 0 to the sums.
		lim := ne
		for lim > 0 && e.pos[lim-1] > pos {
			lim--
		}
		// Scores: sc[g*ne + j] for query head g and entry j < lim.
		sc := w.scores[:group*ne]
		if e.kq > 0 {
			c.q.keyDots(e, w, qg, group, min(e.kq, lim), scale, sc, ne)
		}
		kb := w.kbuf
		if c.blocks {
			c.blockDots(e, w, qg, group, lim, scale, sc, ne)
		}
		for j := e.kq; j < lim && !c.blocks; j++ {
			t := j - e.kq
			if f16 {
				for x, h := range e.k16[t*hd : (t+1)*hd] {
					kb[x] = tensor.F16ToF32(h)
				}
			} else {
				kb = e.k32[t*hd : (t+1)*hd]
			}
			g := 0
			for ; g+4 <= group; g += 4 {
				d0, d1, d2, d3 := dot4(qg[g*hd:(g+1)*hd], qg[(g+1)*hd:(g+2)*hd], qg[(g+2)*hd:(g+3)*hd], qg[(g+3)*hd:(g+4)*hd], kb)
				sc[g*ne+j], sc[(g+1)*ne+j], sc[(g+2)*ne+j], sc[(g+3)*ne+j] = d0*scale, d1*scale, d2*scale, d3*scale
			}
			for ; g+2 <= group; g += 2 {
				d0, d1 := dot2(qg[g*hd:(g+1)*hd], qg[(g+1)*hd:(g+2)*hd], kb)
				sc[g*ne+j], sc[(g+1)*ne+j] = d0*scale, d1*scale
			}
			for ; g < group; g++ {
				sc[g*ne+j] = dotF32(qg[g*hd:(g+1)*hd], kb) * scale
			}
		}
		// Softmax per head: the maximum, then exp and the float64 sum in entry order.
		for g := range group {
			row := sc[g*ne : g*ne+lim]
			m := negInf
			for _, s := range row {
				m = max(m, s)
			}
			var sum float64
			for j, s := range row {
				x := float32(math.Exp(float64(s - m)))
				row[j] = x
				sum += float64(x)
			}
			w.inv[g] = float32(1 / sum)
		}
		// Weighted values, into the output rows (or rotated accumulators).
		acc := w.acc[:group*hd]
		clear(acc)
		for j := range min(e.vq, lim) {
			for g := range group {
				p := sc[g*ne+j] * w.inv[g]
				sc[g*ne+j] = p
				if p != 0 {
					c.q.addValue(e, j, p, acc[g*hd:(g+1)*hd])
				}
			}
		}
		vb := w.vbuf
		if c.blocks {
			c.blockValues(e, w, acc, group, lim, sc, ne)
		}
		for j := e.vq; j < lim && !c.blocks; j++ {
			converted := false
			t := j - e.vq
			for g := range group {
				p := sc[g*ne+j] * w.inv[g]
				sc[g*ne+j] = p
				if p == 0 {
					continue
				}
				if !converted {
					if f16 {
						for x, h := range e.v16[t*hd : (t+1)*hd] {
							vb[x] = tensor.F16ToF32(h)
						}
					} else {
						vb = e.v32[t*hd : (t+1)*hd]
					}
					converted = true
				}
				if f16 {
					p = roundF16(p)
				}
				a := acc[g*hd : (g+1)*hd]
				for x, v := range vb[:hd] {
					a[x] += p * v
				}
			}
		}
		for g := range group {
			h := kvh*group + g
			a := acc[g*hd : (g+1)*hd]
			if rot {
				hadamard(a)
			}
			copy(out[i*qDim+h*hd:i*qDim+(h+1)*hd], a)
		}
		if !rec || pos < record {
			continue
		}
		// Record the attention this row paid, aggregated over the group.
		s := e.score
		if c.opts.GQAMax {
			for j := range lim {
				m := sc[j]
				for g := 1; g < group; g++ {
					m = max(m, sc[g*ne+j])
				}
				s[j] += m
			}
		} else {
			inv := 1 / float32(group)
			for g := range group {
				for j, p := range sc[g*ne : g*ne+lim] {
					s[j] += p * inv
				}
			}
		}
	}
}

// dot4 is four float32 dot products of one key with four queries, each summed
// in index order as dotF32 does (four independent chains for the CPU).
func dot4(q0, q1, q2, q3, k []float32) (d0, d1, d2, d3 float32) {
	q0, q1, q2, q3 = q0[:len(k)], q1[:len(k)], q2[:len(k)], q3[:len(k)]
	for i, x := range k {
		d0 += q0[i] * x
		d1 += q1[i] * x
		d2 += q2[i] * x
		d3 += q3[i] * x
	}
	return
}

// dot2 is dot4 for two queries.
func dot2(q0, q1, k []float32) (d0, d1 float32) {
	q0, q1 = q0[:len(k)], q1[:len(k)]
	for i, x := range k {
		d0 += q0[i] * x
		d1 += q1[i] * x
	}
	return
}

// keyDots writes the scaled dot products of the group's queries with the
// quantized keys of e below lim (lim ≤ kq) into sc (row g at g*ne). Each block's per-channel minimum and step are folded into
// the query once: q·k = Σ q·min + Σ (q·step)·code.
func (z *quantizer) keyDots(e *head, w *work, qg []float32, group int, lim int, scale float32, sc []float32, ne int) {
	hd, rb := z.hd, z.rowBytes
	start := 0
	for b, n := range e.kLens {
		if start >= lim {
			break
		}
		p := e.kParams[b*2*hd : (b+1)*2*hd]
		end := min(start+int(n), lim)
		for g := range group {
			qh := qg[g*hd : (g+1)*hd]
			qs := w.qs[:hd]
			var c0 float32
			for i := range hd {
				c0 += qh[i] * tensor.F16ToF32(p[i])
				qs[i] = qh[i] * tensor.F16ToF32(p[hd+i])
			}
			row := sc[g*ne : (g+1)*ne]
			for j := start; j < end; j++ {
				row[j] = (c0 + z.dotCodes(qs, e.kCodes[j*rb:(j+1)*rb])) * scale
			}
		}
		start += int(n)
	}
}

// dotCodes is Σ qs[i]·code[i] over a packed row.
func (z *quantizer) dotCodes(qs []float32, row []byte) float32 {
	var s float32
	switch z.Bits {
	case 8:
		for i, b := range row {
			s += qs[i] * float32(b)
		}
	case 4:
		for k, b := range row {
			s += qs[2*k]*float32(b&0xf) + qs[2*k+1]*float32(b>>4)
		}
	default:
		for k, b := range row {
			s += qs[4*k]*float32(b&3) + qs[4*k+1]*float32(b>>2&3) + qs[4*k+2]*float32(b>>4&3) + qs[4*k+3]*float32(b>>6)
		}
	}
	return s
}

// addValue adds p times quantized value j of e to acc.
func (z *quantizer) addValue(e *head, j int, p float32, acc []float32) {
	prm := e.vParams[j*2*z.vGroups : (j+1)*2*z.vGroups]
	row := e.vCodes[j*z.rowBytes : (j+1)*z.rowBytes]
	for g := range z.vGroups {
		pm := p * tensor.F16ToF32(prm[2*g])
		ps := p * tensor.F16ToF32(prm[2*g+1])
		for i := g * z.vGroup; i < min((g+1)*z.vGroup, z.hd); i++ {
			acc[i] += pm + ps*z.getCode(row, i)
		}
	}
}

func dotF32(a, b []float32) float32 {
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// roundF16 is float32(F16(p)) for 0 ≤ p ≤ 1, the attention probabilities:
// round to nearest even at half precision's 11 significant bits, or to a
// multiple of 2⁻²⁴ below half's normal range. It equals
// tensor.F16ToF32(tensor.F32ToF16(p)) there (checked exhaustively by
// TestRoundF16) without the general conversion's branches.
func roundF16(p float32) float32 {
	if p >= 0x1p-14 {
		b := math.Float32bits(p)
		b += 0xfff + (b>>13)&1
		return math.Float32frombits(b &^ 0x1fff)
	}
	return float32(math.RoundToEven(float64(p)*0x1p24)) * 0x1p-24
}

// blockDots is the key loop of attendHead for groups of eight query heads:
// the kernel computes a block of entries' dot products with eight queries at
// once, one query per lane, each summed exactly as dot4 does.
func (c *Cache) blockDots(e *head, w *work, qg []float32, group, lim int, scale float32, sc []float32, ne int) {
	hd := c.shape.HeadDim
	for gb := 0; gb < group; gb += 8 {
		for i := range hd {
			for g := range 8 {
				w.qT[i*8+g] = qg[(gb+g)*hd+i]
			}
		}
		for j0 := e.kq; j0 < lim; j0 += blockLen {
			nb := min(blockLen, lim-j0)
			t := j0 - e.kq
			var k *float32
			if c.opts.Storage == F16 {
				cvtF16(&w.kf[0], &e.k16[t*hd], nb*hd)
				k = &w.kf[0]
			} else {
				k = &e.k32[t*hd]
			}
			dots8(&w.qT[0], k, nb, hd, &w.dt[0])
			for g := range 8 {
				row := sc[(gb+g)*ne+j0 : (gb+g)*ne+j0+nb]
				for j := range row {
					row[j] = w.dt[j*8+g] * scale
				}
			}
		}
	}
}

// blockValues is the value loop of attendHead for groups of eight query
// heads: it turns scores into probabilities (kept in sc, rounded to F16 for
// the products when the cache is F16) and adds a block of weighted values to
// eight heads' accumulators at once. A zero probability contributes an exact
// zero, which is what skipping it does.
func (c *Cache) blockValues(e *head, w *work, acc []float32, group, lim int, sc []float32, ne int) {
	hd := c.shape.HeadDim
	f16 := c.opts.Storage == F16
	for gb := 0; gb < group; gb += 8 {
		for j0 := e.vq; j0 < lim; j0 += blockLen {
			nb := min(blockLen, lim-j0)
			for g := range 8 {
				row := sc[(gb+g)*ne+j0 : (gb+g)*ne+j0+nb]
				inv := w.inv[gb+g]
				for j := range row {
					p := row[j] * inv
					row[j] = p
					if f16 {
						p = roundF16(p)
					}
					w.pr[j*8+g] = p
				}
			}
			t := j0 - e.vq
			var v *float32
			if f16 {
				cvtF16(&w.kf[0], &e.v16[t*hd], nb*hd)
				v = &w.kf[0]
			} else {
				v = &e.v32[t*hd]
			}
			accum8(&acc[gb*hd], &w.pr[0], v, nb, hd)
		}
	}
}
