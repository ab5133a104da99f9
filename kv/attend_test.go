package kv

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"tamp/tensor"
)

// refAttend is the forward pass's attention before the cache took it over
// (model/forward.go at commit e19744e), kept as the reference the cache's
// kernel must reproduce bit for bit on full-precision entries; since then its
// softmax exponentials and their sum are tensor.ExpSum's, as the cache's are.
func refAttend(c *Cache, layer int, pos int32, q, out []float32) {
	hd := c.shape.HeadDim
	group := c.shape.Heads / c.shape.KVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	qbuf := make([]float32, hd)
	for h := range c.shape.Heads {
		view := c.Head(layer, h/group)
		qh := q[h*hd : (h+1)*hd]
		oh := out[h*hd : (h+1)*hd]
		f16 := view.K16 != nil
		if f16 {
			for i, v := range qh {
				qbuf[i] = tensor.F16ToF32(tensor.F32ToF16(v))
			}
			qh = qbuf
		}
		scores := make([]float32, view.Len())
		maxScore := float32(math.Inf(-1))
		for j, p := range view.Pos {
			if p > pos {
				scores[j] = float32(math.Inf(-1))
				continue
			}
			var dot float32
			if f16 {
				kj := view.K16[j*hd : (j+1)*hd]
				for i := range hd {
					dot += qh[i] * tensor.F16ToF32(kj[i])
				}
			} else {
				dot = dotF32(qh, view.K32[j*hd:(j+1)*hd])
			}
			scores[j] = dot * scale
			maxScore = max(maxScore, scores[j])
		}
		inv := float32(1 / tensor.ExpSum(scores, maxScore))
		clear(oh)
		for j, w := range scores {
			w *= inv
			if w == 0 {
				continue
			}
			if f16 {
				w = tensor.F16ToF32(tensor.F32ToF16(w))
				vj := view.V16[j*hd : (j+1)*hd]
				for i := range hd {
					oh[i] += w * tensor.F16ToF32(vj[i])
				}
			} else {
				vj := view.V32[j*hd : (j+1)*hd]
				for i := range hd {
					oh[i] += w * vj[i]
				}
			}
		}
	}
}

