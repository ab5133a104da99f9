package quant

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"tamp/gguf"
	"tamp/model"
	"tamp/tensor"
)

// ActSplit is the SQ format's static activation side: for every matrix
// input, a set of high-precision input channels fixed offline from a
// calibration text. At inference the activations on those channels are
// quantized to INT8 and the rest to INT4 (each part symmetric, with its own
// per-token scale), so no run-time top-k is needed.
//
// Matrices that read the same input (attention q, k and v; the feed-forward
// gate, up and router, experts included) share one set, keyed by the input
// ("site"), so the split is consistent however many of them consume it.
type ActSplit struct {
	// Fraction of each site's channels kept in INT8.
	Fraction float64
	// High maps a site to its INT8 channels (sorted).
	High map[string][]int
	hi   map[string][]bool
}

// actSite names the input a weight matrix reads.
func actSite(name string) string {
	l := layerOf(name)
	if l < 0 {
		return name
	}
	switch {
	case strings.Contains(name, "attn_q.") || strings.Contains(name, "attn_k.") || strings.Contains(name, "attn_v."):
		return fmt.Sprintf("blk.%d.attn_in", l)
	case strings.Contains(name, "ffn_gate") || strings.Contains(name, "ffn_up"):
		return fmt.Sprintf("blk.%d.ffn_in", l)
	}
	return name
}

// actStats accumulates mean |x_j| per site for calibration.
type actStats struct {
	mu     sync.Mutex
	absSum map[string][]float64
	rows   map[string]float64
	wnorm  map[string][]float64 // Σ over the site's matrices of ‖W[:,j]‖²
	seen   map[string]bool      // matrices whose column norms are in wnorm
}

func (s *actStats) MatMulInput(w *tensor.Tensor, expert int, x []float32, n int) {
	site := actSite(w.Name)
	cols := w.Cols()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.absSum[site] == nil {
		s.absSum[site] = make([]float64, cols)
		s.wnorm[site] = make([]float64, cols)
	}
	if len(s.absSum[site]) != cols {
		return
	}
	key := fmt.Sprint(w.Name, expert)
	if !s.seen[key] {
		s.seen[key] = true
		mat := w
		if expert >= 0 && len(w.Dims) >= 3 { // a stacked tensor's expert
			rows := w.Dims[1]
			rb := w.RowBytes()
			mat = &tensor.Tensor{Name: w.Name, Type: w.Type, Dims: []int{cols, rows}, Data: w.Data[expert*rows*rb : (expert+1)*rows*rb]}
		}
		if vals, err := tensor.DequantizeTensor(mat); err == nil {
			for r := 0; r < mat.Rows(); r++ {
				for j, v := range vals[r*cols : (r+1)*cols] {
					s.wnorm[site][j] += float64(v) * float64(v)
				}
			}
		}
	}
	// Matrices sharing a site see the same rows; counting them once per
	// matrix leaves the mean unchanged.
	for i := 0; i < n; i++ {
		for j, v := range x[i*cols : (i+1)*cols] {
			s.absSum[site][j] += math.Abs(float64(v))
		}
	}
	s.rows[site] += float64(n)
}

func (s *actStats) Routed(int, []int, []float32) {}

// CalibrateActSplit picks each site's INT8 channels: the fraction whose
// contribution to the matrix products is largest on the calibration chunks,
// ranked by mean |x_j| · sqrt(Σ‖W[:,j]‖²) over the matrices reading the site
// (the activation-times-weight criterion of the SQ-format paper).
func CalibrateActSplit(ctx context.Context, m *model.Model, tokens []int32, ctxLen, chunks int, fraction float64) (*ActSplit, error) {
	if !(fraction >= 0 && fraction <= 1) {
		return nil, fmt.Errorf("quant: activation split fraction %g is not in [0, 1]", fraction)
	}
	st := &actStats{absSum: map[string][]float64{}, rows: map[string]float64{}, wnorm: map[string][]float64{}, seen: map[string]bool{}}
	n := min(chunks, len(tokens)/ctxLen)
	if n <= 0 {
		return nil, fmt.Errorf("quant: the calibration text has %d tokens, fewer than one chunk of %d", len(tokens), ctxLen)
	}
	sess, err := m.NewSession(model.SessionOptions{Context: ctxLen, Observer: st})
	if err != nil {
		return nil, err
	}
	for c := 0; c < n; c++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sess.Reset()
		if _, err := sess.Forward(tokens[c*ctxLen:(c+1)*ctxLen], false); err != nil {
			return nil, err
		}
	}
	a := &ActSplit{Fraction: fraction, High: map[string][]int{}}
	for site, sum := range st.absSum {
		cols := len(sum)
		score := make([]float64, cols)
		idx := make([]int, cols)
		for j := range score {
			score[j] = sum[j] / math.Max(st.rows[site], 1) * math.Sqrt(st.wnorm[site][j])
			idx[j] = j
		}
		sort.SliceStable(idx, func(p, q int) bool { return score[idx[p]] > score[idx[q]] })
		k := int(math.Round(fraction * float64(cols)))
		hi := append([]int(nil), idx[:k]...)
		sort.Ints(hi)
		a.High[site] = hi
	}
	a.index()
	return a, nil
}

