package kv

import (
	"math"

	"tamp/tensor"
)

// work is one KV head's attention scratch.
type work struct {
	rotK, rotV []float32 // Append's rotated copies
	buf        []float32 // quantizer rows

	// The head's full-precision keys and values as float32 when several
	// query rows attend at once (prefill): converted once per Attend call
	// instead of once per row. Keys are transposed in blocks of eight
	// entries for dotsT (kT[b*8*hd + i*8 + j] is element i of tail key
	// 8b+j), values row by row. F32 values are read in place.
	kT, vf []float32

	// parts is the scratch of the tasks that split the query rows.
	parts []rowScratch

	// job is the parallel attention job (used in the first head's work
	// only), kept here so that Attend does not allocate.
	job attendJob
}

// rowScratch is the scratch of one task: a range of query rows of one KV
// head.
type rowScratch struct {
	scores []float32 // group rows of stride: scores, then exps, then probabilities
	pr     []float32 // group rows of stride: probabilities as multiplied into the values, when the scores keep their own
	qg     []float32 // group × head size: rotated or rounded queries
	qT     []float32 // group × head size: queries transposed per eight heads
	inv    []float32 // per query head of the group: 1/Σ exp
	qs     []float32 // query times a key block's steps
	acc    []float32 // rotated accumulators
	kb, vb []float32 // one converted key and value (scalar loops)
	kT, vf []float32 // one block's converted keys and values (decoding)
}

// blockLen is how many entries a decoding step converts at a time.
const blockLen = 64

func (w *work) init(hd int, blocks bool) {
	w.rotK, w.rotV = make([]float32, hd), make([]float32, hd)
}

// ensure sizes the scratch for score rows of stride floats, a group of
// query heads of hd, reserving room for capacity entries on the first
// growth.
func (s *rowScratch) ensure(stride, group, hd, capacity int) {
	if cap(s.scores) < group*stride {
		s.scores = make([]float32, group*stride, group*max(stride, min(capacity+8, 4*stride)))
	}
	s.scores = s.scores[:group*stride]
	if len(s.qg) < group*hd {
		s.qg, s.qT, s.acc = make([]float32, group*hd), make([]float32, group*hd), make([]float32, group*hd)
		s.inv = make([]float32, group)
		s.qs, s.kb, s.vb = make([]float32, hd), make([]float32, hd), make([]float32, hd)
		s.kT, s.vf = make([]float32, blockLen*hd), make([]float32, blockLen*hd)
	}
}

func (w *work) rows(n int) []float32 {
	if cap(w.buf) < n {
		w.buf = make([]float32, n)
	}
	return w.buf[:n]
}

// parallelWork is the number of multiply-adds (rows × entries × query heads ×
// head size) above which a layer's attention is spread over the threads;
// below it handing out the tasks costs more than it saves.
const parallelWork = 1 << 18

// maxParts bounds the number of tasks one KV head's query rows are split
// into.
const maxParts = 16

// attendJob is one Attend call spread over tamp's threads (tensor.Parallel):
// first, when converting, one task per KV head converts its entries; then
// every KV head's query rows are split into parts ranges of about equal
// work under the causal mask, one task each.
type attendJob struct {
	c       *Cache
	layer   int
	first   int32
	n       int
	q, out  []float32
	record  int32
	convert bool // phase one: convert the heads' entries
	whole   bool // the heads' entries are converted
	parts   int
	bounds  [maxParts + 1]int // part p runs rows [bounds[p], bounds[p+1])
}