// fillRandom appends n tokens at positions 0..n-1 to every layer.
func fillRandom(t testing.TB, c *Cache, n int, rng *rand.Rand) {
	t.Helper()
	w := c.shape.KVHeads * c.shape.HeadDim
	k, v := make([]float32, w), make([]float32, w)
	for p := range n {
		for l := range c.shape.Layers {
			for i := range k {
				k[i] = float32(rng.NormFloat64())
				v[i] = float32(rng.NormFloat64())
			}
			if err := c.Append(l, int32(p), k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func randVec(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func TestAttendMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		name    string
		storage Storage
		shape   Shape
		n       int
	}{
		{"f16 gqa", F16, Shape{Layers: 2, Heads: 8, KVHeads: 4, HeadDim: 8}, 70},
		{"f32 gqa", F32, Shape{Layers: 2, Heads: 8, KVHeads: 4, HeadDim: 8}, 70},
		{"f16 mha", F16, Shape{Layers: 1, Heads: 4, KVHeads: 4, HeadDim: 16}, 33},
		{"f16 group of 7", F16, Shape{Layers: 1, Heads: 14, KVHeads: 2, HeadDim: 64}, 70},
		{"f32 group of 3", F32, Shape{Layers: 1, Heads: 6, KVHeads: 2, HeadDim: 24}, 41},
		// Large enough for the heads to run in parallel.
		{"f16 parallel", F16, Shape{Layers: 1, Heads: 8, KVHeads: 2, HeadDim: 32}, 150},
		// The block kernels do eight query heads at once where the CPU has
		// them; other groups are padded to eight.
		{"f16 group of 8", F16, Shape{Layers: 1, Heads: 16, KVHeads: 2, HeadDim: 40}, 150},
		{"f32 group of 16", F32, Shape{Layers: 1, Heads: 32, KVHeads: 2, HeadDim: 8}, 75},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, scores := range []bool{false, true} {
				rng := rand.New(rand.NewPCG(1, 2))
				c, err := NewCache(tc.shape, tc.n, Options{Storage: tc.storage, Scores: scores})
				if err != nil {
					t.Fatal(err)
				}
				fillRandom(t, c, tc.n, rng)
				qDim := tc.shape.Heads * tc.shape.HeadDim
				// A batch of rows: the last 16 positions, each masking the later ones.
				rows := 16
				first := int32(tc.n - rows)
				q := randVec(rng, rows*qDim)
				got := make([]float32, rows*qDim)
				want := make([]float32, qDim)
				for l := range tc.shape.Layers {
					c.Attend(l, first, rows, q, got, first+8)
					for i := range rows {
						refAttend(c, l, first+int32(i), q[i*qDim:(i+1)*qDim], want)
						for j, w := range want {
							if g := got[i*qDim+j]; math.Float32bits(g) != math.Float32bits(w) {
								t.Fatalf("scores=%v layer %d row %d elem %d: %v, reference %v", scores, l, i, j, g, w)
							}
						}
					}
				}
			}
		})
	}
}

// TestAttendRecordsScores checks what the forward pass adds to the scores:
// the attention probabilities of recorded rows, mean or max over the group.
func TestAttendRecordsScores(t *testing.T) {
	shape := Shape{Layers: 1, Heads: 4, KVHeads: 2, HeadDim: 8}
	for _, gqaMax := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(3, 4))
		c, _ := NewCache(shape, 10, Options{Storage: F32, Scores: true, GQAMax: gqaMax})
		fillRandom(t, c, 10, rng)
		qDim := shape.Heads * shape.HeadDim
		q := randVec(rng, 3*qDim)
		out := make([]float32, 3*qDim)
		c.Attend(0, 7, 3, q, out, 8) // rows at 7, 8, 9; record 8 and 9
		for kvh := range 2 {
			want := make([]float64, 10)
			for row := 1; row < 3; row++ {
				pos := 7 + row
				agg := make([]float64, 10)
				for g := range 2 {
					h := kvh*2 + g
					p := softmaxRef(c, kvh, q[row*qDim+h*8:row*qDim+(h+1)*8], pos)
					for j := range p {
						if gqaMax {
							agg[j] = math.Max(agg[j], p[j])
						} else {
							agg[j] += p[j] / 2
						}
					}
				}
				for j := range want {
					want[j] += agg[j]
				}
			}
			got := c.Scores(0, kvh)
			var total float64
			for j := range want {
				total += float64(got[j])
				if math.Abs(float64(got[j])-want[j]) > 1e-5 {
					t.Errorf("max=%v head %d entry %d: score %v, want %v", gqaMax, kvh, j, got[j], want[j])
				}
			}
			if !gqaMax && math.Abs(total-2) > 1e-4 {
				t.Errorf("mean scores of two rows sum to %v, want 2", total)
			}
		}
	}
}

func softmaxRef(c *Cache, kvh int, q []float32, pos int) []float64 {
	n := c.Len(0, kvh)
	p := make([]float64, n)
	k := make([]float32, c.HeadDim())
	m := math.Inf(-1)
	for j := range n {
		if int(c.Positions(0, kvh)[j]) > pos {
			p[j] = math.Inf(-1)
			continue
		}
		c.Key(0, kvh, j, k)
		var d float64
		for i := range k {
			d += float64(q[i]) * float64(k[i])
		}
		p[j] = d / math.Sqrt(float64(len(k)))
		m = math.Max(m, p[j])
	}
	var s float64
	for j := range p {
		p[j] = math.Exp(p[j] - m)
		s += p[j]
	}
	for j := range p {
		p[j] /= s
	}
	return p
}

