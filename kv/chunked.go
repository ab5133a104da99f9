package kv

import (
	"fmt"
	"math"
)

// chunked is Locret-style chunked prefill (Huang et al., "Locret: Enhancing
// Eviction in Long-Context LLM Inference with Trained Retaining Heads", 2024;
// code huangyuxiang03/Locret, locret/inference/infer.py): the prompt is
// processed chunk by chunk (the session's Batch tokens at a time) and after
// every chunk each head is cut back to its budget, so the cache never holds
// more than the budget plus one chunk, however long the prompt. Each token
// gets an importance score once, when its chunk arrives, and keeps it; the
// most recent tokens (Locret's stabilizers) are always kept.
//
// Parameters: recent=F, the fraction of the budget reserved for the most
// recent tokens (default 0.5, best of 0.125, 0.25 and 0.5 on the first half
// of tinystories-sample.txt; Locret's defaults reserve 2500 of 6000);
// score=window|acc (default window, better there than acc); window=N
// (default 8), kernel=N (default 7), pool=max|avg (default max); decode=N
// (default 0) treats every N decoding steps as a further chunk.
//
// Faithful: chunked prefill with eviction after every chunk, per-head top-k
// by a per-token score that is never recomputed (score=window), recent tokens
// protected, no eviction while decoding; original positions are kept, which
// Locret's reference does not (it lets positions follow the compacted cache).
//
// Ours: Locret's scores come from trained retaining heads (a small MLP per
// layer on each token's Q, K and V) that tamp does not have. The stand-in
// (score=window) is the attention a token receives from the last window
// queries of its own chunk, pooled as in SnapKV — like Locret's score it is
// fixed when the token arrives. score=acc instead accumulates the attention
// from every query of every later chunk, as H2O does. Locret drops the
// stabilizers on the final chunk and then appends the question uncompressed;
// here the recent tokens stay protected on every chunk, which plays the same
// role.
type chunked struct {
	base
	recent         float64
	acc            bool
	window, kernel int
	pool           PoolKind
	decode         int
	steps          int
	stepStart      int // first position of the current decoding chunk
	b              budgeter
	pooled         []float32
}

func (*chunked) Name() string { return "chunked" }

func init() {
	Register("chunked", func(s Setup) (Policy, error) {
		if err := needBudget(s); err != nil {
			return nil, err
		}
		p := &chunked{}
		var err error
		if p.recent, err = s.Params.Float("recent", 0.5); err != nil {
			return nil, err
		}
		if p.recent < 0 || p.recent > 1 {
			return nil, fmt.Errorf("recent=%g must be a fraction in [0, 1]", p.recent)
		}
		score, err := s.Params.String("score", "window", "window", "acc")
		if err != nil {
			return nil, err
		}
		p.acc = score == "acc"
		if p.window, err = s.Params.Int("window", 8); err != nil {
			return nil, err
		}
		if p.kernel, err = s.Params.Int("kernel", 7); err != nil {
			return nil, err
		}
		if p.kernel%2 == 0 {
			return nil, fmt.Errorf("kernel=%d must be odd", p.kernel)
		}
		pool, err := s.Params.String("pool", "max", "max", "avg", "none")
		if err != nil {
			return nil, err
		}
		p.pool, _ = ParsePool(pool)
		if p.decode, err = s.Params.Int("decode", 0); err != nil {
			return nil, err
		}
		p.b = newBudgeter(s, int(math.Round(p.recent*float64(max(s.Budget, 1)))))
		return p, nil
	})
}

func (p *chunked) Needs() Needs { return Needs{Scores: true, Aux: !p.acc} }

// Observe records the last window rows of each prefill chunk (every row with
// score=acc); while decoding, every row when decode is set.
func (p *chunked) Observe(ev Event) int {
	if !ev.Prefill() {
		if p.decode > 0 {
			return ev.Start
		}
		return math.MaxInt32
	}
	if p.acc {
		return ev.Start
	}
	return ev.End - p.window
}

func (p *chunked) AfterChunk(c *Cache, ev Event) error {
	p.steps, p.stepStart = 0, ev.End
	return p.chunk(c, ev.Start)
}

func (p *chunked) AfterStep(c *Cache, ev Event) error {
	if p.decode <= 0 {
		return nil
	}
	if p.steps == 0 {
		p.stepStart = ev.Start
	}
	if p.steps++; p.steps < p.decode {
		return nil
	}
	p.steps = 0
	return p.chunk(c, p.stepStart)
}

func (p *chunked) Reset() { p.steps, p.stepStart = 0, 0 }

// chunk scores the entries that arrived from position start on, then cuts
// every head to its budget.
func (p *chunked) chunk(c *Cache, start int) error {
	budgets := p.b.at(c.MaxLen())
	for l := range c.Layers() {
		for h := range c.KVHeads() {
			sc := c.Scores(l, h)
			n := len(sc)
			if !p.acc {
				if cap(p.pooled) < n {
					p.pooled = make([]float32, n)
				}
				pooled := p.pooled[:n]
				Pool1D(pooled, sc, p.kernel, p.pool)
				aux, pos := c.Aux(l, h), c.Positions(l, h)
				for j := n - 1; j >= 0 && int(pos[j]) >= start; j-- {
					aux[j] = pooled[j]
				}
				clear(sc)
				sc = aux
			}
			b := budgets[l][h]
			if n <= b {
				continue
			}
			recent := int(math.Round(p.recent * float64(b)))
			if err := c.Retain(l, h, keepTopPlusTail(sc, n, recent, b-recent)); err != nil {
				return fmt.Errorf("chunked: %w", err)
			}
		}
	}
	return nil
}