func (a *ActSplit) index() {
	a.hi = map[string][]bool{}
	for site, ch := range a.High {
		n := 0
		for _, c := range ch {
			n = max(n, c+1)
		}
		mask := make([]bool, n)
		for _, c := range ch {
			mask[c] = true
		}
		a.hi[site] = mask
	}
}

// Apply quantizes n rows of activations (each cols wide) in place as the
// split prescribes for site: INT8 on the high channels, INT4 on the rest,
// each part with its own per-row scale (max |x| / 127 and / 7).
func (a *ActSplit) Apply(site string, x []float32, n, cols int) {
	if a.hi == nil {
		a.index()
	}
	mask := a.hi[site]
	for i := 0; i < n; i++ {
		row := x[i*cols : (i+1)*cols]
		var maxHi, maxLo float32
		for j, v := range row {
			if j < len(mask) && mask[j] {
				maxHi = max(maxHi, abs32(v))
			} else {
				maxLo = max(maxLo, abs32(v))
			}
		}
		for j, v := range row {
			hi := j < len(mask) && mask[j]
			lim, m := float32(7), maxLo
			if hi {
				lim, m = 127, maxHi
			}
			if m == 0 {
				continue
			}
			d := m / lim
			row[j] = float32(math.Round(float64(v/d))) * d
		}
	}
}

// Observer returns a model.Observer that quantizes every matrix input in
// place before the product, simulating the static activation split on a
// model whose kernels do not implement it.
//
// It relies on the forward pass handing the observer the very buffer it
// multiplies next, which tamp's model does (model.Observer documents that
// observers must not keep the slices; this one edits them, see the package
// documentation). Quantizing is idempotent, so the matrices sharing a site
// all see the same quantized input.
func (a *ActSplit) Observer() model.Observer { return actObserver{a} }

type actObserver struct{ a *ActSplit }

func (o actObserver) MatMulInput(w *tensor.Tensor, _ int, x []float32, n int) {
	o.a.Apply(actSite(w.Name), x, n, w.Cols())
}

func (o actObserver) Routed(int, []int, []float32) {}

// Metadata key prefix under which quantize stores a split in the GGUF file:
// tamp.act_split.<site> = int32 array of INT8 channels.
const KeyActSplit = "tamp.act_split."

// Store writes the split into f's metadata.
func (a *ActSplit) Store(f *gguf.File) {
	f.Set(KeyActSplit+"fraction", gguf.Float32(float32(a.Fraction)))
	sites := make([]string, 0, len(a.High))
	for s := range a.High {
		sites = append(sites, s)
	}
	sort.Strings(sites)
	for _, s := range sites {
		ch := make([]int32, len(a.High[s]))
		for i, c := range a.High[s] {
			ch[i] = int32(c)
		}
		f.Set(KeyActSplit+s, gguf.Int32Array(ch))
	}
}

// ActSplitKLD measures the accuracy cost of activation quantization: the
// mean KL divergence from base's next-token distributions of m run with the
// split's activations (nil split: m as it is), over the chunks.
func ActSplitKLD(base, m *model.Model, split *ActSplit, tokens []int32, ctxLen, chunks int) (float64, error) {
	n := min(chunks, len(tokens)/ctxLen)
	if n <= 0 {
		return 0, fmt.Errorf("quant: fewer tokens than one chunk")
	}
	cs := make([][]int32, n)
	for i := range cs {
		cs[i] = tokens[i*ctxLen : (i+1)*ctxLen]
	}
	baseLP, err := logProbs(base, cs, nil)
	if err != nil {
		return 0, err
	}
	var obs model.Observer
	if split != nil {
		obs = split.Observer()
	}
	lp, err := logProbs(m, cs, obs)
	if err != nil {
		return 0, err
	}
	return meanKL(baseLP, lp, m.Vocab), nil
}
