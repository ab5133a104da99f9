package model

import (
	"fmt"
	"math"
	"sort"

	"tamp/kv"
	"tamp/tensor"
)

// SessionOptions configures one sequence's evaluation.
type SessionOptions struct {
	// Context is the most tokens the sequence may hold; 0 means the model's
	// trained context length.
	Context int
	// KVStorage is the element type of cached keys and values (F16 by default,
	// as in llama.cpp).
	KVStorage kv.Storage
	// Batch is how many prompt tokens go through each weight matrix together
	// (default 64). It bounds scratch memory and does not change results.
	Batch int
	// Observer, if set, sees the inputs of every weight matrix and every
	// expert-routing decision, for calibration (importance matrices, expert
	// statistics). It must not keep the slices it is handed.
	Observer Observer
	// KV compresses the cache while the sequence runs: an eviction policy and
	// its budget, and quantization. The zero value keeps every entry at
	// KVStorage precision.
	KV kv.Spec
}

// Observer watches a forward pass. tamp's calibration tools implement it; the
// forward pass calls it at fixed points and never depends on what it does.
type Observer interface {
	// MatMulInput is called with the n input rows, each w.Cols() wide, about to
	// be multiplied by w. For a mixture-of-experts matrix expert says which
	// expert's is used and w is the stacked [in, out, experts] tensor, or the
	// expert's own [in, out] tensor when the file stores experts apart
	// (blk.N.ffn_gate.E.weight); expert is -1 for ordinary matrices.
	MatMulInput(w *tensor.Tensor, expert int, x []float32, n int)
	// Routed is called once per token and MoE layer with the experts chosen and
	// the weights their outputs are mixed with.
	Routed(layer int, experts []int, weights []float32)
}

// Session is one sequence being evaluated: its position, KV cache and scratch
// buffers. It is not safe for concurrent use; run one Session per sequence.
type Session struct {
	m      *Model
	obs    Observer
	cache  *kv.Cache
	policy kv.Policy // nil: keep everything
	ctxLen int
	batch  int
	pos    int

	x, xb, q, k, v, att, proj []float32 // batch × width activations
	hb, hb2                   []float32 // batch × ffn
	logits                    []float32 // batch × vocab
	out                       []float32 // returned logits
	router, routeWeights      []float32
	expertIdx                 []int
	eh, eh2, ey               []float32        // one token's expert activations
	rope                      []float32        // cos/sin pairs for one position
	silu                      siluRows         // the SwiGLU gate of the product running
	siluFn                    func(lo, hi int) // s.siluDone, bound once

	// Policy support: query rows at positions >= record add their attention
	// to the cache's scores; with surprisal set every prompt row's logits are
	// computed so the policy learns how surprising each token was.
	record    int32
	surprisal bool
	prevRow   []float32 // logits of the last row of the previous chunk
	hasPrev   bool
	surp      []float32
}

// NewSession prepares an empty sequence.
func (m *Model) NewSession(opts SessionOptions) (*Session, error) {
	ctx := opts.Context
	if ctx == 0 {
		ctx = m.ContextLen
	}
	if ctx <= 0 {
		return nil, fmt.Errorf("model: context length must be positive (the file states none; pass one)")
	}
	b := opts.Batch
	if b <= 0 {
		b = 64
	}
	b = min(b, ctx)
	c := m.Config
	qDim, kvDim := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	var s *Session
	rotate := func(v []float32, delta int) { s.rotate(v, delta) }
	cache, policy, err := kv.BuildWith(opts.KV, kv.Shape{Layers: c.Layers, Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim}, ctx, opts.KVStorage, rotate)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	s = &Session{
		m:      m,
		obs:    opts.Observer,
		cache:  cache,
		policy: policy,
		record: math.MaxInt32,
		ctxLen: ctx,
		batch:  b,
		x:      make([]float32, b*c.Dim),
		xb:     make([]float32, b*c.Dim),
		q:      make([]float32, b*qDim),
		k:      make([]float32, b*kvDim),
		v:      make([]float32, b*kvDim),
		att:    make([]float32, b*qDim),
		proj:   make([]float32, b*c.Dim),
		hb:     make([]float32, b*c.FFN),
		hb2:    make([]float32, b*c.FFN),
		logits: make([]float32, b*c.Vocab),
		rope:   make([]float32, c.RopeDim),
	}
	s.siluFn = s.siluDone
	if policy != nil && policy.Needs().Surprisal {
		s.surprisal = true
		s.prevRow = make([]float32, c.Vocab)
		s.surp = make([]float32, b)
	}
	if c.Experts > 0 {
		s.router = make([]float32, c.Experts)
		s.routeWeights = make([]float32, c.Experts)
		s.expertIdx = make([]int, c.Experts)
		s.eh = make([]float32, c.FFN)
		s.eh2 = make([]float32, c.FFN)
		s.ey = make([]float32, c.Dim)
	}
	return s, nil
}

