package kv

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// Table kinds.
const (
	TableUniform = "uniform" // every layer keeps the mean budget
	TablePyramid = "pyramid" // PyramidKV's linear schedule, more at the bottom
	TableLayers  = "layers"  // explicit per-layer (optionally per-head) budgets
)

// Table assigns each layer (optionally each KV head) its own budget, the
// number of entries it keeps. Budgets include the windows a policy protects.
// Tables are stored as JSON: tamp kv evolve writes them, --kv-table reads
// them.
type Table struct {
	Kind string `json:"kind"`
	// Budget is the mean per-head budget the table was made for. When a
	// session asks for another mean, explicit budgets are scaled to it in
	// proportion (EvolKV's expansion of a schedule to a larger target).
	Budget int `json:"budget,omitempty"`
	// Layers holds one budget per layer (kind "layers").
	Layers []int `json:"layers,omitempty"`
	// Heads optionally holds one budget per KV head of each layer (kind
	// "layers"); each row's mean should equal the layer's budget.
	Heads [][]int `json:"heads,omitempty"`
	// Beta is PyramidKV's ratio of the mean selected budget to the smallest
	// (kind "pyramid"); 0 means 20.
	Beta int `json:"beta,omitempty"`
	// Model and Source describe where the table came from.
	Model  string `json:"model,omitempty"`
	Source string `json:"source,omitempty"`
}

// ParseTable reads a --kv-table argument: "uniform", "pyramid" or a JSON file.
func ParseTable(arg string) (*Table, error) {
	switch arg {
	case "", TableUniform:
		return &Table{Kind: TableUniform}, nil
	case TablePyramid:
		return &Table{Kind: TablePyramid}, nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return nil, fmt.Errorf("kv: budget table: %w (want uniform, pyramid or a JSON file)", err)
	}
	defer f.Close()
	t, err := ReadTable(f)
	if err != nil {
		return nil, fmt.Errorf("kv: budget table %s: %w", arg, err)
	}
	return t, nil
}

