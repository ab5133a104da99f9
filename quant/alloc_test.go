package quant

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"tamp/internal/testdata"
	"tamp/model"
	"tamp/tensor"
	"tamp/tokenizer"
)

// bruteForce returns the least total cost of one option per group within
// budget, by trying every combination.
func bruteForce(groups []*group, budget int64) float64 {
	best := math.Inf(1)
	var rec func(i int, bytes int64, cost float64)
	rec = func(i int, bytes int64, cost float64) {
		if bytes > budget {
			return
		}
		if i == len(groups) {
			best = math.Min(best, cost)
			return
		}
		for _, o := range groups[i].opts {
			rec(i+1, bytes+o.bytes, cost+o.cost)
		}
	}
	rec(0, 0, 0)
	return best
}

func TestSolveKnapsackExact(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for trial := 0; trial < 300; trial++ {
		n := 1 + r.IntN(6)
		var groups []*group
		var minB, maxB int64
		for i := 0; i < n; i++ {
			g := &group{}
			k := 1 + r.IntN(4)
			lo := int64(math.MaxInt64)
			hi := int64(0)
			for j := 0; j < k; j++ {
				b := int64(18 * (1 + r.IntN(40)))
				g.opts = append(g.opts, groupOption{bytes: b, cost: r.Float64()})
				lo, hi = min(lo, b), max(hi, b)
			}
			groups = append(groups, g)
			minB += lo
			maxB += hi
		}
		budget := minB + r.Int64N(maxB-minB+1)
		picks, gran, exact, cost := solveKnapsack(groups, budget)
		if !exact || gran%18 != 0 {
			t.Fatalf("trial %d: step %d, exact %v", trial, gran, exact)
		}
		var used int64
		var sum float64
		for i, p := range picks {
			used += groups[i].opts[p].bytes
			sum += groups[i].opts[p].cost
		}
		want := bruteForce(groups, budget)
		if used > budget || math.Abs(sum-want) > 1e-9 || math.Abs(cost-want) > 1e-9 {
			t.Fatalf("trial %d: picks use %d of %d bytes at cost %g (solver says %g), brute force %g", trial, used, budget, sum, cost, want)
		}
	}
}

// TestSolveKnapsackCoarse checks that a coarsened grid still respects the
// budget and says it is not exact.
func TestSolveKnapsackCoarse(t *testing.T) {
	groups := make([]*group, 4)
	for i := range groups {
		groups[i] = &group{opts: []groupOption{{bytes: 4_000_001, cost: 1}, {bytes: 8_000_003, cost: 0.1}}}
	}
	budget := int64(24_000_010) // gcd 1: a byte grid would need 4·24M cells
	picks, gran, exact, _ := solveKnapsack(groups, budget)
	var used int64
	for i, p := range picks {
		used += groups[i].opts[p].bytes
	}
	if used > budget {
		t.Errorf("used %d > budget %d", used, budget)
	}
	if gran == 1 || exact {
		t.Errorf("grid step %d, exact %v; want a coarser, inexact grid", gran, exact)
	}
	// Two groups could take the large option (24,000,008 bytes); sizes
	// rounded up to the coarse grid may leave room for only one.
	if n := picks[0] + picks[1] + picks[2] + picks[3]; used > budget || n < 1 || n > 2 {
		t.Errorf("picked %v (%d bytes)", picks, used)
	}
}

// TestExpertGroup checks the per-layer expert assignment against brute
// force: for every total size, the cheapest assignment that meets the
// minimum counts.
func TestExpertGroup(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	types := []tensor.Type{tensor.Q4_0, tensor.Q5_0, tensor.Q8_0}
	sizes := []int64{18, 22, 34}
	for trial := 0; trial < 50; trial++ {
		var us []*unit
		for e := 0; e < 4; e++ {
			u := &unit{expert: e, weight: 0.5 + r.Float64()}
			for i, ty := range types {
				u.opts = append(u.opts, unitOption{t: ty, bytes: sizes[i] * 10, damage: r.Float64() / float64(i+1)})
			}
			us = append(us, u)
		}
		minCount := map[tensor.Type]int{tensor.Q4_0: 1, tensor.Q8_0: 1 + r.IntN(2)}
		g, err := expertGroup(us, minCount)
		if err != nil {
			t.Fatal(err)
		}
		// Brute force over 3^4 assignments.
		best := map[int64]float64{}
		for code := 0; code < 81; code++ {
			c, counts := code, map[tensor.Type]int{}
			var bytes int64
			var cost float64
			for e := 0; e < 4; e++ {
				o := us[e].opts[c%3]
				c /= 3
				counts[o.t]++
				bytes += o.bytes
				cost += o.damage * us[e].weight
			}
			if counts[tensor.Q4_0] < minCount[tensor.Q4_0] || counts[tensor.Q8_0] < minCount[tensor.Q8_0] {
				continue
			}
			if b, ok := best[bytes]; !ok || cost < b {
				best[bytes] = cost
			}
		}
		if len(g.opts) != len(best) {
			t.Fatalf("trial %d: %d options, brute force has %d sizes", trial, len(g.opts), len(best))
		}
		for _, o := range g.opts {
			if math.Abs(o.cost-best[o.bytes]) > 1e-12 {
				t.Fatalf("trial %d: size %d costs %g, brute force %g", trial, o.bytes, o.cost, best[o.bytes])
			}
			counts := map[tensor.Type]int{}
			for e, p := range o.pick {
				counts[us[e].opts[p].t]++
			}
			if counts[tensor.Q4_0] < minCount[tensor.Q4_0] || counts[tensor.Q8_0] < minCount[tensor.Q8_0] {
				t.Fatalf("trial %d: option %v breaks the minimum counts", trial, o.pick)
			}
		}
	}
	if _, err := expertGroup([]*unit{{opts: []unitOption{{t: tensor.Q4_0}}}}, map[tensor.Type]int{tensor.Q4_0: 2}); err == nil {
		t.Error("impossible minimum counts accepted")
	}
}

