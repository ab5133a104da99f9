// Package kveval measures what compressing the KV cache costs: for windows of
// a text it prefills P tokens, lets a policy compress the cache, then scores
// the next Q tokens one decoding step at a time, comparing every prediction
// with the full cache's (KL divergence, same top token) and with the text
// (perplexity); it also records the cache's peak and final bytes. A streaming
// mode instead reads each window token by token with the cache capped.
package kveval

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"tamp/eval"
	"tamp/kv"
	"tamp/model"
)

// Options configure an evaluation.
type Options struct {
	// Prompt (P) tokens are prefilled, then Next (Q) tokens are predicted, one
	// decoding step each. In streaming mode Prompt is ignored and every token
	// of a window of Next+1 tokens is fed one at a time.
	Prompt, Next int
	// Stream selects the streaming mode.
	Stream bool
	// Context is the session's context (at least Prompt+Next); 0 means
	// Prompt+Next.
	Context int
	// Batch is the prefill chunk (model.SessionOptions.Batch); 0 means the
	// session's default.
	Batch int
	// Storage is the cache element type.
	Storage kv.Storage
	// Workers evaluate windows in parallel; 0 means GOMAXPROCS.
	Workers int
	// Progress, if set, is called after each window.
	Progress func(done, total int)
}

func (o Options) windowLen() int {
	if o.Stream {
		return o.Next + 1
	}
	return o.Prompt + o.Next
}

// Windows cuts tokens into consecutive non-overlapping windows of the length
// an evaluation needs, starting each with BOS when addBOS is set (replacing
// the window's first token, as llama.cpp's perplexity does). At most max
// windows are returned (0: all).
func Windows(tokens []int32, o Options, bos int32, addBOS bool, max int) [][]int32 {
	n := o.windowLen()
	var out [][]int32
	for start := 0; start+n <= len(tokens) && (max <= 0 || len(out) < max); start += n {
		w := slices.Clone(tokens[start : start+n])
		if addBOS {
			w[0] = bos
		}
		out = append(out, w)
	}
	return out
}

// Result is one spec's outcome.
type Result struct {
	Spec       string  `json:"spec"`
	Policy     string  `json:"policy"`
	Table      string  `json:"table,omitempty"`
	Budget     int     `json:"budget"`
	Bits       int     `json:"bits"`
	Hadamard   bool    `json:"hadamard,omitempty"`
	PPL        float64 `json:"ppl"`
	PPLErr     float64 `json:"ppl_err"`
	KL         float64 `json:"kl"`          // mean KL(full ‖ compressed), nats
	KLErr      float64 `json:"kl_err"`      // one standard error
	KLP99      float64 `json:"kl_p99"`      // 99th percentile
	SameTop    float64 `json:"same_top"`    // fraction of positions with the full cache's top token
	PeakBytes  int64   `json:"peak_bytes"`  // largest cache seen in any window
	FinalBytes int64   `json:"final_bytes"` // mean cache size after the last step
	FullBytes  int64   `json:"full_bytes"`  // an uncompressed cache after the last step
	Positions  int     `json:"positions"`
	Seconds    float64 `json:"seconds"`

	nll  eval.NLLAccumulator
	kls  []float32
	same int
	fin  int64
	wins int
}

// Evaluate runs every spec over every window. The full cache's predictions
// are computed once per window and shared. Results come back in spec order.
func Evaluate(ctx context.Context, m *model.Model, windows [][]int32, specs []kv.Spec, o Options) ([]*Result, error) {
	return NewEvaluator(m, windows, o, false).Run(ctx, specs)
}

// Evaluator evaluates specs on a fixed set of windows, optionally keeping the
// full cache's predictions between runs (Q×vocabulary floats per window), as
// a budget search that evaluates many tables needs.
type Evaluator struct {
	m       *model.Model
	windows [][]int32
	o       Options
	refs    [][]float32 // per window when kept
}

// NewEvaluator prepares evaluations; keepReference keeps the full cache's
// predictions after the first run.
func NewEvaluator(m *model.Model, windows [][]int32, o Options, keepReference bool) *Evaluator {
	ev := &Evaluator{m: m, windows: windows, o: o}
	if keepReference {
		ev.refs = make([][]float32, len(windows))
	}
	return ev
}

