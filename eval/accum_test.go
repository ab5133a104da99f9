package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestPercentile(t *testing.T) {
	five := []float32{1, 2, 3, 4, 5}
	for _, tc := range []struct {
		name   string
		sorted []float32
		f      float32
		want   float64
	}{
		{"middle", five, 0.5, 3},
		{"quarter", five, 0.25, 2},
		{"between", five, 0.1, 1.4},      // p = 0.4: 0.6·1 + 0.4·2
		{"near top", five, 0.999, 4.996}, // p = 3.996
		{"zero", five, 0, 1},
		{"negative", five, -1, 1},
		{"one", five, 1, 5},
		{"above one", five, 2, 5},
		{"single", []float32{7}, 0.9, 7},
		{"two", []float32{-1, 1}, 0.75, 0.5},
		{"empty", nil, 0.5, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := float64(Percentile(tc.sorted, tc.f))
			if math.IsNaN(tc.want) {
				if !math.IsNaN(got) {
					t.Errorf("got %g, want NaN", got)
				}
				return
			}
			if math.Abs(got-tc.want) > 1e-6 {
				t.Errorf("got %g, want %g", got, tc.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		sorted []float32
		want   float64
	}{
		{[]float32{1, 2, 10}, 2},
		{[]float32{1, 2, 4, 10}, 3},
		{[]float32{-5}, -5},
	} {
		if got := Median(tc.sorted); float64(got) != tc.want {
			t.Errorf("Median(%v) = %g, want %g", tc.sorted, got, tc.want)
		}
	}
	if !math.IsNaN(float64(Median(nil))) {
		t.Error("Median(nil) is not NaN")
	}
}

func TestNLLAccumulator(t *testing.T) {
	var a NLLAccumulator
	if p, e := a.PPL(); !math.IsNaN(p) || !math.IsNaN(e) || !math.IsNaN(a.Mean()) {
		t.Errorf("empty: PPL %g ± %g, mean %g; want NaN", p, e, a.Mean())
	}
	a.AddNLL(1)
	if p, e := a.PPL(); math.Abs(p-math.E) > 1e-12 || !math.IsNaN(e) {
		t.Errorf("one token: PPL %g ± %g, want e ± NaN", p, e)
	}
	a.AddNLL(3)
	// Mean 2, population variance 1, N−1 = 1.
	if p, e := a.PPL(); math.Abs(p-math.Exp(2)) > 1e-12 || math.Abs(e-math.Exp(2)) > 1e-12 {
		t.Errorf("two tokens: PPL %g ± %g, want e² ± e²", p, e)
	}
	var b NLLAccumulator
	if err := b.Add([]float32{0, 0, 0, 0}, 2); err != nil {
		t.Fatal(err)
	}
	if err := b.Add([]float32{0, 0}, 2); err == nil {
		t.Error("out-of-range token accepted")
	}
	a.Merge(&b)
	if a.Count != 3 || math.Abs(a.Sum-(4+math.Log(4))) > 1e-6 {
		t.Errorf("after merge: count %d, sum %g", a.Count, a.Sum)
	}
}

func TestTokenNLL(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		l := make([]float32, 1+r.IntN(200))
		for i := range l {
			l[i] = float32(10 * r.NormFloat64())
		}
		next := int32(r.IntN(len(l)))
		got, err := TokenNLL(l, next)
		if err != nil {
			t.Fatal(err)
		}
		want := -logSoftmax64(l)[next]
		if math.Abs(got-want) > 1e-5*max(1, want) {
			t.Errorf("NLL %g, want %g", got, want)
		}
	}
	if _, err := TokenNLL([]float32{1, float32(math.NaN())}, 0); err == nil {
		t.Error("NaN logit accepted")
	}
}

// TestKLDMerge splits positions between two accumulators: the merged
// statistics must equal one accumulator's up to summation order.
func TestKLDMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const vocab = 40
	var all, a, b KLDAccumulator
	for i := range 60 {
		p := make([]float32, vocab)
		q := make([]float32, vocab)
		for j := range p {
			p[j] = float32(3 * r.NormFloat64())
			q[j] = p[j] + float32(0.3*r.NormFloat64())
		}
		next := int32(r.IntN(vocab))
		part := &a
		if i%2 == 1 {
			part = &b
		}
		for _, acc := range []*KLDAccumulator{&all, part} {
			if _, err := acc.AddLogits(q, p, next); err != nil {
				t.Fatal(err)
			}
		}
	}
	a.Merge(&b)
	x, y := all.Stats(), a.Stats()
	for _, c := range [][2]float64{
		{x.Mean, y.Mean}, {x.MeanErr, y.MeanErr}, {x.PPL, y.PPL}, {x.BasePPL, y.BasePPL},
		{x.Median, y.Median}, {x.P99, y.P99}, {x.SameTop, y.SameTop}, {x.DeltaP.RMS, y.DeltaP.RMS},
		{x.LogPPLCor, y.LogPPLCor}, {x.PPLDiffErr, y.PPLDiffErr},
	} {
		if math.Abs(c[0]-c[1]) > 1e-9*max(1, math.Abs(c[0])) {
			t.Errorf("merged %g, single %g", c[1], c[0])
		}
	}
	if x.Count != 60 || y.Count != 60 {
		t.Errorf("counts %d, %d", x.Count, y.Count)
	}
}

// TestKLDFewPositions checks llama.cpp's rule that uncertainties need more
// than ten positions.
func TestKLDFewPositions(t *testing.T) {
	var acc KLDAccumulator
	p := []float32{0, 1, 2, 3}
	q := []float32{0.5, 1, 2, 2.5}
	for i := range 10 {
		if _, err := acc.AddLogits(q, p, int32(i%4)); err != nil {
			t.Fatal(err)
		}
	}
	s := acc.Stats()
	if s.MeanErr != 0 || s.PPLErr != 0 || s.Mean <= 0 {
		t.Errorf("10 positions: mean %g ± %g, PPL ± %g; want a positive mean and no uncertainty", s.Mean, s.MeanErr, s.PPLErr)
	}
	if _, err := acc.AddLogits(q, p, 1); err != nil {
		t.Fatal(err)
	}
	if s := acc.Stats(); s.PPLErr <= 0 {
		t.Errorf("11 positions: PPL uncertainty %g, want positive", s.PPLErr)
	}
}

func TestKLDAddErrors(t *testing.T) {
	var acc KLDAccumulator
	row := make([]uint16, BaseRowLen(3))
	if _, err := EncodeBaseRow(row, []float32{1, 2, 3}, 0); err != nil {
		t.Fatal(err)
	}
	bad := append([]uint16(nil), row...)
	putFloat(bad[0:2], -1) // negative scale
	positive := append([]uint16(nil), row...)
	putFloat(positive[2:4], 0.5) // log-probability above 0
	for _, tc := range []struct {
		name   string
		logits []float32
		row    []uint16
		next   int32
	}{
		{"row length", []float32{1, 2, 3, 4, 5}, row, 0},
		{"token", []float32{1, 2, 3}, row, 3},
		{"negative scale", []float32{1, 2, 3}, bad, 0},
		{"positive offset", []float32{1, 2, 3}, positive, 0},
		{"NaN logit", []float32{1, float32(math.NaN()), 3}, row, 0},
	} {
		if _, err := acc.Add(tc.logits, tc.row, tc.next); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if acc.Count() != 0 {
		t.Errorf("failed adds counted: %d", acc.Count())
	}
	if _, err := acc.AddLogits([]float32{1, 2}, []float32{1, 2, 3}, 0); err == nil {
		t.Error("AddLogits with rows of different lengths accepted")
	}
}
