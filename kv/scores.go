package kv

import (
	"fmt"
	"math"
	"slices"
)

// PoolKind is how [Pool1D] combines neighbouring scores.
type PoolKind int

const (
	// PoolNone leaves scores as they are.
	PoolNone PoolKind = iota
	// PoolAvg averages over the kernel, counting the zero padding at the ends
	// (PyTorch's avg_pool1d default, which SnapKV uses).
	PoolAvg
	// PoolMax takes the maximum over the kernel (KVCache-Factory's default).
	PoolMax
)

// ParsePool reads "avg", "max" or "none".
func ParsePool(s string) (PoolKind, error) {
	switch s {
	case "avg", "mean":
		return PoolAvg, nil
	case "max":
		return PoolMax, nil
	case "none", "":
		return PoolNone, nil
	}
	return 0, fmt.Errorf("kv: unknown pooling %q (avg, max, none)", s)
}

// Pool1D smooths src into dst (same length) with a window of kernel scores
// centred on each (stride 1, padding kernel/2), so that a token next to an
// important one is kept with it. kernel must be odd; 1 copies.
func Pool1D(dst, src []float32, kernel int, kind PoolKind) {
	n := len(src)
	if kind == PoolNone || kernel <= 1 || n == 0 {
		copy(dst, src)
		return
	}
	half := kernel / 2
	for i := range n {
		lo, hi := max(i-half, 0), min(i+half+1, n)
		switch kind {
		case PoolMax:
			m := src[lo]
			for _, v := range src[lo+1 : hi] {
				m = max(m, v)
			}
			dst[i] = m
		default:
			var s float32
			for _, v := range src[lo:hi] {
				s += v
			}
			dst[i] = s / float32(kernel)
		}
	}
}

// TopK returns, in increasing order, the indices of the k largest scores;
// ties go to the later index (the more recent token). NaN scores rank lowest.
func TopK(scores []float32, k int) []int {
	n := len(scores)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if k >= n {
		return idx
	}
	if k <= 0 {
		return idx[:0]
	}
	slices.SortFunc(idx, func(a, b int) int {
		sa, sb := scores[a], scores[b]
		switch {
		case sa > sb || (sb != sb && sa == sa):
			return -1
		case sa < sb || (sa != sa && sb == sb):
			return 1
		}
		return b - a
	})
	idx = idx[:k]
	slices.Sort(idx)
	return idx
}

// keepTopPlusTail returns the indices to keep when the last tail entries of n
// are protected and k more are chosen from the first n−tail by score.
func keepTopPlusTail(scores []float32, n, tail, k int) []int {
	tail = min(max(tail, 0), n)
	keep := TopK(scores[:n-tail], k)
	for j := n - tail; j < n; j++ {
		keep = append(keep, j)
	}
	return keep
}

// KeyNorms writes the L2 norm of every key of head h into dst (length Len).
// KnormPress keeps the keys of smallest norm (Devoto et al., 2024).
func KeyNorms(c *Cache, layer, h int, dst []float32) {
	k := make([]float32, c.HeadDim())
	for j := range dst {
		c.Key(layer, h, j, k)
		var s float64
		for _, x := range k {
			s += float64(x) * float64(x)
		}
		dst[j] = float32(math.Sqrt(s))
	}
}

// unitKeys returns head h's first n keys normalised to unit length, row after
// row (a zero key stays zero).
func unitKeys(c *Cache, layer, h, n int) []float32 {
	hd := c.HeadDim()
	out := make([]float32, n*hd)
	for j := range n {
		row := out[j*hd : (j+1)*hd]
		c.Key(layer, h, j, row)
		var s float64
		for _, x := range row {
			s += float64(x) * float64(x)
		}
		if s > 0 {
			inv := float32(1 / math.Sqrt(s))
			for i := range row {
				row[i] *= inv
			}
		}
	}
	return out
}
