package kv

import (
	"fmt"
	"math"
	"slices"
)

// GraphKV (Li, Jin and Zhang, "GraphKV: Breaking the Static Selection Paradigm
// with Graph-Based KV Cache Eviction", EMNLP 2025; figures and README in
// lxlcooper/GraphKV) treats a head's cached tokens as graph nodes whose
// weights are a base policy's scores and whose edges are the cosine similarity
// of their keys. Before the top-k, the most important tokens (anchors) pass a
// decay to their most similar neighbours, S'_j = S_j − e_ij·S_j (decays from
// several anchors add up, all computed from the scores before the round), so
// the selection favours representative, diverse tokens over near-duplicates.
//
// Parameters: those of snapkv (the base scores are SnapKV's pooled votes, or
// inverse key norms with score=knorm; --kv-table pyramid gives PyramidKV's
// budgets), plus anchors=K (default 1), neighbours=M (default 2) and
// rounds=R (default 1) — the values of the paper's worked figure.
//
// Faithful: the decay rule, cosine similarity of keys as edge weights,
// anchors always kept, plugged in between SnapKV's/PyramidKV's scoring and
// top-k, the observation window kept.
//
// Ours: the paper does not give K, M or the number of rounds. On the first
// half of tinystories-sample.txt with stories260K (K ∈ {1, 4, 16}, M ∈ {2,
// 8}, R ∈ {1, 2}, budgets 32 and 128) the mildest decay, the figure's K = 1,
// M = 2, was best, and no setting beat plain SnapKV there. Keys are
// compared after RoPE, as stored (the paper does not say which). Each further
// round picks the K best-scoring tokens not yet anchors as new anchors;
// neighbours are looked for among non-anchor tokens.
func init() {
	Register("graphkv", func(s Setup) (Policy, error) {
		k, err := s.Params.Int("anchors", 1)
		if err != nil {
			return nil, err
		}
		m, err := s.Params.Int("neighbours", 2)
		if err != nil {
			return nil, err
		}
		r, err := s.Params.Int("rounds", 1)
		if err != nil {
			return nil, err
		}
		if k < 1 || m < 1 || r < 1 {
			return nil, fmt.Errorf("anchors=%d, neighbours=%d and rounds=%d must be at least 1", k, m, r)
		}
		p, err := newSnapKV("graphkv", s)
		if err != nil {
			return nil, err
		}
		g := &graphDecay{anchors: k, neighbours: m, rounds: r}
		p.choose = g.choose
		return p, nil
	})
}

type graphDecay struct {
	anchors, neighbours, rounds int
}

func (g *graphDecay) choose(c *Cache, layer, h int, scores []float32, k int) []int {
	n := len(scores)
	if k >= n {
		return TopK(scores, k)
	}
	s := slices.Clone(scores)
	keys := unitKeys(c, layer, h, n)
	DecayScores(s, keys, c.HeadDim(), g.anchors, g.neighbours, g.rounds)
	return TopK(s, k)
}

// DecayScores applies GraphKV's decay to scores s of n tokens whose unit-length
// keys are rows of keys (hd wide): for each of rounds rounds, the anchors best
// tokens not yet anchors each lower their neighbours most cosine-similar
// non-anchor tokens by similarity × score. Anchors end with +Inf so that a
// top-k keeps them.
func DecayScores(s, keys []float32, hd, anchors, neighbours, rounds int) {
	n := len(s)
	isAnchor := make([]bool, n)
	dec := make([]float32, n)
	sims := make([]float32, n)
	cand := make([]int, 0, n)
	var all []int
	for range rounds {
		// The next anchors: best scores among non-anchors.
		cand = cand[:0]
		for j := range n {
			if !isAnchor[j] {
				cand = append(cand, j)
			}
		}
		if len(cand) == 0 {
			break
		}
		slices.SortStableFunc(cand, func(a, b int) int {
			switch {
			case s[a] > s[b]:
				return -1
			case s[a] < s[b]:
				return 1
			}
			return b - a
		})
		round := slices.Clone(cand[:min(anchors, len(cand))])
		for _, a := range round {
			isAnchor[a] = true
		}
		all = append(all, round...)
		clear(dec)
		for _, a := range round {
			ka := keys[a*hd : (a+1)*hd]
			cand = cand[:0]
			for j := range n {
				if isAnchor[j] {
					continue
				}
				var d float32
				for i, x := range keys[j*hd : (j+1)*hd] {
					d += ka[i] * x
				}
				sims[j] = d
				cand = append(cand, j)
			}
			slices.SortStableFunc(cand, func(x, y int) int {
				switch {
				case sims[x] > sims[y]:
					return -1
				case sims[x] < sims[y]:
					return 1
				}
				return x - y
			})
			for _, j := range cand[:min(neighbours, len(cand))] {
				dec[j] += sims[j] * s[j]
			}
		}
		for j := range s {
			s[j] -= dec[j]
		}
	}
	for _, a := range all {
		s[a] = float32(math.Inf(1))
	}
}