// ReadTable decodes a JSON budget table.
func ReadTable(r io.Reader) (*Table, error) {
	var t Table
	dec := json.NewDecoder(io.LimitReader(r, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("kv: reading budget table: %w", err)
	}
	if t.Kind == "" && len(t.Layers) > 0 {
		t.Kind = TableLayers
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return &t, nil
}

// WriteTo writes the table as indented JSON.
func (t *Table) WriteTo(w io.Writer) (int64, error) {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return 0, err
	}
	b = append(b, '\n')
	n, err := w.Write(b)
	return int64(n), err
}

func (t *Table) check() error {
	switch t.Kind {
	case TableUniform:
	case TablePyramid:
		if t.Beta < 0 {
			return fmt.Errorf("kv: pyramid beta %d must be positive", t.Beta)
		}
	case TableLayers:
		if len(t.Layers) == 0 {
			return fmt.Errorf("kv: budget table of kind layers lists no layers")
		}
		for i, b := range t.Layers {
			if b <= 0 {
				return fmt.Errorf("kv: budget table: layer %d has budget %d; budgets must be positive", i, b)
			}
		}
		if t.Heads != nil && len(t.Heads) != len(t.Layers) {
			return fmt.Errorf("kv: budget table has %d rows of head budgets for %d layers", len(t.Heads), len(t.Layers))
		}
		for i, row := range t.Heads {
			for h, b := range row {
				if b <= 0 {
					return fmt.Errorf("kv: budget table: layer %d head %d has budget %d; budgets must be positive", i, h, b)
				}
			}
		}
		if t.Budget < 0 {
			return fmt.Errorf("kv: budget table mean %d must not be negative", t.Budget)
		}
	default:
		return fmt.Errorf("kv: unknown budget table kind %q (uniform, pyramid, layers)", t.Kind)
	}
	return nil
}

// Check verifies that the table fits a model of the given shape.
func (t *Table) Check(s Shape) error {
	if err := t.check(); err != nil {
		return err
	}
	if t.Kind != TableLayers {
		return nil
	}
	if len(t.Layers) != s.Layers {
		return fmt.Errorf("kv: budget table has %d layers, the model %d", len(t.Layers), s.Layers)
	}
	for i, row := range t.Heads {
		if len(row) != s.KVHeads {
			return fmt.Errorf("kv: budget table layer %d has %d head budgets, the model %d KV heads", i, len(row), s.KVHeads)
		}
	}
	return nil
}

// Mean is the table's mean per-layer budget for kind layers, else Budget.
func (t *Table) Mean() float64 {
	if t.Kind != TableLayers {
		return float64(t.Budget)
	}
	s := 0
	for _, b := range t.Layers {
		s += b
	}
	return float64(s) / float64(len(t.Layers))
}

// Resolve returns the budget of every head of every layer ([layer][head]) for
// a mean budget, when heads hold n entries and the policy protects a window
// of window recent entries (the pyramid needs both). A nil table is uniform.
func (t *Table) Resolve(s Shape, mean, n, window int) [][]int {
	out := make([][]int, s.Layers)
	for l := range out {
		out[l] = make([]int, s.KVHeads)
	}
	kind := TableUniform
	if t != nil {
		kind = t.Kind
		if mean <= 0 {
			mean = t.Budget
		}
	}
	fill := func(l, b int) {
		for h := range out[l] {
			out[l][h] = b
		}
	}
	switch kind {
	case TablePyramid:
		beta := 20
		if t.Beta > 0 {
			beta = t.Beta
		}
		for l, b := range pyramid(s.Layers, mean, n, window, beta) {
			fill(l, b)
		}
	case TableLayers:
		layers := t.Layers
		if t.Budget > 0 && mean > 0 && mean != t.Budget {
			layers = ScaleBudgets(t.Layers, mean*len(t.Layers))
		}
		for l, b := range layers {
			if t.Heads == nil {
				fill(l, b)
				continue
			}
			copy(out[l], ScaleBudgets(t.Heads[l], b*s.KVHeads))
		}
	default:
		for l := range out {
			fill(l, mean)
		}
	}
	return out
}

// pyramid is PyramidKV's schedule as KVCache-Factory computes it
// (pyramidkv_utils.py, PyramidKVCluster.update_kv), in the same integer
// arithmetic: B = mean−window selected on average, smallest B/β, largest
// 2B−smallest (clamped to what n entries allow), falling linearly with depth;
// each layer also keeps the window.
func pyramid(layers, mean, n, window, beta int) []int {
	out := make([]int, layers)
	b := mean - window
	if b <= 0 || layers == 1 {
		for l := range out {
			out[l] = mean
		}
		return out
	}
	lo := b / beta
	hi := 2*b - lo
	if n > 0 && hi >= n-window {
		hi = n - window
		lo = 2*b - hi
	}
	steps := (hi - lo) / (layers - 1)
	for l := range out {
		out[l] = max(hi-l*steps, 0) + window
	}
	return out
}

// ScaleBudgets scales budgets in proportion so that they sum to total (each at
// least 1), distributing the rounding by largest remainder.
func ScaleBudgets(b []int, total int) []int {
	out := make([]int, len(b))
	if len(b) == 0 {
		return out
	}
	sum := 0
	for _, x := range b {
		sum += x
	}
	if sum <= 0 {
		for i := range out {
			out[i] = total / len(b)
		}
		return out
	}
	w := make([]float64, len(b))
	for i, x := range b {
		w[i] = float64(x)
	}
	return Apportion(w, total, 1, math.MaxInt)
}

// Apportion splits total into integers proportional to weights, each within
// [lo, hi], by largest remainder; weights are clamped by iterating (water
// filling). If the bounds make total unreachable the result sums to the
// nearest reachable value.
func Apportion(weights []float64, total, lo, hi int) []int {
	caps := make([]int, len(weights))
	for i := range caps {
		caps[i] = hi
	}
	return apportion(weights, total, lo, caps)
}

// apportion is Apportion with a bound per item.
func apportion(weights []float64, total, lo int, caps []int) []int {
	n := len(weights)
	out := make([]int, n)
	if n == 0 {
		return out
	}
	fixed := make([]bool, n)
	share := make([]float64, n)
	remaining := float64(total)
	for {
		var wsum float64
		free := 0
		for i, w := range weights {
			if !fixed[i] {
				wsum += max(w, 0)
				free++
			}
		}
		if free == 0 {
			break
		}
		changed := false
		for i, w := range weights {
			if fixed[i] {
				continue
			}
			if wsum > 0 {
				share[i] = remaining * max(w, 0) / wsum
			} else {
				share[i] = remaining / float64(free)
			}
		}
		for i := range weights {
			if fixed[i] {
				continue
			}
			switch {
			case share[i] < float64(lo):
				share[i], fixed[i], changed = float64(lo), true, true
				remaining -= float64(lo)
			case share[i] > float64(caps[i]):
				share[i], fixed[i], changed = float64(caps[i]), true, true
				remaining -= float64(caps[i])
			}
		}
		if !changed {
			break
		}
	}
	sum := 0
	type rem struct {
		i int
		r float64
	}
	var rems []rem
	for i, s := range share {
		out[i] = int(math.Floor(s))
		sum += out[i]
		if out[i] < caps[i] {
			rems = append(rems, rem{i, s - math.Floor(s)})
		}
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for sum < total {
		progressed := false
		for _, r := range rems {
			if sum >= total {
				break
			}
			if out[r.i] < caps[r.i] {
				out[r.i]++
				sum++
				progressed = true
			}
		}
		if !progressed {
			break
		}
	}
	return out
}