// Pos is the number of tokens the sequence holds.
func (s *Session) Pos() int { return s.pos }

// Context is the most tokens the sequence may hold.
func (s *Session) Context() int { return s.ctxLen }

// Cache exposes the sequence's KV cache.
func (s *Session) Cache() *kv.Cache { return s.cache }

// Reset empties the sequence for reuse.
func (s *Session) Reset() {
	s.pos = 0
	s.cache.Reset()
	s.hasPrev = false
	if s.policy != nil {
		s.policy.Reset()
	}
}

// Forward appends tokens to the sequence and returns logits: one row of Vocab
// values per token when all is set, else only the last token's row. The slice
// is reused by the next call.
func (s *Session) Forward(tokens []int32, all bool) ([]float32, error) {
	m := s.m
	if len(tokens) == 0 {
		return nil, fmt.Errorf("model: no tokens to evaluate")
	}
	if s.pos+len(tokens) > s.ctxLen {
		return nil, fmt.Errorf("model: %d tokens after %d already held exceed the context of %d tokens", len(tokens), s.pos, s.ctxLen)
	}
	for i, t := range tokens {
		if t < 0 || int(t) >= m.Vocab {
			return nil, fmt.Errorf("model: token %d at index %d is outside the vocabulary [0,%d)", t, i, m.Vocab)
		}
	}
	rows := 1
	if all {
		rows = len(tokens)
	}
	if cap(s.out) < rows*m.Vocab {
		s.out = make([]float32, rows*m.Vocab)
	}
	s.out = s.out[:rows*m.Vocab]
	callStart := s.pos
	for start := 0; start < len(tokens); start += s.batch {
		chunk := tokens[start:min(start+s.batch, len(tokens))]
		wantLast := start+len(chunk) == len(tokens)
		ev := kv.Event{Start: s.pos, End: s.pos + len(chunk), CallStart: callStart, CallEnd: callStart + len(tokens)}
		if s.policy != nil {
			s.record = int32(min(s.policy.Observe(ev), math.MaxInt32))
		}
		head := 0 // rows of logits to compute: the last ones of the chunk
		switch {
		case all || s.surprisal || (wantLast && s.obs != nil):
			// An observer sees every row the output head would take.
			head = len(chunk)
		case wantLast:
			head = 1
		}
		if err := s.forwardBatch(chunk, head); err != nil {
			return nil, err
		}
		if all {
			copy(s.out[start*m.Vocab:], s.logits[:len(chunk)*m.Vocab])
		} else if wantLast {
			copy(s.out, s.logits[(len(chunk)-1)*m.Vocab:len(chunk)*m.Vocab])
		}
		if s.policy != nil {
			if err := s.afterChunk(chunk, ev); err != nil {
				return nil, err
			}
		}
	}
	return s.out, nil
}

// afterChunk tells the policy that a chunk has been processed: after each
// chunk of a prefill (and after the prefill), or after a decoding step.
func (s *Session) afterChunk(chunk []int32, ev kv.Event) error {
	if s.surprisal {
		ev.Surprisal = s.tokenSurprisal(chunk)
	}
	if !ev.Prefill() {
		return s.policy.AfterStep(s.cache, ev)
	}
	if err := s.policy.AfterChunk(s.cache, ev); err != nil {
		return err
	}
	if ev.End == ev.CallEnd {
		return s.policy.AfterPrefill(s.cache, ev)
	}
	return nil
}

