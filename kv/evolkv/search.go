package evolkv

import (
	"context"
	"fmt"
	"math"

	"tamp/kv"
)

// Objective scores a per-layer budget table; smaller is better (tamp uses the
// mean KL divergence to the full cache on calibration text).
type Objective func(ctx context.Context, budgets []int) (float64, error)

// Options configure [Search].
type Options struct {
	Layers int // number of layers
	Mean   int // target mean budget, held exactly
	Group  int // consecutive layers optimised together (EvolKV uses 8)
	// Min and Max bound each layer's budget (Max 0: 8×Mean).
	Min, Max int
	// Generations per group and population size (0: CMA-ES's default).
	Generations, Lambda int
	// Sigma is the initial step size on the log of a layer's budget relative
	// to the mean (0: 0.5).
	Sigma float64
	Seed  uint64
	// Progress, if set, is called after every generation.
	Progress func(Progress)
}

// Progress reports the search's state.
type Progress struct {
	Group, Groups           int // group being optimised (from 0) and their number
	Generation, Generations int
	Evals                   int     // objective evaluations so far
	Uniform                 float64 // the objective of uniform budgets
	Best                    float64 // the best objective so far
	Budgets                 []int   // the best table so far
}

// Result is what [Search] found.
type Result struct {
	Budgets []int   // per layer, mean exactly Options.Mean
	Best    float64 // the objective of Budgets
	Uniform float64 // the objective of uniform budgets
	Evals   int     // objective evaluations
}

// Search finds per-layer budgets with mean exactly opts.Mean that minimise
// obj, EvolKV-style: layers are split into groups of consecutive layers and
// optimised bottom-up, one group at a time with CMA-ES while the groups below
// stay at their optimised budgets.
//
// Faithful: group-wise, bottom-up CMA-ES over integer per-layer budgets with
// the mean budget as the constraint and a black-box objective evaluated on
// calibration text.
//
// Ours: EvolKV keeps the mean near its target with a penalty term
// (CACHESCORE) and rescales at the end; here the mean is held exactly at
// every evaluation — the layers above the current group, not yet optimised,
// share what the group leaves (equally), and the last group is scaled to the
// exact total. The objective is a divergence to the full cache rather than a
// downstream task score. Each group's search starts from its current budgets
// (uniform), which are always evaluated, so the result is never worse on the
// calibration text than uniform budgets.
func Search(ctx context.Context, obj Objective, o Options) (*Result, error) {
	if o.Layers < 1 || o.Mean < 1 {
		return nil, fmt.Errorf("evolkv: need layers (%d) and a mean budget (%d) of at least 1", o.Layers, o.Mean)
	}
	if o.Group < 1 {
		o.Group = 8
	}
	if o.Min < 1 {
		o.Min = 1
	}
	if o.Max <= 0 {
		o.Max = 8 * o.Mean
	}
	if o.Min > o.Mean || o.Max < o.Mean {
		return nil, fmt.Errorf("evolkv: bounds [%d, %d] exclude the mean %d", o.Min, o.Max, o.Mean)
	}
	if o.Generations < 1 {
		o.Generations = 12
	}
	if o.Sigma <= 0 {
		o.Sigma = 0.5
	}
	total := o.Layers * o.Mean
	cur := make([]int, o.Layers)
	for i := range cur {
		cur[i] = o.Mean
	}
	evals := 0
	eval := func(b []int) (float64, error) {
		evals++
		return obj(ctx, b)
	}
	uniform, err := eval(cur)
	if err != nil {
		return nil, err
	}
	best := uniform
	groups := (o.Layers + o.Group - 1) / o.Group
	for g := range groups {
		lo, hi := g*o.Group, min((g+1)*o.Group, o.Layers)
		if hi == o.Layers && hi-lo == 1 {
			break // the last layer's budget is fixed by the mean
		}
		x0 := make([]float64, hi-lo)
		for i := range x0 {
			x0[i] = math.Log(float64(cur[lo+i]) / float64(o.Mean))
		}
		es := NewCMAES(x0, o.Sigma, o.Lambda, o.Seed+uint64(g)*7919)
		for gen := range o.Generations {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			xs := es.Ask()
			fs := make([]float64, len(xs))
			for k, x := range xs {
				b := complete(cur, lo, hi, x, o, total)
				f, err := eval(b)
				if err != nil {
					return nil, err
				}
				fs[k] = f
				if f < best {
					best, cur = f, b
				}
			}
			es.Tell(xs, fs)
			if o.Progress != nil {
				o.Progress(Progress{Group: g, Groups: groups, Generation: gen + 1, Generations: o.Generations,
					Evals: evals, Uniform: uniform, Best: best, Budgets: append([]int(nil), cur...)})
			}
		}
	}
	return &Result{Budgets: cur, Best: best, Uniform: uniform, Evals: evals}, nil
}

// complete turns a candidate for layers [lo, hi) into a whole table with the
// exact total: the layers below keep their budgets, the group takes its
// candidate (budget = mean·e^x, clamped), repaired so that the layers above
// can share the rest within bounds (or, for the last group, scaled to the
// rest exactly).
func complete(cur []int, lo, hi int, x []float64, o Options, total int) []int {
	b := append([]int(nil), cur...)
	fixed := 0
	for _, v := range cur[:lo] {
		fixed += v
	}
	above := len(cur) - hi
	w := make([]float64, hi-lo)
	var sum float64
	for i, xi := range x {
		w[i] = math.Min(math.Max(float64(o.Mean)*math.Exp(xi), float64(o.Min)), float64(o.Max))
		sum += w[i]
	}
	rest := total - fixed
	// The group's total must leave the layers above within [Min, Max].
	gmin := max(rest-above*o.Max, (hi-lo)*o.Min)
	gmax := min(rest-above*o.Min, (hi-lo)*o.Max)
	gt := int(math.Round(sum))
	if above == 0 {
		gt = rest
	}
	gt = min(max(gt, gmin), gmax)
	copy(b[lo:hi], kv.Apportion(w, gt, o.Min, o.Max))
	if above > 0 {
		eq := make([]float64, above)
		for i := range eq {
			eq[i] = 1
		}
		copy(b[hi:], kv.Apportion(eq, rest-gt, o.Min, o.Max))
	}
	return b
}