// Run evaluates specs on every window.
func (ev *Evaluator) Run(ctx context.Context, specs []kv.Spec) ([]*Result, error) {
	m, windows, o := ev.m, ev.windows, ev.o
	if len(windows) == 0 {
		return nil, fmt.Errorf("kveval: no windows (text shorter than %d tokens?)", o.windowLen())
	}
	if o.Next < 1 || (!o.Stream && o.Prompt < 1) {
		return nil, fmt.Errorf("kveval: need at least one prompt and one scored token (P=%d, Q=%d)", o.Prompt, o.Next)
	}
	if o.Context == 0 {
		o.Context = o.windowLen()
	}
	if o.Context < o.windowLen() {
		return nil, fmt.Errorf("kveval: context %d is shorter than a window of %d tokens", o.Context, o.windowLen())
	}
	shape := kv.Shape{Layers: m.Layers, Heads: m.Heads, KVHeads: m.KVHeads, HeadDim: m.HeadDim}
	for _, s := range specs {
		if _, _, err := kv.Build(s, shape, 1, o.Storage); err != nil {
			return nil, fmt.Errorf("kveval: %s: %w", s, err)
		}
	}
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(windows))
	// One result set per window, merged in window order at the end so that
	// the figures do not depend on how windows were spread over workers.
	results := make([][]*Result, len(windows))
	var (
		mu       sync.Mutex
		next     int
		done     int
		firstErr error
	)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			r := newRunner(m, specs, o)
			r.refs = ev.refs
			for {
				mu.Lock()
				if firstErr != nil || next >= len(windows) {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				res := make([]*Result, len(specs))
				for k, s := range specs {
					res[k] = newResult(s)
				}
				results[i] = res
				err := ctx.Err()
				if err == nil {
					err = r.window(i, windows[i], res)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				done++
				if o.Progress != nil && err == nil {
					o.Progress(done, len(windows))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	out := results[0]
	for _, res := range results[1:] {
		for i, r := range res {
			out[i].merge(r)
		}
	}
	for _, r := range out {
		r.finish()
	}
	return out, nil
}

func newResult(s kv.Spec) *Result {
	name, _, _ := strings.Cut(s.Policy, ":")
	if name == "" {
		name = "full"
	}
	r := &Result{Spec: s.String(), Policy: s.Policy, Budget: s.Budget, Bits: s.Quant.Bits, Hadamard: s.Quant.Hadamard}
	if r.Policy == "" {
		r.Policy = "full"
	}
	if s.Table != nil && s.Table.Kind != kv.TableUniform {
		r.Table = s.Table.Kind
		if s.Table.Source != "" {
			r.Table = s.Table.Source
		}
	}
	if name == "pyramidkv" {
		r.Table = kv.TablePyramid
	}
	return r
}

func (r *Result) merge(b *Result) {
	r.nll.Merge(&b.nll)
	r.kls = append(r.kls, b.kls...)
	r.same += b.same
	r.fin += b.fin
	r.wins += b.wins
	r.PeakBytes = max(r.PeakBytes, b.PeakBytes)
	r.FullBytes = max(r.FullBytes, b.FullBytes)
	r.Seconds += b.Seconds
}

func (r *Result) finish() {
	r.PPL, r.PPLErr = r.nll.PPL()
	r.Positions = len(r.kls)
	if r.Positions == 0 {
		return
	}
	var s, s2 float64
	for _, k := range r.kls {
		s += float64(k)
		s2 += float64(k) * float64(k)
	}
	n := float64(r.Positions)
	r.KL = s / n
	if r.Positions > 1 {
		r.KLErr = math.Sqrt(max(s2/n-r.KL*r.KL, 0) / (n - 1))
	}
	slices.Sort(r.kls)
	r.KLP99 = float64(eval.Percentile(r.kls, 0.99))
	r.SameTop = float64(r.same) / n
	if r.wins > 0 {
		r.FinalBytes = r.fin / int64(r.wins)
	}
}

// runner evaluates windows on one goroutine, reusing its sessions.
type runner struct {
	m     *model.Model
	specs []kv.Spec
	o     Options
	ref   *model.Session
	sess  []*model.Session
	rows  []float32 // reference rows of the current window
	refs  [][]float32
	lpRef []float64
	lp    []float64
}

func newRunner(m *model.Model, specs []kv.Spec, o Options) *runner {
	return &runner{m: m, specs: specs, o: o}
}

func (r *runner) session(i int) (*model.Session, error) {
	opts := model.SessionOptions{Context: r.o.Context, KVStorage: r.o.Storage, Batch: r.o.Batch}
	if i < 0 {
		if r.ref == nil {
			s, err := r.m.NewSession(opts)
			if err != nil {
				return nil, err
			}
			r.ref = s
		}
		r.ref.Reset()
		return r.ref, nil
	}
	if r.sess == nil {
		r.sess = make([]*model.Session, len(r.specs))
	}
	if r.sess[i] == nil {
		opts.KV = r.specs[i]
		s, err := r.m.NewSession(opts)
		if err != nil {
			return nil, err
		}
		r.sess[i] = s
	}
	r.sess[i].Reset()
	return r.sess[i], nil
}

// predict feeds one window to s and calls row(i, logits) for each of the Q
// predictions, which are of tokens Prompt+i (streaming: i+1).
func (r *runner) predict(s *model.Session, w []int32, row func(i int, logits []float32) error) error {
	first := r.o.Prompt
	if r.o.Stream {
		first = 1
	}
	out, err := s.Forward(w[:first], false)
	if err != nil {
		return err
	}
	for i := range r.o.Next {
		if err := row(i, out); err != nil {
			return err
		}
		if i == r.o.Next-1 {
			break
		}
		if out, err = s.Forward(w[first+i:first+i+1], false); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) window(wi int, w []int32, res []*Result) error {
	v := r.m.Vocab
	first := r.o.Prompt
	if r.o.Stream {
		first = 1
	}
	if r.refs != nil && r.refs[wi] != nil {
		r.rows = r.refs[wi]
	} else {
		ref, err := r.session(-1)
		if err != nil {
			return err
		}
		if r.refs != nil {
			r.rows = make([]float32, r.o.Next*v)
			r.refs[wi] = r.rows
		} else if cap(r.rows) < r.o.Next*v {
			r.rows = make([]float32, r.o.Next*v)
		}
		r.rows = r.rows[:r.o.Next*v]
		err = r.predict(ref, w, func(i int, logits []float32) error {
			copy(r.rows[i*v:(i+1)*v], logits)
			return nil
		})
		if err != nil {
			return err
		}
	}
	for k := range r.specs {
		s, err := r.session(k)
		if err != nil {
			return err
		}
		start := time.Now()
		rs := res[k]
		err = r.predict(s, w, func(i int, logits []float32) error {
			next := w[first+i]
			if err := rs.nll.Add(logits, next); err != nil {
				return err
			}
			base := r.rows[i*v : (i+1)*v]
			kl, same := r.compare(base, logits)
			rs.kls = append(rs.kls, float32(kl))
			if same {
				rs.same++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("kveval: %s: %w", r.specs[k], err)
		}
		rs.Seconds += time.Since(start).Seconds()
		c := s.Cache()
		rs.PeakBytes = max(rs.PeakBytes, c.PeakBytes())
		rs.fin += c.Bytes()
		rs.wins++
		rs.FullBytes = max(rs.FullBytes, c.FullBytes(s.Pos()))
	}
	return nil
}

// compare returns KL(base ‖ q) computed exactly in float64, and whether both
// rows have the same top token. Identical rows give exactly 0.
func (r *runner) compare(base, q []float32) (float64, bool) {
	r.lpRef = logSoftmax(r.lpRef, base)
	r.lp = logSoftmax(r.lp, q)
	var kl float64
	for i, a := range r.lpRef {
		if a == math.Inf(-1) {
			continue
		}
		kl += math.Exp(a) * (a - r.lp[i])
	}
	return max(kl, 0), argmax(base) == argmax(q)
}

func logSoftmax(dst []float64, x []float32) []float64 {
	if cap(dst) < len(x) {
		dst = make([]float64, len(x))
	}
	dst = dst[:len(x)]
	m := float64(slices.Max(x))
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	ls := math.Log(s)
	for i, v := range x {
		dst[i] = float64(v) - m - ls
	}
	return dst
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
