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
// kernel must reproduce bit for bit on full-precision entries.
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
		var sum float64
		for j, sc := range scores {
			e := float32(math.Exp(float64(sc - maxScore)))
			scores[j] = e
			sum += float64(e)
		}
		inv := float32(1 / sum)
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
		// Large enough for the heads to run in parallel.
		{"f16 parallel", F16, Shape{Layers: 1, Heads: 8, KVHeads: 2, HeadDim: 32}, 150},
		// Groups of eight query heads run the block kernels where the CPU has them.
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