// tokenSurprisal returns −ln p of each token of the chunk just processed under
// the prediction of the position before it, and keeps the chunk's last row of
// logits for the next chunk's first token.
func (s *Session) tokenSurprisal(chunk []int32) []float32 {
	v := s.m.Vocab
	out := s.surp[:len(chunk)]
	for i, t := range chunk {
		var row []float32
		switch {
		case i > 0:
			row = s.logits[(i-1)*v : i*v]
		case s.hasPrev:
			row = s.prevRow
		default:
			out[i] = float32(math.NaN())
			continue
		}
		out[i] = nll(row, t)
	}
	copy(s.prevRow, s.logits[(len(chunk)-1)*v:len(chunk)*v])
	s.hasPrev = true
	return out
}

// nll is −ln softmax(row)[t].
func nll(row []float32, t int32) float32 {
	m := row[0]
	for _, x := range row {
		m = max(m, x)
	}
	var sum float64
	for _, x := range row {
		sum += math.Exp(float64(x - m))
	}
	return float32(math.Log(sum) - float64(row[t]-m))
}

// forwardBatch runs n ≤ batch tokens at positions pos.. through every layer and
// the last head of them through the output head, into their rows of s.logits
// (each row's logits do not depend on which others are computed).
func (s *Session) forwardBatch(tokens []int32, head int) error {
	m, c := s.m, s.m.Config
	n := len(tokens)
	dim, qDim, kvDim := c.Dim, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	x := s.x[:n*dim]

	for i, t := range tokens {
		if err := tensor.Dequantize(m.TokenEmbd.Type, m.TokenEmbd.Row(int(t)), x[i*dim:(i+1)*dim]); err != nil {
			return err
		}
	}

	for li := range m.Blocks {
		l := &m.Blocks[li]

		// Attention: normalise, project, rotate, cache, attend, project back.
		rmsNorm(s.xb[:n*dim], x, l.AttnNorm, dim, c.RMSEps)
		if err := s.linearSet(s.xb[:n*dim], n,
			lin{l.Wq, l.Bq, s.q[:n*qDim]}, lin{l.Wk, l.Bk, s.k[:n*kvDim]}, lin{l.Wv, l.Bv, s.v[:n*kvDim]}); err != nil {
			return err
		}
		for i := range n {
			pos := s.pos + i
			s.ropeTable(pos)
			for h := range c.Heads {
				s.applyRope(s.q[i*qDim+h*c.HeadDim : i*qDim+(h+1)*c.HeadDim])
			}
			for h := range c.KVHeads {
				s.applyRope(s.k[i*kvDim+h*c.HeadDim : i*kvDim+(h+1)*c.HeadDim])
			}
			if err := s.cache.Append(li, int32(pos), s.k[i*kvDim:(i+1)*kvDim], s.v[i*kvDim:(i+1)*kvDim]); err != nil {
				return err
			}
		}
		s.attend(li, n)
		if err := s.linear(l.Wo, l.Bo, s.att[:n*qDim], n, s.proj[:n*dim]); err != nil {
			return err
		}
		add(x, s.proj[:n*dim])

		// Feed-forward.
		rmsNorm(s.xb[:n*dim], x, l.FFNNorm, dim, c.RMSEps)
		if l.experts != nil {
			if err := s.moe(li, l, n); err != nil {
				return err
			}
		} else if err := s.swiglu(l.FFNGate, l.FFNUp, l.FFNDown, -1, s.xb[:n*dim], n, s.hb, s.hb2, s.proj[:n*dim]); err != nil {
			return err
		}
		add(x, s.proj[:n*dim])
	}
	s.pos += n

	if head == 0 {
		return nil
	}
	first := n - head
	rmsNorm(s.xb[first*dim:n*dim], x[first*dim:], m.OutputNorm, dim, c.RMSEps)
	return s.linear(m.Output, nil, s.xb[first*dim:n*dim], head, s.logits[first*c.Vocab:n*c.Vocab])
}

