package kv

import "fmt"

// streaming is StreamingLLM (Xiao et al., "Efficient Streaming Language Models
// with Attention Sinks", ICLR 2024; code mit-han-lab/streaming-llm): keep the
// first sinks tokens, which soak up attention whatever they say, and the most
// recent budget−sinks tokens; drop everything between.
//
// Parameters: sinks=N (default 4, the paper's); rerotate=1 gives the sinks
// cache-relative positions as the paper does (default 0).
//
// Faithful: which tokens are kept, and eviction whenever the cache would
// exceed the budget — after every prefill chunk and every decoding step, so
// memory never exceeds budget + one chunk.
//
// Positions: by default keys keep the RoPE rotation of their original
// positions and the query is rotated at its true position, like every other
// policy here. The paper instead stores keys unrotated and rotates the cache
// at positions 0..len−1 on every step, so that distances stay inside the
// trained context however long the stream. Attention depends only on the
// difference of the query's and a key's rotations, and the recent window is
// contiguous, so that scheme equals this one except for the sinks, which it
// places E positions later, E being the number of tokens evicted between
// them and the window. rerotate=1 does exactly that: it keeps each sink's key
// as first stored and, whenever E changes, stores it rotated E positions on
// (with the model's own RoPE, so one rounding to the cache's precision, not
// an accumulating one). It needs an unquantized cache.
type streaming struct {
	base
	sinks    int
	rerotate bool
	rot      Rotator
	b        budgeter
	keep     []int
	orig     [][]float32 // per head: the sinks' keys as first stored
	shift    []int       // per head: the rotation the sinks carry now
	tmp      []float32
}

func (*streaming) Name() string { return "streaming" }

func init() {
	Register("streaming", func(s Setup) (Policy, error) {
		if err := needBudget(s); err != nil {
			return nil, err
		}
		sinks, err := s.Params.Int("sinks", 4)
		if err != nil {
			return nil, err
		}
		rr, err := s.Params.Int("rerotate", 0)
		if err != nil {
			return nil, err
		}
		p := &streaming{sinks: sinks, rerotate: rr != 0, rot: s.Rotate}
		p.b = newBudgeter(s, sinks)
		return p, nil
	})
}

func (p *streaming) AfterChunk(c *Cache, ev Event) error { return p.evict(c) }
func (p *streaming) AfterStep(c *Cache, ev Event) error  { return p.evict(c) }

func (p *streaming) Reset() {
	p.orig, p.shift = nil, nil
}

func (p *streaming) evict(c *Cache) error {
	budgets := p.b.at(c.MaxLen())
	for l := range c.Layers() {
		for h := range c.KVHeads() {
			n, b := c.Len(l, h), budgets[l][h]
			if n <= b {
				continue
			}
			if p.rerotate {
				if err := p.capture(c, l, h, min(p.sinks, b)); err != nil {
					return err
				}
			}
			p.keep = sinkWindow(p.keep[:0], n, b, p.sinks)
			if err := c.Retain(l, h, p.keep); err != nil {
				return fmt.Errorf("streaming: %w", err)
			}
			if p.rerotate {
				if err := p.rotateSinks(c, l, h, min(p.sinks, b)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// capture keeps the sinks' keys of a head before their first rotation.
func (p *streaming) capture(c *Cache, l, h, s int) error {
	if p.rot == nil {
		return fmt.Errorf("streaming: rerotate needs the model's RoPE, which this cache was not given")
	}
	if c.Quant().Bits != 0 {
		return fmt.Errorf("streaming: rerotate needs an unquantized cache")
	}
	i := l*c.KVHeads() + h
	if p.orig == nil {
		p.orig = make([][]float32, c.Layers()*c.KVHeads())
		p.shift = make([]int, len(p.orig))
	}
	if p.orig[i] != nil {
		return nil
	}
	hd := c.HeadDim()
	p.orig[i] = make([]float32, s*hd)
	for j := range s {
		c.Key(l, h, j, p.orig[i][j*hd:(j+1)*hd])
	}
	return nil
}

// rotateSinks stores the sinks' keys rotated by the number of tokens evicted
// after them, from the keys as first stored.
func (p *streaming) rotateSinks(c *Cache, l, h, s int) error {
	pos := c.Positions(l, h)
	if len(pos) <= s {
		return nil
	}
	i := l*c.KVHeads() + h
	e := int(pos[s]) - s
	if e == p.shift[i] {
		return nil
	}
	hd := c.HeadDim()
	if cap(p.tmp) < hd {
		p.tmp = make([]float32, hd)
	}
	k := p.tmp[:hd]
	for j := range s {
		copy(k, p.orig[i][j*hd:(j+1)*hd])
		p.rot(k, e)
		if err := c.SetKey(l, h, j, k); err != nil {
			return fmt.Errorf("streaming: %w", err)
		}
	}
	p.shift[i] = e
	return nil
}

// sinkWindow lists the first min(sinks, b) and the last remaining entries of n.
func sinkWindow(keep []int, n, b, sinks int) []int {
	s := min(sinks, b)
	for j := range s {
		keep = append(keep, j)
	}
	for j := n - (b - s); j < n; j++ {
		keep = append(keep, j)
	}
	return keep
}