// TestAllocateTinyMixtral runs the whole allocation on the MoE test model:
// the budget is respected exactly, the experts get different widths under
// MC-MoE's constraints, the file is written with per-expert tensors, and it
// loads and runs as it is: the model binds each expert's own tensors, in
// their own types, and counts exactly the bytes the plan used.
func TestAllocateTinyMixtral(t *testing.T) {
	f := openTB(t, "golden/tiny-mixtral.gguf")
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(testdata.Path(t, "tinystories-sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tokens := tok.Encode(string(text[:4000]), true, false)
	var weights int64
	for _, gt := range f.Tensors {
		weights += int64(gt.Tensor().Elements())
	}
	budget := int64(6.0 * float64(weights) / 8)
	minCount := map[tensor.Type]int{tensor.Q4_0: 1, tensor.Q8_0: 1}
	opts := AllocOptions{
		Candidates:     []tensor.Type{tensor.Q4_0, tensor.Q5_0, tensor.Q8_0},
		Budget:         budget,
		Calibration:    tokens,
		Ctx:            48,
		Chunks:         2,
		MinExpertCount: minCount,
	}
	plan, err := Allocate(context.Background(), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := plan.Summary
	if s.Used > budget || s.Used < s.Minimum || !s.Exact {
		t.Errorf("used %d of %d bytes (minimum %d, exact %v)", s.Used, budget, s.Minimum, s.Exact)
	}
	if len(s.Experts) != 2 {
		t.Errorf("expert statistics for %d layers, want 2", len(s.Experts))
	}
	for l := 0; l < 2; l++ {
		counts := map[tensor.Type]int{}
		for e := 0; e < 4; e++ {
			ty, ok := plan.Types[ExpertKey(l, e)]
			if !ok {
				t.Fatalf("no type for %s", ExpertKey(l, e))
			}
			counts[ty]++
		}
		if len(counts) < 2 {
			t.Errorf("layer %d: all experts got one width %v", l, counts)
		}
		for ty, n := range minCount {
			if counts[ty] < n {
				t.Errorf("layer %d: %d experts at %s, want at least %d", l, counts[ty], ty, n)
			}
		}
	}
	out, rep, err := Quantize(f, Options{Type: tensor.Q4_0, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OutBytes != s.Used {
		t.Errorf("file holds %d bytes of tensor data, the plan %d", rep.OutBytes, s.Used)
	}
	if _, ok := out.Tensor("blk.0.ffn_gate.0.weight"); !ok {
		t.Error("experts of different widths were not split into per-expert tensors")
	}
	if _, ok := out.Tensor("blk.0.ffn_gate_exps.weight"); ok {
		t.Error("the stacked tensor is still there")
	}
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.WeightBytes(); got != s.Used {
		t.Errorf("the model holds %d bytes of weights, the plan %d", got, s.Used)
	}
	for l := range m.Blocks {
		for e := range m.Blocks[l].NumExperts() {
			gate, up, down := m.Blocks[l].Expert(e)
			want := plan.Types[ExpertKey(l, e)]
			if gate.Type != want || up.Type != want || down.Type != want {
				t.Errorf("layer %d expert %d runs as %s/%s/%s, the plan says %s", l, e, gate.Type, up.Type, down.Type, want)
			}
		}
	}
	sc, err := m.NewScorer(model.SessionOptions{Context: 16})
	if err != nil {
		t.Fatal(err)
	}
	logits := make([]float32, 16*m.Vocab)
	if err := sc.Logits(tokens[:16], logits); err != nil {
		t.Fatal(err)
	}
	for _, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite logit")
		}
	}

	opts.Budget = s.Minimum - 1
	if _, err := Allocate(context.Background(), f, opts); err == nil || !strings.Contains(err.Error(), "below the smallest") {
		t.Errorf("an impossible budget gave %v", err)
	}
	// Over the tensors with a choice, 4 bits per weight is below Q4_0's 4.5.
	opts.Budget, opts.ChoiceBPW = 0, 4
	if _, err := Allocate(context.Background(), f, opts); err == nil || !strings.Contains(err.Error(), "4.0000 over the") {
		t.Errorf("4 bits per weight over the choices gave %v", err)
	}
	if want := s.Fixed + 8*int64(s.ChoiceWeights)/8; s.ChoiceWeights == 0 || want <= s.Fixed {
		t.Errorf("choice weights %d", s.ChoiceWeights)
	}
}
