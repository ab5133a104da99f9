package kv

import (
	"fmt"
	"math"
)

// h2o is H2O, the heavy-hitter oracle (Zhang et al., "H2O: Heavy-Hitter Oracle
// for Efficient Generative Inference of Large Language Models", NeurIPS 2023;
// code FMInference/H2O, h2o_hf/utils_real_drop/modify_llama.py): every cached
// token accumulates the attention it receives from every query so far, prompt
// rows and decoding steps alike; the cache keeps the recent tokens plus the
// heaviest hitters.
//
// Parameters: recent=F, the fraction of the budget given to recent tokens
// (default 0.5: the paper's equal heavy and recent ratios).
//
// Faithful: the score (attention summed over all query rows, never reset),
// the split of the budget, eviction at the end of the prefill and then at
// every decoding step, so the cache stays at the budget.
//
// Ours: with grouped-query attention the score of a KV head is the mean over
// the query heads that share it (the paper's models have none); the prompt is
// processed in chunks with full attention before the first eviction, as the
// reference does in one pass.
type h2o struct {
	base
	recent float64
	b      budgeter
	keep   []int
}

func (*h2o) Name() string { return "h2o" }

func init() {
	Register("h2o", func(s Setup) (Policy, error) {
		if err := needBudget(s); err != nil {
			return nil, err
		}
		r, err := s.Params.Float("recent", 0.5)
		if err != nil {
			return nil, err
		}
		if r < 0 || r > 1 {
			return nil, fmt.Errorf("recent=%g must be a fraction in [0, 1]", r)
		}
		p := &h2o{recent: r}
		p.b = newBudgeter(s, int(math.Round(r*float64(max(s.Budget, 1)))))
		return p, nil
	})
}

func (*h2o) Needs() Needs { return Needs{Scores: true} }

// Observe records every query row.
func (*h2o) Observe(ev Event) int { return ev.Start }

func (p *h2o) AfterPrefill(c *Cache, ev Event) error { return p.evict(c) }
func (p *h2o) AfterStep(c *Cache, ev Event) error    { return p.evict(c) }

func (p *h2o) evict(c *Cache) error {
	budgets := p.b.at(c.MaxLen())
	for l := range c.Layers() {
		for h := range c.KVHeads() {
			n, b := c.Len(l, h), budgets[l][h]
			if n <= b {
				continue
			}
			recent := int(math.Round(p.recent * float64(b)))
			sc := c.Scores(l, h)
			if n == b+1 && recent < n {
				// One token over, as after every decoding step: drop the
				// lightest outside the recent window without sorting.
				drop := 0
				for j := 1; j < n-recent; j++ {
					if sc[j] < sc[drop] {
						drop = j
					}
				}
				p.keep = p.keep[:0]
				for j := range n {
					if j != drop {
						p.keep = append(p.keep, j)
					}
				}
			} else {
				p.keep = keepTopPlusTail(sc, n, recent, b-recent)
			}
			if err := c.Retain(l, h, p.keep); err != nil {
				return fmt.Errorf("h2o: %w", err)
			}
		}
	}
	return nil
}
