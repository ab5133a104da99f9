package kv

import (
	"fmt"
	"math"
)

// adaptive is tamp's own policy, after the content-complexity scheduler of
// DLFR-VAE (Yuan et al., "DLFR-VAE: Dynamic Latent Frame Rate VAE for Video
// Generation", 2025), which splits a video into chunks and encodes simple
// chunks at a lower frame rate. Here the prompt is split into segments of
// seg consecutive positions; each segment's information content is the mean
// surprisal of its tokens (−ln p of each token under the model's own
// prediction, measured during the prefill); each head's budget beyond the
// observation window is shared among segments in proportion to
// information^alpha (capped at what a segment holds, the surplus going to the
// others), and each segment keeps its best tokens by SnapKV's pooled votes.
// Predictable stretches thus give up their tokens first, surprising ones keep
// more.
//
// Parameters: those of snapkv, plus seg=N (default 32), alpha=F (default 1;
// 0 gives every segment the same share), mix=F (default 1), the fraction of
// the budget shared by information content — the rest goes first to the best
// votes anywhere, as in SnapKV — and sinks=N (default 4): the first tokens of
// the sequence are always kept, as StreamingLLM's attention sinks, because
// the sink's segment may be predictable and lose its share.
//
// Nothing here is from a paper beyond the idea of budgeting by content
// complexity: DLFR-VAE quantizes a difference-based complexity into a few
// frame-rate levels; this policy allocates continuously. Computing surprisal
// makes the prefill compute logits for every prompt row.
//
// On the first half of tinystories-sample.txt with stories260K (budgets 32
// and 128) surprisal-proportional shares were only marginally better than
// equal shares per segment (alpha=0), and both clearly worse than SnapKV's
// global top-k: spreading the budget over segments costs more than the
// content signal gains. seg=32 was best of 16, 32 and 64; mixing in global
// top-k (mix < 1) helps monotonically.
type adaptive struct {
	seg   int
	alpha float64
	mix   float64
	sinks int
	surp  []float32 // surprisal by position (NaN where unknown)
}

func init() {
	Register("adaptive", func(s Setup) (Policy, error) {
		seg, err := s.Params.Int("seg", 32)
		if err != nil {
			return nil, err
		}
		if seg < 1 {
			return nil, fmt.Errorf("seg=%d must be at least 1", seg)
		}
		alpha, err := s.Params.Float("alpha", 1)
		if err != nil {
			return nil, err
		}
		if alpha < 0 {
			return nil, fmt.Errorf("alpha=%g must not be negative", alpha)
		}
		sinks, err := s.Params.Int("sinks", 4)
		if err != nil {
			return nil, err
		}
		mix, err := s.Params.Float("mix", 1)
		if err != nil {
			return nil, err
		}
		if mix < 0 || mix > 1 {
			return nil, fmt.Errorf("mix=%g must be a fraction in [0, 1]", mix)
		}
		p, err := newSnapKV("adaptive", s)
		if err != nil {
			return nil, err
		}
		a := &adaptive{seg: seg, alpha: alpha, mix: mix, sinks: sinks}
		p.surprisal = true
		p.onChunk = a.record
		p.choose = a.choose
		return &adaptivePolicy{snapKV: p, a: a}, nil
	})
}

// adaptivePolicy is snapKV with the adaptive selection; it forgets the
// recorded surprisal on Reset.
type adaptivePolicy struct {
	*snapKV
	a *adaptive
}

func (p *adaptivePolicy) Reset() {
	p.snapKV.Reset()
	p.a.surp = p.a.surp[:0]
}

func (a *adaptive) record(ev Event) {
	for len(a.surp) < ev.End {
		a.surp = append(a.surp, float32(math.NaN()))
	}
	for i, s := range ev.Surprisal {
		a.surp[ev.Start+i] = s
	}
}

// segmentInfo is the mean known surprisal of positions [lo, hi), NaN if none.
func (a *adaptive) segmentInfo(lo, hi int) float64 {
	var sum float64
	n := 0
	for p := lo; p < min(hi, len(a.surp)); p++ {
		if s := a.surp[p]; s == s {
			sum += float64(s)
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

func (a *adaptive) choose(c *Cache, layer, h int, scores []float32, k int) []int {
	m := len(scores)
	if k >= m {
		return TopK(scores, k)
	}
	pos := c.Positions(layer, h)[:m]
	chosen := make([]bool, m)
	for j := 0; j < m && j < k && int(pos[j]) < a.sinks; j++ {
		chosen[j] = true
	}
	// The share not given by information content goes to the best votes.
	nk := 0
	for _, ch := range chosen {
		if ch {
			nk++
		}
	}
	global := int(math.Round((1 - a.mix) * float64(k-nk)))
	if global > 0 {
		rest := make([]float32, m)
		for j, s := range scores {
			rest[j] = s
			if chosen[j] {
				rest[j] = float32(math.Inf(-1))
			}
		}
		for _, j := range TopK(rest, global) {
			if !chosen[j] {
				chosen[j] = true
				nk++
			}
		}
	}
	// Segments by position; each gets a share of what is left in proportion
	// to its information content, capped at its unchosen entries.
	type segment struct{ lo, hi, free int } // entry index range
	var segs []segment
	for j := 0; j < m; {
		id := int(pos[j]) / a.seg
		e, free := j, 0
		for e < m && int(pos[e])/a.seg == id {
			if !chosen[e] {
				free++
			}
			e++
		}
		segs = append(segs, segment{j, e, free})
		j = e
	}
	weights := make([]float64, len(segs))
	caps := make([]int, len(segs))
	var known float64
	nKnown := 0
	for i, s := range segs {
		id := int(pos[s.lo]) / a.seg
		weights[i] = a.segmentInfo(id*a.seg, (id+1)*a.seg)
		caps[i] = s.free
		if weights[i] == weights[i] {
			known += weights[i]
			nKnown++
		}
	}
	for i, w := range weights {
		switch {
		case w != w && nKnown > 0:
			weights[i] = known / float64(nKnown)
		case w != w:
			weights[i] = 1
		}
		weights[i] = math.Pow(max(weights[i], 0), a.alpha)
	}
	alloc := apportion(weights, k-nk, 0, caps)
	seg := make([]float32, 0, a.seg)
	for i, s := range segs {
		seg = seg[:0]
		for j := s.lo; j < s.hi; j++ {
			v := scores[j]
			if chosen[j] {
				v = float32(math.Inf(-1))
			}
			seg = append(seg, v)
		}
		for _, j := range TopK(seg, alloc[i]) {
			chosen[s.lo+j] = true
		}
	}
	keep := make([]int, 0, k)
	for j, ch := range chosen {
		if ch {
			keep = append(keep, j)
		}
	}
	return keep
}