// attend computes the attention output of the n rows of the batch for every
// head of a layer. The cache does the arithmetic: llama.cpp's CPU backend
// multiplies F16 keys with the query rounded to F16 and F16 values with the
// probabilities rounded to F16, and the cache does the same so tamp's figures
// match llama.cpp's to the last digits.
func (s *Session) attend(layer, n int) {
	qDim := s.m.Heads * s.m.HeadDim
	s.cache.Attend(layer, int32(s.pos), n, s.q[:n*qDim], s.att[:n*qDim], s.record)
}

// swiglu computes down(silu(gate(x)) * up(x)) for n rows. For an expert,
// gate/up/down are its slices and expert its index (else -1).
func (s *Session) swiglu(gate, up, down *tensor.Tensor, expert int, x []float32, n int, hb, hb2, out []float32) error {
	f := gate.Rows()
	hb, hb2 = hb[:n*f], hb2[:n*f]
	if s.obs != nil {
		s.observe(gate, expert, x, n)
		s.observe(up, expert, x, n)
	}
	s.silu = siluRows{hb: hb, hb2: hb2, f: f, n: n}
	err := tensor.MatMulPair(gate, up, x, n, hb, hb2, s.siluFn)
	s.silu = siluRows{}
	if err != nil {
		return err
	}
	if s.obs != nil {
		s.observe(down, expert, hb, n)
	}
	return tensor.MatMul(down, hb, n, out)
}

// siluRows applies the SwiGLU gate, hb = silu(hb)·hb2, to rows of the
// gate's output as MatMulPair finishes them, while they are in cache.
type siluRows struct {
	hb, hb2 []float32
	f, n    int // rows of the gate; vectors
}

func (s *Session) siluDone(lo, hi int) {
	j := &s.silu
	for c := range j.n {
		tensor.SiLUMul(j.hb[c*j.f+lo:c*j.f+hi], j.hb2[c*j.f+lo:c*j.f+hi])
	}
}

// observe reports a matrix input, naming the stacked tensor for an expert slice
// (a per-expert tensor has no Parent and is reported as itself).
func (s *Session) observe(w *tensor.Tensor, expert int, x []float32, n int) {
	if expert >= 0 && w.Parent != nil {
		w = w.Parent
	}
	s.obs.MatMulInput(w, expert, x, n)
}

// moe routes each token to its top ExpertsUsed experts, weighting their outputs
// by the router's softmax renormalised over the chosen experts (Mixtral).
func (s *Session) moe(layer int, l *Layer, n int) error {
	c := s.m.Config
	out := s.proj[:n*c.Dim]
	clear(out)
	for i := range n {
		xi := s.xb[i*c.Dim : (i+1)*c.Dim]
		if err := s.linear(l.FFNRouter, nil, xi, 1, s.router); err != nil {
			return err
		}
		softmax(s.router)
		idx := s.expertIdx
		for e := range idx {
			idx[e] = e
		}
		sort.SliceStable(idx, func(a, b int) bool { return s.router[idx[a]] > s.router[idx[b]] })
		var total float32
		for _, e := range idx[:c.ExpertsUsed] {
			total += s.router[e]
		}
		oi := out[i*c.Dim : (i+1)*c.Dim]
		if s.obs != nil {
			w := s.routeWeights[:c.ExpertsUsed]
			for k, e := range idx[:c.ExpertsUsed] {
				w[k] = s.router[e] / total
			}
			s.obs.Routed(layer, idx[:c.ExpertsUsed], w)
		}
		for _, e := range idx[:c.ExpertsUsed] {
			ex := l.experts[e]
			if err := s.swiglu(ex.gate, ex.up, ex.down, e, xi, 1, s.eh, s.eh2, s.ey); err != nil {
				return err
			}
			w := s.router[e] / total
			for j, v := range s.ey {
				oi[j] += w * v
			}
		}
	}
	return nil
}

// ropeTable fills cos/sin pairs for one position the way ggml computes them:
// the angle for pair i is pos·base^(-2i/d), built by repeated multiplication in
// float32, divided by any llama3 frequency factor and scaled linearly.
func (s *Session) ropeTable(pos int) {
	c := s.m.Config
	thetaScale := float32(math.Pow(float64(c.RopeBase), -2/float64(c.RopeDim)))
	theta := float32(pos)
	for i := 0; i < c.RopeDim; i += 2 {
		t := theta
		if s.m.ropeFreqs != nil {
			t /= s.m.ropeFreqs[i/2]
		}
		t *= c.RopeScale
		s.rope[i] = float32(math.Cos(float64(t)))
		s.rope[i+1] = float32(math.Sin(float64(t)))
		theta *= thetaScale
	}
}