// Task runs one task of the current phase.
func (j *attendJob) Task(t int) {
	if j.convert {
		j.c.convertHead(j.layer, t, j.first+int32(j.n)-1)
		return
	}
	h, p := t/j.parts, t%j.parts
	j.c.attendRows(j.layer, h, j.first, j.bounds[p], j.bounds[p+1], j.q, j.out, j.record, p, j.whole)
}

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
// float64 (the exponentials are tensor.ExpSum's float32 ones, as llama.cpp's
// are its vectorised expf). Quantized entries are dequantized on the fly in
// float32. A row's result depends only on its own query and the entries it
// sees, computed in the same order however the rows are batched or split
// over threads, so attending rows together (prefill) or one at a time
// (decoding) over the same entries gives bit-identical outputs.
func (c *Cache) Attend(layer int, first int32, n int, q, out []float32, record int32) {
	if n <= 0 {
		return
	}
	kvh := c.shape.KVHeads
	ne := c.MaxLenLayer(layer)
	work := n * ne * c.shape.Heads * c.shape.HeadDim
	j := &c.work[0].job
	*j = attendJob{c: c, layer: layer, first: first, n: n, q: q, out: out, record: record,
		whole: c.blocks && n > 1}
	// Rows of one KV head that record scores add to the same scores in
	// row order, so they stay in one task.
	recording := c.opts.Scores && first+int32(n)-1 >= record
	parts := 1
	threads := 1
	if work >= parallelWork {
		threads = tensor.Threads()
	}
	if threads > 1 && !recording {
		parts = min((4*threads+kvh-1)/kvh, maxParts, max(n/16, 1))
	}
	j.split(parts, ne)
	for p := range parts {
		for h := range kvh {
			w := &c.work[h]
			for len(w.parts) <= p {
				w.parts = append(w.parts, rowScratch{})
			}
		}
	}
	if threads <= 1 || kvh*parts == 1 {
		for h := range kvh {
			if j.whole {
				c.convertHead(layer, h, first+int32(n)-1)
			}
			c.attendRows(layer, h, first, 0, n, q, out, record, 0, j.whole)
		}
		*j = attendJob{}
		return
	}
	if j.whole {
		j.convert = true
		tensor.Parallel(kvh, j)
		j.convert = false
	}
	tensor.Parallel(kvh*parts, j)
	*j = attendJob{}
}

// split divides the job's rows into parts ranges of about equal work: row i
// sees about ne−n+1+i entries (all of them when the rows' own entries were
// just appended), plus a fixed cost per row.
func (j *attendJob) split(parts, ne int) {
	j.parts = parts
	j.bounds[0] = 0
	base := max(ne-j.n, 0) + 1 + 32
	total := j.n*base + j.n*(j.n-1)/2
	r, acc := 0, 0
	for p := 1; p < parts; p++ {
		want := total * p / parts
		for r < j.n && acc+base+r <= want {
			acc += base + r
			r++
		}
		j.bounds[p] = r
	}
	j.bounds[parts] = j.n
}

// MaxLenLayer is the largest number of entries a head of layer holds.
func (c *Cache) MaxLenLayer(layer int) int {
	m := 0
	for h := range c.shape.KVHeads {
		m = max(m, len(c.head(layer, h).pos))
	}
	return m
}