// TestAttendQuantized checks the fused dequantizing kernel against plain
// attention over the dequantized keys and values, with and without rotation.
func TestAttendQuantized(t *testing.T) {
	for _, tc := range []struct {
		shape Shape
		q     Quant
	}{
		{Shape{Layers: 1, Heads: 4, KVHeads: 2, HeadDim: 16}, Quant{Bits: 8, Group: 8, Residual: 8}},
		{Shape{Layers: 1, Heads: 4, KVHeads: 2, HeadDim: 16}, Quant{Bits: 4, Group: 8}},
		{Shape{Layers: 1, Heads: 4, KVHeads: 2, HeadDim: 16}, Quant{Bits: 2, Group: 8, Residual: 16, Hadamard: true}},
		{Shape{Layers: 1, Heads: 16, KVHeads: 2, HeadDim: 16}, Quant{Bits: 4, Group: 8, Residual: 16}},
	} {
		shape, q := tc.shape, tc.q
		rng := rand.New(rand.NewPCG(5, 6))
		n := 45
		c, err := NewCache(shape, n, Options{Storage: F32, Quant: q})
		if err != nil {
			t.Fatal(err)
		}
		fillRandom(t, c, n, rng)
		// The same entries, dequantized, in a plain F32 cache.
		plain, _ := NewCache(shape, n, Options{Storage: F32})
		hd := shape.HeadDim
		kv, vv := make([]float32, 2*hd), make([]float32, 2*hd)
		for j := range n {
			for h := range 2 {
				c.Key(0, h, j, kv[h*hd:(h+1)*hd])
				c.Value(0, h, j, vv[h*hd:(h+1)*hd])
			}
			if err := plain.Append(0, int32(j), kv, vv); err != nil {
				t.Fatal(err)
			}
		}
		qDim := shape.Heads * hd
		query := randVec(rng, qDim)
		got, want := make([]float32, qDim), make([]float32, qDim)
		c.Attend(0, int32(n-1), 1, query, got, math.MaxInt32)
		rq := query
		if q.Hadamard {
			rq = append([]float32(nil), query...)
			for h := range shape.Heads {
				hadamard(rq[h*hd : (h+1)*hd])
			}
		}
		plain.Attend(0, int32(n-1), 1, rq, want, math.MaxInt32)
		if q.Hadamard {
			for h := range shape.Heads {
				hadamard(want[h*hd : (h+1)*hd])
			}
		}
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1e-4 {
				t.Fatalf("%v: output %d = %v, dequantized reference %v", q, i, got[i], want[i])
			}
		}
	}
}

// BenchmarkAttendDecode times one decoding step's attention for one layer of
// TinyLlama-1.1B's shape (32 query heads, 4 KV heads of 64) at 2k and 8k
// entries: the pre-cache reference loop, the cache's kernel, and the cache's
// kernel with the block kernels off. cpu-ms/op is the process's CPU time,
// which stays meaningful on a busy machine.
func BenchmarkAttendDecode(b *testing.B) {
	shape := Shape{Layers: 1, Heads: 32, KVHeads: 4, HeadDim: 64}
	for _, n := range []int{2048, 8192} {
		rng := rand.New(rand.NewPCG(1, 2))
		c, _ := NewCache(shape, n, Options{Storage: F16})
		fillRandom(b, c, n, rng)
		qDim := shape.Heads * shape.HeadDim
		q := randVec(rng, qDim)
		out := make([]float32, qDim)
		run := func(name string, f func()) {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				cpu0 := cpuTime()
				for b.Loop() {
					f()
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
			})
		}
		run("reference", func() { refAttend(c, 0, int32(n), q, out) })
		run("cache", func() { c.Attend(0, int32(n), 1, q, out, math.MaxInt32) })
		run("cache-serial", func() {
			for h := range shape.KVHeads {
				c.attendHead(0, h, int32(n), 1, q, out, math.MaxInt32)
			}
		})
		blocks := c.blocks
		c.blocks = false
		run("cache-scalar", func() {
			for h := range shape.KVHeads {
				c.attendHead(0, h, int32(n), 1, q, out, math.MaxInt32)
			}
		})
		c.blocks = blocks
	}
}