// rotate applies RoPE's rotation for delta positions to one head vector, for
// policies that move cached keys to new positions (see kv.Rotator).
func (s *Session) rotate(v []float32, delta int) {
	s.ropeTable(delta)
	s.applyRope(v)
}

// applyRope rotates the first RopeDim elements of one head vector in place.
//
// The products are fused the way GCC and Clang compile ggml's
// "x0*cos - x1*sin" and "x0*sin + x1*cos" on FMA machines. Keys and queries are
// rounded to F16 right after this, so a one-ulp difference here can flip a
// half-precision rounding and move a logit by ~1e-3; matching the fusion keeps
// tamp's logits within llama.cpp's F16 rounding noise.
func (s *Session) applyRope(v []float32) {
	c := s.m.Config
	d := c.RopeDim
	for i := 0; i < d; i += 2 {
		cos, sin := s.rope[i], s.rope[i+1]
		a, b := i, i+1
		if c.RopeStyle == RopeNeoX {
			a, b = i/2, i/2+d/2
		}
		x0, x1 := v[a], v[b]
		v[a] = fma32(x0, cos, -(x1 * sin))
		v[b] = fma32(x1, cos, x0*sin)
	}
}

// linear computes out = W·x (+ bias) for n input rows.
func (s *Session) linear(w, bias *tensor.Tensor, x []float32, n int, out []float32) error {
	if s.obs != nil {
		s.obs.MatMulInput(w, -1, x, n)
	}
	if err := tensor.MatMul(w, x, n, out); err != nil {
		return err
	}
	if bias != nil {
		b := f32s(bias)
		for i := range n {
			add(out[i*len(b):(i+1)*len(b)], b)
		}
	}
	return nil
}

// lin is one projection of a linearSet: weights, optional bias, output.
type lin struct {
	w, bias *tensor.Tensor
	out     []float32
}

// linearSet is linear for up to three projections of the same input, run
// as one job on the worker pool (tensor.MatMulSet) so that the threads meet
// once for a layer's query, key and value projections, not three times.
func (s *Session) linearSet(x []float32, n int, ls ...lin) error {
	var ps [3]tensor.Product
	for i, l := range ls {
		if s.obs != nil {
			s.obs.MatMulInput(l.w, -1, x, n)
		}
		ps[i] = tensor.Product{W: l.w, Out: l.out}
	}
	if err := tensor.MatMulSet(x, n, ps[:len(ls)]...); err != nil {
		return err
	}
	for _, l := range ls {
		if l.bias != nil {
			b := f32s(l.bias)
			for i := range n {
				add(l.out[i*len(b):(i+1)*len(b)], b)
			}
		}
	}
	return nil
}

// rmsNorm writes x / rms(x) · weight for each row of width dim. The sum of
// squares is taken in float64, as ggml does.
func rmsNorm(out, x []float32, weight *tensor.Tensor, dim int, eps float32) {
	w := f32s(weight)
	for r := 0; r < len(x)/dim; r++ {
		xr, or := x[r*dim:(r+1)*dim], out[r*dim:(r+1)*dim]
		var ss float64
		for _, v := range xr {
			ss += float64(v * v)
		}
		scale := float32(1 / math.Sqrt(float64(float32(ss/float64(dim))+eps)))
		for i, v := range xr {
			or[i] = v * scale * w[i]
		}
	}
}

func softmax(x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += float64(e)
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

func add(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}

// fma32 is a float32 fused multiply-add: the float64 product of two float32s is
// exact, so one float64 addition rounded to float32 equals the fused result
// (barring double-rounding ties, which these operands do not produce in practice).
func fma32(a, b, c float32) float32 { return float32(float64(a)*float64(b) + float64(c)) }

// f32s views an F32 tensor's data as floats without copying.
func f32s(t *tensor.Tensor) []float32 {
	return tensor.F32s(t.Data)
}