// visible is the number of entries at positions up to pos: entries are
// ordered by position, so the ones a row may not see (later tokens of the
// same chunk) form a suffix. A masked entry would only have added exp(−∞) = 0
// to the sums.
func visible(positions []int32, pos int32) int {
	lo, hi := 0, len(positions)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if positions[m] <= pos {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// attendHead runs every query row of KV head kvh on the calling goroutine.
func (c *Cache) attendHead(layer, kvh int, first int32, n int, q, out []float32, record int32) {
	w := &c.work[kvh]
	if len(w.parts) == 0 {
		w.parts = append(w.parts, rowScratch{})
	}
	whole := c.blocks && n > 1
	if whole {
		c.convertHead(layer, kvh, first+int32(n)-1)
	}
	c.attendRows(layer, kvh, first, 0, n, q, out, record, 0, whole)
}

// convertHead converts the full-precision keys (transposed) and F16 values
// of KV head kvh that a row at position last sees into the head's float32
// scratch.
func (c *Cache) convertHead(layer, kvh int, last int32) {
	e := c.head(layer, kvh)
	w := &c.work[kvh]
	hd := c.shape.HeadDim
	lim := visible(e.pos, last)
	if nk := lim - e.kq; nk > 0 {
		size := (nk + 7) &^ 7 * hd
		if cap(w.kT) < size {
			w.kT = make([]float32, size, min(2*size, ((c.capacity+7)&^7)*hd))
		}
		w.kT = w.kT[:size]
		c.convertKeys(w.kT, e, 0, nk)
	}
	if nv := lim - e.vq; nv > 0 && c.opts.Storage == F16 {
		size := nv * hd
		if cap(w.vf) < size {
			w.vf = make([]float32, size, min(2*size, c.capacity*hd))
		}
		w.vf = w.vf[:size]
		cvtF16(&w.vf[0], &e.v16[0], size)
	}
}

// convertKeys writes tail keys [t0, t0+cnt) of e to dst transposed in blocks
// of eight (the last block padded with zeros), as dotsT reads them.
func (c *Cache) convertKeys(dst []float32, e *head, t0, cnt int) {
	hd := c.shape.HeadDim
	full := cnt / 8
	f16 := c.opts.Storage == F16
	if full > 0 {
		if f16 {
			tposeF16(&dst[0], &e.k16[t0*hd], hd, full)
		} else {
			tposeF32(&dst[0], &e.k32[t0*hd], hd, full, 0)
		}
	}
	if rest := cnt - 8*full; rest > 0 {
		blk := dst[full*8*hd : (full+1)*8*hd]
		clear(blk)
		for r := range rest {
			t := t0 + 8*full + r
			for i := range hd {
				if f16 {
					blk[i*8+r] = tensor.F16ToF32(e.k16[t*hd+i])
				} else {
					blk[i*8+r] = e.k32[t*hd+i]
				}
			}
		}
	}
}

// attendRows computes query rows [r0, r1) of KV head kvh's query heads with
// the scratch of part p. whole says convertHead has converted the head's
// entries (the block kernels convert them a block at a time otherwise).
func (c *Cache) attendRows(layer, kvh int, first int32, r0, r1 int, q, out []float32, record int32, p int, whole bool) {
	e := c.head(layer, kvh)
	w := &c.work[kvh]
	s := &w.parts[p]
	hd := c.shape.HeadDim
	group := c.shape.Heads / c.shape.KVHeads
	qDim := c.shape.Heads * hd
	scale := float32(1 / math.Sqrt(float64(hd)))
	ne := len(e.pos)
	stride := ne + 8 // room for the block kernels' last, partial block
	lanes := c.lanes()
	padded := lanes != group
	s.ensure(stride, lanes, hd, c.capacity)
	for g := group; g < lanes; g++ {
		s.inv[g] = 0 // a padded head's probabilities are zero
	}
	f16 := c.opts.Storage == F16
	rot := c.q.Hadamard
	for i := r0; i < r1; i++ {
		pos := first + int32(i)
		lim := visible(e.pos, pos)
		lo, hi := i*qDim+kvh*group*hd, i*qDim+(kvh+1)*group*hd
		qrow, orow := q[lo:hi], out[lo:hi]
		// The group's queries, rotated as the keys were stored; rounded to
		// F16 for F16 keys (by tposeF32 on the block path).
		qg := qrow
		if rot || e.kq > 0 || !c.blocks || padded {
			qg = s.qg[:lanes*hd]
			copy(qg, qrow)
			clear(qg[group*hd:])
			if rot {
				for g := range group {
					hadamard(qg[g*hd : (g+1)*hd])
				}
			}
		}
		if c.blocks {
			tposeF32(&s.qT[0], &qg[0], hd, lanes/8, b2i(f16))
		}
		if f16 && (e.kq > 0 || !c.blocks) {
			for j, v := range qg[:group*hd] {
				qg[j] = tensor.F16ToF32(tensor.F32ToF16(v))
			}
		}
		// Scores: sc[g*stride + j] for query head g and entry j < lim.
		sc := s.scores
		if e.kq > 0 {
			c.q.keyDots(e, s.qs, qg, group, min(e.kq, lim), scale, sc, stride)
		}
		if c.blocks {
			c.blockDots(e, s, w.kT, lim, scale, whole)
		} else {
			c.scalarDots(e, s, qg, lim, scale)
		}
		// Softmax per head: the maximum, then the exponentials and their
		// float64 sum.
		for g := range group {
			row := sc[g*stride : g*stride+lim]
			s.inv[g] = float32(1 / tensor.ExpSum(row, rowMax(row)))
		}
		// Weighted values, into the output rows (or rotated accumulators).
		acc := orow
		if rot || padded {
			acc = s.acc[:lanes*hd]
		}
		clear(acc)
		for j := range min(e.vq, lim) {
			for g := range group {
				p := sc[g*stride+j] * s.inv[g]
				sc[g*stride+j] = p
				if p != 0 {
					c.q.addValue(e, j, p, acc[g*hd:(g+1)*hd])
				}
			}
		}
		rec := e.score != nil && pos >= record
		if c.blocks {
			c.blockValues(e, s, w.vf, acc, lim, rec, whole)
		} else {
			c.scalarValues(e, s, acc, lim)
		}
		if rot {
			for g := range group {
				hadamard(acc[g*hd : (g+1)*hd])
			}
		}
		if rot || padded {
			copy(orow, acc[:group*hd])
		}
		if rec {
			c.recordRow(e, sc, lim, stride)
		}
	}
}

// lanes is the number of query heads per KV head the attention scratch
// holds: the group, padded with heads of zero queries to a multiple of
// eight for the block kernels, which do eight heads at once. A padded
// head's lanes cost work but change no real head's result (each lane is
// computed on its own).
func (c *Cache) lanes() int {
	group := c.shape.Heads / c.shape.KVHeads
	if c.blocks {
		return (group + 7) / 8 * 8
	}
	return group
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// rowMax is the largest score of a row (−Inf for none).
func rowMax(row []float32) float32 {
	m := negInf
	n := 0
	if haveBlocks && len(row) >= 8 {
		n = len(row) &^ 7
		m = maxF32(&row[0], n)
	}
	for _, s := range row[n:] {
		m = max(m, s)
	}
	return m
}

// recordRow adds the attention a row paid each of its lim entries (the
// probabilities in sc, rows stride apart), aggregated over the group, to the
// entries' scores.
func (c *Cache) recordRow(e *head, sc []float32, lim, stride int) {
	group := c.shape.Heads / c.shape.KVHeads
	s := e.score
	if c.opts.GQAMax {
		for j := range lim {
			m := sc[j]
			for g := 1; g < group; g++ {
				m = max(m, sc[g*stride+j])
			}
			s[j] += m
		}
		return
	}
	inv := 1 / float32(group)
	for g := range group {
		for j, p := range sc[g*stride : g*stride+lim] {
			s[j] += p * inv
		}
	}
}

// scalarDots writes the scaled dot products of the group's queries qg with
// the full-precision keys of e below lim into s.scores.
func (c *Cache) scalarDots(e *head, s *rowScratch, qg []float32, lim int, scale float32) {
	hd := c.shape.HeadDim
	group := c.shape.Heads / c.shape.KVHeads
	stride := len(s.scores) / group
	sc := s.scores
	f16 := c.opts.Storage == F16
	kb := s.kb
	for j := e.kq; j < lim; j++ {
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
			sc[g*stride+j], sc[(g+1)*stride+j], sc[(g+2)*stride+j], sc[(g+3)*stride+j] = d0*scale, d1*scale, d2*scale, d3*scale
		}
		for ; g+2 <= group; g += 2 {
			d0, d1 := dot2(qg[g*hd:(g+1)*hd], qg[(g+1)*hd:(g+2)*hd], kb)
			sc[g*stride+j], sc[(g+1)*stride+j] = d0*scale, d1*scale
		}
		for ; g < group; g++ {
			sc[g*stride+j] = dotF32(qg[g*hd:(g+1)*hd], kb) * scale
		}
	}
}

// scalarValues turns the exponentials of the full-precision entries below
// lim into probabilities (kept in s.scores) and adds the weighted values to
// acc.
func (c *Cache) scalarValues(e *head, s *rowScratch, acc []float32, lim int) {
	hd := c.shape.HeadDim
	group := c.shape.Heads / c.shape.KVHeads
	stride := len(s.scores) / group
	sc := s.scores
	f16 := c.opts.Storage == F16
	vb := s.vb
	for j := e.vq; j < lim; j++ {
		converted := false
		t := j - e.vq
		for g := range group {
			p := sc[g*stride+j] * s.inv[g]
			sc[g*stride+j] = p
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
// quantized keys of e below lim (lim ≤ kq) into sc (row g at g*stride), with
// qs as scratch. Each block's per-channel minimum and step are folded into
// the query once: q·k = Σ q·min + Σ (q·step)·code.
func (z *quantizer) keyDots(e *head, qs, qg []float32, group int, lim int, scale float32, sc []float32, stride int) {
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
			qs := qs[:hd]
			var c0 float32
			for i := range hd {
				c0 += qh[i] * tensor.F16ToF32(p[i])
				qs[i] = qh[i] * tensor.F16ToF32(p[hd+i])
			}
			row := sc[g*stride : (g+1)*stride]
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

// blockDots is the key loop of attendRows, eight query heads at a time (the
// group padded to a multiple of eight, see lanes):
// dotsT computes eight entries' dot products with eight queries (s.qT) at
// once, one entry per lane, each summed exactly as dot4 does, and writes
// them scaled into the score rows. With whole the keys come converted in kT
// (convertHead); otherwise a block at a time is converted here.
func (c *Cache) blockDots(e *head, s *rowScratch, kT []float32, lim int, scale float32, whole bool) {
	hd := c.shape.HeadDim
	group := c.lanes()
	stride := len(s.scores) / group
	nk := lim - e.kq
	for t0 := 0; t0 < nk; {
		nb := nk - t0
		var k []float32
		if whole {
			k = kT[t0*hd:]
		} else {
			nb = min(nb, blockLen)
			c.convertKeys(s.kT, e, t0, nb)
			k = s.kT
		}
		groups := (nb + 7) / 8
		for gb := 0; gb < group; gb += 8 {
			dotsT(&s.qT[gb*hd], &k[0], groups, hd, scale, &s.scores[gb*stride+e.kq+t0], stride)
		}
		t0 += nb
	}
}

// blockValues is the value loop of attendRows for eight query heads at a
// time (the group padded, see lanes): it turns the exponentials of the full-precision entries below lim
// into probabilities (rounded to F16 for the products when the cache is
// F16, and kept unrounded in the score rows when rec) and adds the weighted
// values to eight heads' accumulators at once. A zero probability
// contributes an exact zero, which is what the scalar loop's skipping it
// does. With whole F16 values come converted in vf (convertHead);
// otherwise a block at a time is converted here.
func (c *Cache) blockValues(e *head, s *rowScratch, vf, acc []float32, lim int, rec, whole bool) {
	hd := c.shape.HeadDim
	group := c.lanes()
	stride := len(s.scores) / group
	nv := lim - e.vq
	if nv <= 0 {
		return
	}
	f16 := c.opts.Storage == F16
	// The probabilities multiplied into the values: in place of the
	// exponentials unless the unrounded ones are kept for the scores.
	pr, off := s.scores, e.vq
	if rec {
		if cap(s.pr) < len(s.scores) {
			s.pr = make([]float32, len(s.scores), cap(s.scores))
		}
		pr, off = s.pr[:len(s.scores)], 0
	}
	for g := range group {
		// Whole vectors: the scores rows have room past lim.
		probs(&pr[g*stride+off], &s.scores[g*stride+e.vq], (nv+7)&^7, s.inv[g], b2i(f16), b2i(rec))
	}
	for t0 := 0; t0 < nv; {
		nb := nv - t0
		var v []float32
		switch {
		case !f16:
			v = e.v32[t0*hd:]
		case whole:
			v = vf[t0*hd:]
		default:
			nb = min(nb, blockLen)
			cvtF16(&s.vf[0], &e.v16[t0*hd], nb*hd)
			v = s.vf
		}
		for gb := 0; gb < group; gb += 8 {
			accumP(&acc[gb*hd], &pr[gb*stride+off+t0], stride, &v[0], nb, hd)
		}
		t0 += nb
	}
}