// TestRoundF16 compares the fast rounding with the general conversion on
// every 61st float32 in [0, 1] (every 9973rd with -short) and around every
// boundary; with
// TAMP_EXHAUSTIVE=1 on all of them (about a billion values, which pass).
func TestRoundF16(t *testing.T) {
	check := func(b uint32) {
		p := math.Float32frombits(b)
		if got, want := roundF16(p), tensor.F16ToF32(tensor.F32ToF16(p)); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("roundF16(%g) = %g, want %g", p, got, want)
		}
	}
	one := math.Float32bits(1)
	stride := uint32(61)
	switch {
	case os.Getenv("TAMP_EXHAUSTIVE") != "":
		stride = 1
	case testing.Short():
		stride = 9973
	}
	for b := uint32(0); b <= one; b += stride {
		check(b)
	}
	// Around every power of two (where the spacing changes) and every
	// rounding tie of the smallest subnormals.
	for e := -30; e <= 0; e++ {
		b := math.Float32bits(float32(math.Ldexp(1, e)))
		for d := range uint32(4100) {
			check(b + d)
			check(b - d)
		}
	}
}

// TestAttendBatchMatchesSteps checks that attending a whole prompt at once
// (the prefill: entries converted once, rows split into tasks over several
// threads) gives bit for bit what attending each row after appending its
// entry gives (decoding), and that the eight-head block kernels agree with
// the scalar loops, outputs and recorded scores alike.
func TestAttendBatchMatchesSteps(t *testing.T) {
	defer tensor.SetThreads(tensor.Threads())
	tensor.SetThreads(3)
	for _, tc := range []struct {
		name  string
		shape Shape
		opts  Options
	}{
		{"f16 group of 8", Shape{Layers: 2, Heads: 16, KVHeads: 2, HeadDim: 40}, Options{Storage: F16}},
		{"f32 group of 16", Shape{Layers: 1, Heads: 32, KVHeads: 2, HeadDim: 16}, Options{Storage: F32}},
		{"f16 group of 8 one kv head", Shape{Layers: 1, Heads: 8, KVHeads: 1, HeadDim: 64}, Options{Storage: F16}},
		{"f16 group of 4", Shape{Layers: 1, Heads: 8, KVHeads: 2, HeadDim: 32}, Options{Storage: F16}},
		{"f16 group of 7 scores", Shape{Layers: 1, Heads: 14, KVHeads: 2, HeadDim: 64}, Options{Storage: F16, Scores: true}},
		{"f32 mha kivi4", Shape{Layers: 1, Heads: 4, KVHeads: 4, HeadDim: 16}, Options{Storage: F32, Quant: Quant{Bits: 4, Group: 8, Residual: 8}}},
		{"f16 scores", Shape{Layers: 1, Heads: 16, KVHeads: 2, HeadDim: 32}, Options{Storage: F16, Scores: true}},
		{"f32 scores max", Shape{Layers: 1, Heads: 16, KVHeads: 2, HeadDim: 32}, Options{Storage: F32, Scores: true, GQAMax: true}},
		{"kivi4", Shape{Layers: 1, Heads: 16, KVHeads: 2, HeadDim: 32}, Options{Storage: F16, Quant: Quant{Bits: 4, Group: 8, Residual: 16}}},
		{"kivi2 hadamard", Shape{Layers: 1, Heads: 16, KVHeads: 2, HeadDim: 32}, Options{Storage: F32, Quant: Quant{Bits: 2, Group: 8, Residual: 8, Hadamard: true}, Scores: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 90
			rng := rand.New(rand.NewPCG(21, 22))
			qDim := tc.shape.Heads * tc.shape.HeadDim
			kvDim := tc.shape.KVHeads * tc.shape.HeadDim
			keys, vals := randVec(rng, n*kvDim), randVec(rng, n*kvDim)
			q := randVec(rng, n*qDim)
			record := int32(n / 3)
			build := func() *Cache {
				c, err := NewCache(tc.shape, n, tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			// One row at a time, as decoding runs.
			steps := build()
			want := make([]float32, n*qDim)
			for l := range tc.shape.Layers {
				for i := range n {
					if err := steps.Append(l, int32(i), keys[i*kvDim:(i+1)*kvDim], vals[i*kvDim:(i+1)*kvDim]); err != nil {
						t.Fatal(err)
					}
					steps.Attend(l, int32(i), 1, q[i*qDim:(i+1)*qDim], want[i*qDim:(i+1)*qDim], record)
				}
			}
			for _, blocks := range []bool{true, false} {
				c := build()
				c.blocks = c.blocks && blocks
				got := make([]float32, n*qDim)
				for l := range tc.shape.Layers {
					for i := range n {
						if err := c.Append(l, int32(i), keys[i*kvDim:(i+1)*kvDim], vals[i*kvDim:(i+1)*kvDim]); err != nil {
							t.Fatal(err)
						}
					}
					if tc.opts.Quant.Bits != 0 {
						// Quantization happens as entries arrive, so a
						// batch sees later entries quantized: compare the
						// last row only, which both see the same way.
						c.Attend(l, n-1, 1, q[(n-1)*qDim:], got[(n-1)*qDim:], record)
						copy(got[:(n-1)*qDim], want[:(n-1)*qDim])
						continue
					}
					c.Attend(l, 0, n, q, got, record)
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("blocks=%v: row %d elem %d: batch %v, one at a time %v", c.blocks, i/qDim, i%qDim, got[i], want[i])
					}
				}
				if !tc.opts.Scores || tc.opts.Quant.Bits != 0 {
					continue
				}
				for l := range tc.shape.Layers {
					for h := range tc.shape.KVHeads {
						gs, ws := c.Scores(l, h), steps.Scores(l, h)
						for j := range ws {
							if math.Float32bits(gs[j]) != math.Float32bits(ws[j]) {
								t.Fatalf("blocks=%v: layer %d head %d score %d: batch %v, one at a time %v", c.blocks, l, h, j, gs[j], ws[j])
							}
						}
					}
				}
			}
		})
	}
}

// TestAttendSplit checks the division of a batch's rows into tasks: ranges
// that cover the rows in order, later (longer) rows in shorter ranges.
func TestAttendSplit(t *testing.T) {
	for _, tc := range []struct{ n, ne, parts int }{
		{512, 512, 2}, {512, 512, 8}, {64, 4096, 4}, {33, 40, 16}, {1, 1, 1}, {100, 100, 1},
	} {
		j := attendJob{n: tc.n}
		j.split(tc.parts, tc.ne)
		if j.bounds[0] != 0 || j.bounds[tc.parts] != tc.n {
			t.Fatalf("%+v: bounds %v", tc, j.bounds[:tc.parts+1])
		}
		for p := range tc.parts {
			if j.bounds[p] > j.bounds[p+1] {
				t.Fatalf("%+v: bounds %v not increasing", tc, j.bounds[:tc.parts+1])
			}
		}
		if tc.parts >= 2 && tc.ne == tc.n && tc.n >= 64 {
			first, last := j.bounds[1]-j.bounds[0], j.bounds[tc.parts]-j.bounds[tc.parts-1]
			if last >= first {
				t.Errorf("%+v: last range %d rows, first %d: want the causal mask balanced", tc, last, first)
			}
		}
	}
}

// BenchmarkAttendPrefill times one layer's attention for a 512-token prompt
// attended at once, in TinyLlama-1.1B's shape, over tamp's threads.
func BenchmarkAttendPrefill(b *testing.B) {
	shape := Shape{Layers: 1, Heads: 32, KVHeads: 4, HeadDim: 64}
	const n = 512
	rng := rand.New(rand.NewPCG(1, 2))
	c, _ := NewCache(shape, n, Options{Storage: F16})
	fillRandom(b, c, n, rng)
	qDim := shape.Heads * shape.HeadDim
	q := randVec(rng, n*qDim)
	out := make([]float32, n*qDim)
	cpu0 := cpuTime()
	for b.Loop() {
		c.Attend(0, 0, n, q, out, math.MaxInt32)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
}

// TestBlockKernels checks each assembly kernel against the scalar loop it
// replaces, bit for bit, on sizes with and without partial vectors.
func TestBlockKernels(t *testing.T) {
	if !haveBlocks {
		t.Skip("no block kernels on this machine")
	}
	rng := rand.New(rand.NewPCG(31, 32))
	same := func(what string, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: element %d = %v, want %v", what, i, got[i], want[i])
			}
		}
	}
	for _, hd := range []int{8, 40, 64, 128} {
		for _, groups := range []int{1, 3} {
			rows := 8 * groups
			src := randVec(rng, rows*hd)
			src16 := make([]uint16, len(src))
			for i, v := range src {
				src16[i] = tensor.F32ToF16(v)
			}
			// Transposes: dst[b*8*hd + c*8 + r] = row 8b+r, column c.
			want := make([]float32, rows*hd)
			wantR := make([]float32, rows*hd)
			want16 := make([]float32, rows*hd)
			for b := range groups {
				for r := range 8 {
					for c := range hd {
						x := src[(8*b+r)*hd+c]
						want[b*8*hd+c*8+r] = x
						wantR[b*8*hd+c*8+r] = tensor.F16ToF32(tensor.F32ToF16(x))
						want16[b*8*hd+c*8+r] = tensor.F16ToF32(src16[(8*b+r)*hd+c])
					}
				}
			}
			got := make([]float32, rows*hd)
			tposeF32(&got[0], &src[0], hd, groups, 0)
			same("tposeF32", got, want)
			tposeF32(&got[0], &src[0], hd, groups, 1)
			same("tposeF32 rounded", got, wantR)
			tposeF16(&got[0], &src16[0], hd, groups)
			same("tposeF16", got, want16)

			// Dot products of eight queries with the transposed keys.
			q := randVec(rng, 8*hd)
			qT := make([]float32, 8*hd)
			tposeF32(&qT[0], &q[0], hd, 1, 0)
			stride := rows + 3
			out := make([]float32, 8*stride)
			const scale = 0.125
			dotsT(&qT[0], &want[0], groups, hd, scale, &out[0], stride)
			for g := range 8 {
				for j := range rows {
					d := dotF32(q[g*hd:(g+1)*hd], src[j*hd:(j+1)*hd]) * scale
					if math.Float32bits(out[g*stride+j]) != math.Float32bits(d) {
						t.Fatalf("dotsT hd %d: query %d key %d = %v, want %v", hd, g, j, out[g*stride+j], d)
					}
				}
			}

			// Weighted sums of rows values for eight heads.
			p := make([]float32, 8*stride)
			for i := range p {
				p[i] = roundF16(float32(rng.Float64()))
			}
			acc := randVec(rng, 8*hd)
			ref := append([]float32(nil), acc...)
			for g := range 8 {
				for j := range rows {
					for x := range hd {
						ref[g*hd+x] += p[g*stride+j] * src[j*hd+x]
					}
				}
			}
			accumP(&acc[0], &p[0], stride, &src[0], rows, hd)
			same("accumP", acc, ref)
		}
	}
	for _, n := range []int{8, 16, 24, 64, 200} {
		x := randVec(rng, n)
		m := float32(math.Inf(-1))
		for _, v := range x[:n&^7] {
			m = max(m, v)
		}
		if got := maxF32(&x[0], n&^7); got != m {
			t.Fatalf("maxF32 of %d = %v, want %v", n, got, m)
		}
		for i := range x {
			x[i] = float32(rng.Float64())
		}
		inv := float32(1 / 3.7)
		for _, round := range []int{0, 1} {
			for _, keep := range []int{0, 1} {
				src := append([]float32(nil), x...)
				dst := make([]float32, n)
				probs(&dst[0], &src[0], n&^7, inv, round, keep)
				for i := range n &^ 7 {
					p := x[i] * inv
					want := p
					if round == 1 {
						want = roundF16(p)
					}
					wantSrc := x[i]
					if keep == 1 {
						wantSrc = p
					}
					if dst[i] != want || src[i] != wantSrc {
						t.Fatalf("probs round=%d keep=%d: %v, %v; want %v, %v", round, keep, dst[i], src[i], want, wantSrc)
					}
				}
			}
		}
	}
}
