package kv

import (
	"fmt"
	"math"
)

// snapKV is SnapKV (Li et al., "SnapKV: LLM Knows What You are Looking for
// Before Generation", NeurIPS 2024; code FasterDecoding/SnapKV,
// snapkv/monkeypatch/snapkv_utils.py): at the end of the prefill the last
// window prompt tokens (the observation window) vote for the earlier ones with
// their attention; votes are summed over the window, smoothed by a 1-D pool,
// and each head keeps its top budget−window tokens plus the window. Decoding
// then appends without evicting.
//
// Parameters: window=N (default 8), kernel=N (odd, default 7), pool=max|avg
// (default max) — KVCache-Factory's benchmark defaults, which suit small
// budgets (the SnapKV repository uses window 32, kernel 5, avg);
// score=votes|knorm (knorm ranks by inverse key norm, KnormPress, instead of
// votes); decode=N (default 0) recompresses every N decoding steps, using the
// queries since the last compression as the window (kvpress's DecodingPress;
// ours, for streaming use).
//
// Faithful: window votes (softmax over the whole prompt, causal inside the
// window), summed over window rows, pooled with padding kernel/2 over the
// prefix only, top-k per head in original order, window always kept; a prompt
// no longer than the budget is left alone.
//
// Ours: with grouped-query attention votes are the mean over the query heads
// of the group, as KVCache-Factory does (SnapKV's code repeats KV heads);
// ties go to the later token.
type snapKV struct {
	base
	name   string
	window int
	kernel int
	pool   PoolKind
	knorm  bool
	decode int
	steps  int
	b      budgeter

	// choose selects k of the first m entries of a head given their pooled
	// scores; nil is plain top-k. GraphKV and the adaptive policy replace it.
	choose func(c *Cache, layer, h int, scores []float32, k int) []int
	// onChunk sees every prefill chunk (the adaptive policy records surprisal).
	onChunk   func(ev Event)
	surprisal bool

	raw, pooled []float32
}

func (p *snapKV) Name() string { return p.name }

func init() {
	Register("snapkv", func(s Setup) (Policy, error) { return newSnapKV("snapkv", s) })
}

func newSnapKV(name string, s Setup) (*snapKV, error) {
	if err := needBudget(s); err != nil {
		return nil, err
	}
	p := &snapKV{name: name}
	var err error
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
	score, err := s.Params.String("score", "votes", "votes", "knorm")
	if err != nil {
		return nil, err
	}
	p.knorm = score == "knorm"
	if p.decode, err = s.Params.Int("decode", 0); err != nil {
		return nil, err
	}
	p.b = newBudgeter(s, p.window)
	return p, nil
}

func (p *snapKV) Needs() Needs {
	return Needs{Scores: !p.knorm, Surprisal: p.surprisal}
}

// Observe records the prompt's last window rows, and with decode=N every
// decoding row.
func (p *snapKV) Observe(ev Event) int {
	if p.knorm {
		return math.MaxInt32
	}
	if ev.Prefill() {
		return ev.CallEnd - p.window
	}
	if p.decode > 0 {
		return ev.Start
	}
	return math.MaxInt32
}

func (p *snapKV) AfterChunk(c *Cache, ev Event) error {
	if p.onChunk != nil {
		p.onChunk(ev)
	}
	return nil
}

func (p *snapKV) AfterPrefill(c *Cache, ev Event) error {
	p.steps = 0
	return p.compress(c)
}

func (p *snapKV) AfterStep(c *Cache, ev Event) error {
	if p.onChunk != nil {
		p.onChunk(ev)
	}
	if p.decode <= 0 {
		return nil
	}
	if p.steps++; p.steps < p.decode {
		return nil
	}
	p.steps = 0
	return p.compress(c)
}

func (p *snapKV) Reset() { p.steps = 0 }

// compress cuts every head to its budget and clears the votes.
func (p *snapKV) compress(c *Cache) error {
	defer c.ClearScores()
	budgets := p.b.at(c.MaxLen())
	for l := range c.Layers() {
		for h := range c.KVHeads() {
			n, b := c.Len(l, h), budgets[l][h]
			if n <= b {
				continue
			}
			w := min(p.window, b)
			m := n - w
			scores := p.prefixScores(c, l, h, m)
			var keep []int
			if p.choose != nil {
				keep = p.choose(c, l, h, scores, b-w)
			} else {
				keep = TopK(scores, b-w)
			}
			for j := m; j < n; j++ {
				keep = append(keep, j)
			}
			if err := c.Retain(l, h, keep); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
	}
	return nil
}

// prefixScores returns the pooled scores of the first m entries of a head.
func (p *snapKV) prefixScores(c *Cache, l, h, m int) []float32 {
	if cap(p.raw) < m {
		p.raw, p.pooled = make([]float32, m), make([]float32, m)
	}
	raw, pooled := p.raw[:m], p.pooled[:m]
	if p.knorm {
		KeyNorms(c, l, h, raw)
		for j, v := range raw {
			raw[j] = -v
		}
	} else {
		copy(raw, c.Scores(l, h)[:m])
	}
	Pool1D(pooled, raw, p.kernel, p.pool)
	return pooled
}
